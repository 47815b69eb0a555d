"""Running the independent jobs of a stage (one per split of a data dir) on an engine chosen by `--cmd`.

A job is a module-level function plus its keyword arguments, so that any engine can ship it; each job writes
its own outputs and done marker, and the stage merges them afterwards. The engines, all existing ones:

- `local`: processes on this machine (joblib's loky backend).
- `dask://HOST:PORT`: an already running Dask distributed cluster (`dask scheduler` + `dask worker`s).
- `slurm` or `slurm:SBATCH OPTIONS`: one Slurm job array per stage, submitted with `sbatch --array --wait`
  (the scheme of Kaldi's `slurm.pl`); each array task runs `python -m pipeline.utils.parallel SPEC INDEX`.

Job number j (1-based, Kaldi's JOB) is `jobs[j-1]` everywhere: it is the Slurm array task id, and its log is
`<log_dir>/<name>.<j>.log` (a stage whose jobs log to that same file gets one log per job, as in Kaldi).
A job that raises is retried `retries` times, then reported by number with its error, its engine id and its log;
a job whose worker dies is rerun by Dask itself (up to its `distributed.scheduler.allowed-failures`, 3) and by
our resubmission on Slurm, and reported when the local engine loses a process.
The engines always dispatch every job they are given and never reuse an earlier run's results, so a rerun of
the stage redoes exactly the jobs whose done marker is missing.
"""
from __future__ import annotations

import os
import pickle
import shlex
import shutil
import socket
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, TextIO

from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError

from pipeline.utils.logging import get_logger

# A Dask scheduler that does not answer within this time is reported as unreachable.
DASK_CONNECT_TIMEOUT_S = 10.0
# On a shared file system a result written on a compute node can take a moment to become visible here.
RESULT_GRACE_S = 5.0
# The directory holding the `pipeline` package: array tasks put it on PYTHONPATH to find this module.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

CMD_HELP = ("expected 'local', 'dask://HOST:PORT', 'slurm' or 'slurm:SBATCH OPTIONS' "
            "(e.g. 'slurm:--partition=cpu --time=2:00:00')")

log = get_logger("parallel")


@dataclass
class JobFailure:
    """One job that failed after all its attempts."""
    index: int                 # its position in `jobs`; people see its number, index + 1
    error: str                 # "ValueError: message", or why the job was lost
    traceback: str = ""
    attempts: int = 1
    engine_id: str | None = None   # "slurm ARRAYJOBID_TASKID" or "dask KEY"
    log: Path | None = None

    @property
    def number(self) -> int:
        return self.index + 1

    def __str__(self) -> str:
        where = f"{self.engine_id}, " if self.engine_id else ""
        log_note = f"; log: {self.log}" if self.log else ""
        return f"job {self.number} [{where}{self.attempts} attempt(s)] {self.error}{log_note}"


class JobError(RuntimeError):
    """One or more jobs of a stage failed, or the engine could not run them; the message names them and their logs."""

    def __init__(self, message: str, failures: list[JobFailure] | None = None):
        super().__init__(message)
        self.failures = failures or []


@dataclass
class _Outcome:
    index: int
    value: Any = None
    failure: JobFailure | None = None


def parse_cmd(cmd: str) -> tuple[str, Any]:
    """Split a `--cmd` value into engine and argument: ('local', None), ('dask', address), ('slurm', [options])."""
    if cmd == "local":
        return "local", None
    if cmd.startswith("dask://"):
        address = cmd[len("dask://"):]
        if not address:
            raise JobError(f"--cmd {cmd!r} names no scheduler; {CMD_HELP}")
        return "dask", address if "://" in address else f"tcp://{address}"
    if cmd == "slurm" or cmd.startswith("slurm:"):
        return "slurm", shlex.split(cmd[len("slurm:"):])
    raise JobError(f"unknown --cmd {cmd!r}; {CMD_HELP}")


