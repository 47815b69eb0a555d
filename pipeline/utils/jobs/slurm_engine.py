"""The `slurm[:SBATCH OPTIONS]` engine: one Slurm job array per stage, submitted with `sbatch --array --wait` (the
scheme of Kaldi's `slurm.pl`); each array task runs `python -m pipeline.utils.jobs.slurm_engine SPEC TASK_ID`."""
from __future__ import annotations

import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from pipeline.utils.atomic import atomic_path
from pipeline.utils.jobs.job import JobError, JobFailure, Outcome, describe, run_logged
from pipeline.utils.log import get_logger

# On a shared file system a result written on a compute node can take a moment to become visible here.
RESULT_GRACE_S = 5.0
# The directory holding the `pipeline` package: array tasks put it on PYTHONPATH to find this module.
PACKAGE_ROOT = Path(__file__).resolve().parents[3]

log = get_logger("jobs")


def _array_spec(indices: list[int]) -> str:
    """`--array` ranges for sorted task ids: [0, 1, 2, 5] -> '0-2,5'."""
    ranges, start = [], indices[0]
    for prev, cur in zip(indices, indices[1:] + [None]):
        if cur != prev + 1:
            ranges.append(str(start) if start == prev else f"{start}-{prev}")
            start = cur
    return ",".join(ranges)


def write_slurm_script(path: Path, *, name: str, spec: Path, log_dir: Path) -> Path:
    """Write the batch script run by every array task of a stage; it can also be resubmitted by hand."""
    q = shlex.quote
    path.write_text(
        "#!/bin/bash\n"
        f"# Job j of {name!r} is array task j; written by pipeline/utils/jobs/slurm_engine.py.\n"
        f"# To rerun jobs 1 and 4 by hand: sbatch --array=1,4 {path}\n"
        f"#SBATCH --job-name={name}\n"
        f"#SBATCH --output={log_dir}/{name}.%a.log\n"
        "#SBATCH --open-mode=append\n"  # a retry adds to the log of the failed attempt
        f"#SBATCH --chdir={os.getcwd()}\n"
        f"export PYTHONPATH={q(str(PACKAGE_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f"exec {q(sys.executable)} -m pipeline.utils.jobs.slurm_engine {q(str(spec))} \"$SLURM_ARRAY_TASK_ID\"\n",
        encoding="utf-8")
    return path


def _sbatch_missing_message() -> str:
    return ("--cmd slurm needs Slurm's `sbatch` on PATH, and it is not there: run the stage on a Slurm login node, "
            "or install the client here (Debian: apt-get install slurm-client munge, then set SLURM_CONF to the "
            "cluster's slurm.conf and share its munge key), or use --cmd local or --cmd dask://HOST:PORT")


def _tail(path: Path | None, lines: int = 5) -> str:
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _submit_array(sbatch: str, script: Path, indices: list[int], nj: int, options: list[str], run_dir: Path,
                  deadline: float | None) -> str:
    """Submit the array and wait until every task has ended; return the array job id.

    `sbatch --wait` is Slurm's own word on when the array has ended, lost tasks included (it needs no accounting
    database, unlike `sacct`); but it polls every 2 to 32 s, so we stop waiting as soon as every task has left
    its result file.
    """
    array = _array_spec([i + 1 for i in indices]) + (f"%{nj}" if nj < len(indices) else "")
    command = [sbatch, "--parsable", "--wait", f"--array={array}", *options, str(script)]
    err_path = run_dir / "sbatch.err"
    results = [run_dir / f"result.{i}.pkl" for i in indices]
    with open(err_path, "a", encoding="utf-8") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
        # --parsable prints "JOBID[;CLUSTER]" as soon as the array is queued, then --wait blocks until it ends.
        line = proc.stdout.readline().strip()
        if not line:
            proc.wait()
            raise JobError(f"sbatch could not submit the jobs (exit {proc.returncode}): {_tail(err_path)}\n"
                           f"command: {shlex.join(command)}")
        job_id = line.split(";")[0]
        log.info(f"submitted Slurm array job {job_id} (tasks {array})")
        pause = 0.2  # grows to 5 s: a stat per task per pause stays cheap on a shared file system
        try:
            while proc.poll() is None and not all(p.exists() for p in results):
                if deadline is not None and time.time() > deadline:
                    raise TimeoutError
                time.sleep(pause)
                pause = min(5.0, pause * 1.5)
        except (TimeoutError, KeyboardInterrupt) as interrupt:
            subprocess.run(["scancel", job_id], check=False, timeout=30)
            if isinstance(interrupt, KeyboardInterrupt):
                raise
            raise JobError(f"Slurm array job {job_id} did not finish in time and was cancelled (scancel {job_id}); "
                           f"rerun the stage to redo the unfinished jobs") from None
        finally:
            if proc.poll() is None:  # only the waiting client: the array itself is not touched
                proc.terminate()
            proc.wait()
            proc.stdout.close()
    return job_id