def run_jobs(fn: Callable[..., Any], jobs: list[dict[str, Any]], *, nj: int, cmd: str = "local",
             name: str | None = None, log_dir: str | os.PathLike | None = None, retries: int = 1,
             timeout: float | None = None) -> list[Any]:
    """Run `fn(**job)` for every job, at most `nj` at a time, on the engine `cmd`; return the results in job order.

    Job j's log is `<log_dir>/<name>.<j>.log`, appended to (Slurm needs a log dir; it defaults to `./log`). A job
    that raises is retried `retries` times (lost workers: see the module doc); if any still fails, every other job
    is still run to its end, then a `JobError` lists the failed ones (number, error, engine id, log). `timeout` (s)
    bounds each job on `local` and the whole run on Dask and Slurm; jobs still running then are cancelled.
    """
    engine, argument = parse_cmd(cmd)
    if retries < 0:
        raise ValueError(f"retries must be >= 0, not {retries}")
    name = name or fn.__name__
    if not jobs:
        return []
    if engine == "slurm" and log_dir is None:
        log_dir = "log"
    log_paths: list[Path | None] = [None] * len(jobs)
    if log_dir is not None:
        log_dir = Path(log_dir).resolve()  # compute nodes may start elsewhere
        log_dir.mkdir(parents=True, exist_ok=True)
        # Appended to, never removed: a rerun or retry adds below the earlier attempts, and a log file that the
        # job's own logger holds open stays the file we write to.
        log_paths = [log_dir / f"{name}.{i + 1}.log" for i in range(len(jobs))]
    nj = max(1, min(nj, len(jobs)))
    start = time.time()
    log.info(f"{name}: {len(jobs)} jobs on {cmd}, {nj} at a time" + (f", logs in {log_dir}" if log_dir else ""))
    if engine == "local":
        outcomes = _run_local(fn, jobs, nj, log_paths, retries, timeout)
    elif engine == "dask":
        outcomes = _run_dask(fn, jobs, nj, argument, name, log_paths, retries, timeout)
    else:
        outcomes = _run_slurm(fn, jobs, nj, argument, name, Path(log_dir), log_paths, retries, timeout)
    failures = [o.failure for o in outcomes if o.failure is not None]
    if failures:
        lines = "\n  ".join(str(f) for f in failures)
        raise JobError(f"{len(failures)} of {len(jobs)} jobs of {name!r} failed; rerunning the stage redoes only "
                       f"the jobs without a done marker:\n  {lines}", failures)
    log.info(f"{name}: {len(jobs)} jobs done in {time.time() - start:.1f} s")
    return [o.value for o in outcomes]


# ---------------------------------------------------------------------------------------------------- one job

def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _note(stream: TextIO | None, text: str) -> None:
    if stream is not None:
        stream.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        stream.flush()


def _run_logged(fn: Callable[..., Any], job: dict[str, Any], index: int, stream: TextIO | None, where: str) -> Any:
    """Run one job, noting start, end and (on failure) the traceback in its log so that the log alone explains it."""
    _note(stream, f"job {index + 1} started on {socket.gethostname()} (pid {os.getpid()}, {where})")
    start = time.time()
    try:
        value = fn(**job)
    except Exception:
        _note(stream, f"job {index + 1} failed after {time.time() - start:.1f} s:\n{traceback.format_exc()}")
        raise
    _note(stream, f"job {index + 1} finished in {time.time() - start:.1f} s")
    return value


def _run_with_log_file(fn: Callable[..., Any], job: dict[str, Any], index: int, log_path: Path | None,
                       where: str) -> Any:
    """What a local or Dask worker runs: one attempt of one job, logged to its own file."""
    if log_path is None:
        return _run_logged(fn, job, index, None, where)
    with open(log_path, "a", encoding="utf-8") as stream:
        return _run_logged(fn, job, index, stream, where)


# ---------------------------------------------------------------------------------------------------- local

def _run_local_attempts(fn: Callable[..., Any], job: dict[str, Any], index: int, log_path: Path | None,
                        retries: int) -> _Outcome:
    # Failures come back as values so that one bad job does not stop joblib from finishing the others.
    for attempt in range(1, retries + 2):
        try:
            return _Outcome(index, _run_with_log_file(fn, job, index, log_path, f"local, attempt {attempt}"))
        except Exception as err:
            failure = JobFailure(index, _describe(err), traceback.format_exc(), attempt, None, log_path)
    return _Outcome(index, failure=failure)


def _run_local(fn: Callable[..., Any], jobs: list[dict[str, Any]], nj: int, log_paths: list[Path | None],
               retries: int, timeout: float | None) -> list[_Outcome]:
    if nj == 1:  # no worker processes: simplest to debug, and what --nj 1 promises
        return [_run_local_attempts(fn, job, i, log_paths[i], retries) for i, job in enumerate(jobs)]
    try:
        return Parallel(n_jobs=nj, backend="loky", timeout=timeout)(
            delayed(_run_local_attempts)(fn, job, i, log_paths[i], retries) for i, job in enumerate(jobs))
    except TimeoutError as err:
        raise JobError(f"a local job did not finish within {timeout} s; rerun the stage to redo the unfinished "
                       f"ones") from err
    except TerminatedWorkerError as err:  # a process was killed, most often for memory
        raise JobError(f"a local worker process died ({_describe(err)}); lower --nj if memory is short, then "
                       f"rerun the stage to redo the unfinished jobs") from err


# ---------------------------------------------------------------------------------------------------- dask