def _read_result(run_dir: Path, index: int, job_id: str, attempt: int, log_path: Path, give_up: float) -> Outcome:
    result_path = run_dir / f"result.{index}.pkl"
    while not result_path.exists() and time.time() < give_up:
        time.sleep(0.2)
    engine_id = f"slurm {job_id}_{index + 1}"
    if not result_path.exists():
        tail = _tail(log_path)
        error = ("lost: the task ended without a result (killed, out of memory or time, node failure or scancel)"
                 + ("; its log ends with:\n    " + tail.replace("\n", "\n    ") if tail else ""))
        return Outcome(index, failure=JobFailure(index, error, "", attempt, engine_id, log_path))
    status, *payload = pickle.loads(result_path.read_bytes())
    if status == "ok":
        return Outcome(index, payload[0])
    return Outcome(index, failure=JobFailure(index, payload[0], payload[1], attempt, engine_id, log_path))


def run_slurm(fn: Callable[..., Any], jobs: list[dict[str, Any]], nj: int, options: list[str], name: str,
              log_dir: Path, log_paths: list[Path], retries: int, timeout: float | None) -> list[Outcome]:
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise JobError(_sbatch_missing_message())
    # A fresh run dir per call: results of an earlier run must never count as this run's.
    run_dir = log_dir / f".{name}.slurm"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    spec = run_dir / "jobs.pkl"
    # The driver's sys.path travels with the jobs so that a task unpickles `fn` from the same modules.
    spec.write_bytes(pickle.dumps({"sys_path": list(sys.path), "payload": pickle.dumps((fn, jobs))}))
    script = write_slurm_script(run_dir / f"{name}.sbatch", name=name, spec=spec, log_dir=log_dir)
    deadline = None if timeout is None else time.time() + timeout
    outcomes: list[Outcome] = [Outcome(i) for i in range(len(jobs))]
    todo = list(range(len(jobs)))
    for attempt in range(1, retries + 2):
        for i in todo:
            (run_dir / f"result.{i}.pkl").unlink(missing_ok=True)
        job_id = _submit_array(sbatch, script, todo, nj, options, run_dir, deadline)
        give_up = time.time() + RESULT_GRACE_S  # one grace period for all the missing results
        for i in todo:
            outcomes[i] = _read_result(run_dir, i, job_id, attempt, log_paths[i], give_up)
        todo = [i for i in todo if outcomes[i].failure is not None]
        if not todo:
            break
        if attempt <= retries:
            log.info(f"{name}: retrying jobs {todo} (attempt {attempt + 1} of {retries + 1})")
    return outcomes


def _run_array_task(spec_path: Path, task_id: int) -> int:
    """Body of one Slurm array task: run job `task_id`, print its log, leave its result where the driver reads it."""
    index = task_id - 1
    spec = pickle.loads(spec_path.read_bytes())
    sys.path.extend(p for p in spec["sys_path"] if p not in sys.path)
    fn, jobs = pickle.loads(spec["payload"])
    where = f"slurm {os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{task_id}"
    try:
        result = ("ok", run_logged(fn, jobs[index], index, sys.stdout, where))
    except Exception as err:
        result = ("error", describe(err), traceback.format_exc())
    try:
        payload = pickle.dumps(result)
    except Exception as err:  # a return value that cannot travel back is this job's error, not a lost task
        result = ("error", f"the job's return value cannot be pickled: {describe(err)}", traceback.format_exc())
        payload = pickle.dumps(result)
    with atomic_path(spec_path.with_name(f"result.{index}.pkl")) as tmp:
        tmp.write_bytes(payload)
    return 0 if result[0] == "ok" else 1  # a failed job shows as FAILED in squeue/sacct too


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m pipeline.utils.jobs.slurm_engine SPEC.pkl TASK_ID  (run by Slurm array tasks)")
    sys.exit(_run_array_task(Path(sys.argv[1]), int(sys.argv[2])))