def _connect_dask(address: str):
    try:
        from distributed import Client
    except ImportError as err:
        raise JobError("--cmd dask://... needs the `distributed` package: pip install distributed") from err
    try:
        return Client(address, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as err:
        host_port = address.split("://", 1)[-1]
        raise JobError(
            f"cannot reach the Dask scheduler at {address} ({_describe(err)}). Start one with "
            f"`dask scheduler --port {host_port.rsplit(':', 1)[-1]}` and workers on each machine with "
            f"`dask worker {address}` (run from this repo's environment), check the address in --cmd "
            f"dask://{host_port}, or use --cmd local") from err


def _run_dask(fn: Callable[..., Any], jobs: list[dict[str, Any]], nj: int, address: str, name: str,
              log_paths: list[Path | None], retries: int, timeout: float | None) -> list[_Outcome]:
    from distributed import as_completed

    outcomes: list[_Outcome | None] = [None] * len(jobs)
    # A fresh key per call and pure=False: Dask must run every job again, never hand back a result or an
    # error it still holds from an earlier call, or a rerun would skip the job's own done-marker check.
    token = uuid.uuid4().hex[:8]
    with _connect_dask(address) as client:
        index_of: dict[str, int] = {}

        def submit(i: int):
            key = f"{name}-{i + 1}-{token}"
            index_of[key] = i
            return client.submit(_run_with_log_file, fn, jobs[i], i, log_paths[i], f"dask {key}",
                                 key=key, retries=retries, pure=False)

        waiting = iter(range(len(jobs)))
        running = as_completed([submit(i) for i in islice(waiting, nj)], loop=client.loop, timeout=timeout)
        try:
            for future in running:  # keeps at most nj jobs on the cluster
                i = index_of[future.key]
                if future.status == "finished":
                    outcomes[i] = _Outcome(i, future.result())
                elif future.status == "error":  # after all retries; KilledWorker when the job kept killing workers
                    tb = "".join(traceback.format_tb(future.traceback()))
                    outcomes[i] = _Outcome(i, failure=JobFailure(i, _describe(future.exception()), tb, retries + 1,
                                                                 f"dask {future.key}", log_paths[i]))
                else:  # cancelled, e.g. by a scheduler restart
                    outcomes[i] = _Outcome(i, failure=JobFailure(i, f"lost: Dask says the job was {future.status}",
                                                                 "", 1, f"dask {future.key}", log_paths[i]))
                future.release()
                following = next(waiting, None)
                if following is not None:
                    running.add(submit(following))
        except TimeoutError as err:
            client.cancel(list(running.futures))
            unfinished = [i for i, o in enumerate(outcomes) if o is None]
            raise JobError(f"Dask jobs {unfinished} of {name!r} did not finish within {timeout} s and were cancelled; "
                           f"rerun the stage to redo them") from err
    return outcomes


# ---------------------------------------------------------------------------------------------------- slurm

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
        f"# Job j of {name!r} is array task j; written by pipeline/utils/parallel.py.\n"
        f"# To rerun jobs 1 and 4 by hand: sbatch --array=1,4 {path}\n"
        f"#SBATCH --job-name={name}\n"
        f"#SBATCH --output={log_dir}/{name}.%a.log\n"
        "#SBATCH --open-mode=append\n"  # a retry adds to the log of the failed attempt
        f"#SBATCH --chdir={os.getcwd()}\n"
        f"export PYTHONPATH={q(str(PACKAGE_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f"exec {q(sys.executable)} -m pipeline.utils.parallel {q(str(spec))} \"$SLURM_ARRAY_TASK_ID\"\n",
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


def _read_result(run_dir: Path, index: int, job_id: str, attempt: int, log_path: Path, give_up: float) -> _Outcome:
    result_path = run_dir / f"result.{index}.pkl"
    while not result_path.exists() and time.time() < give_up:
        time.sleep(0.2)
    engine_id = f"slurm {job_id}_{index + 1}"
    if not result_path.exists():
        tail = _tail(log_path)
        error = ("lost: the task ended without a result (killed, out of memory or time, node failure or scancel)"
                 + (f"; its log ends with:\n    " + tail.replace("\n", "\n    ") if tail else ""))
        return _Outcome(index, failure=JobFailure(index, error, "", attempt, engine_id, log_path))
    status, *payload = pickle.loads(result_path.read_bytes())
    if status == "ok":
        return _Outcome(index, payload[0])
    return _Outcome(index, failure=JobFailure(index, payload[0], payload[1], attempt, engine_id, log_path))


def _run_slurm(fn: Callable[..., Any], jobs: list[dict[str, Any]], nj: int, options: list[str], name: str,
               log_dir: Path, log_paths: list[Path], retries: int, timeout: float | None) -> list[_Outcome]:
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
    outcomes: list[_Outcome] = [_Outcome(i) for i in range(len(jobs))]
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
        result = ("ok", _run_logged(fn, jobs[index], index, sys.stdout, where))
    except Exception as err:
        result = ("error", _describe(err), traceback.format_exc())
    try:
        payload = pickle.dumps(result)
    except Exception as err:  # a return value that cannot travel back is this job's error, not a lost task
        result = ("error", f"the job's return value cannot be pickled: {_describe(err)}", traceback.format_exc())
        payload = pickle.dumps(result)
    tmp = spec_path.with_name(f"result.{index}.pkl.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, spec_path.with_name(f"result.{index}.pkl"))
    return 0 if result[0] == "ok" else 1  # a failed job shows as FAILED in squeue/sacct too


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m pipeline.utils.parallel SPEC.pkl TASK_ID  (run by Slurm array tasks)")
    sys.exit(_run_array_task(Path(sys.argv[1]), int(sys.argv[2])))
