"""Running the independent jobs of a stage (one per split of a data dir) on an engine chosen by `--cmd`.

A job is a module-level function plus its keyword arguments, so that any engine can ship it; each job writes
its own outputs and done marker, and the stage merges them afterwards. The engines, all existing ones, one module
each:

- `local`: processes on this machine (joblib's loky backend).
- `dask://HOST:PORT`: an already running Dask distributed cluster (`dask scheduler` + `dask worker`s).
- `slurm` or `slurm:SBATCH OPTIONS`: one Slurm job array per stage, submitted with `sbatch --array --wait`
  (the scheme of Kaldi's `slurm.pl`); each array task runs `python -m pipeline.utils.jobs.slurm_engine SPEC INDEX`.

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
import shlex
import time
from pathlib import Path
from typing import Any, Callable

from pipeline.utils.jobs.dask_engine import run_dask
from pipeline.utils.jobs.job import JobError, JobFailure
from pipeline.utils.jobs.local_engine import run_local
from pipeline.utils.jobs.slurm_engine import run_slurm
from pipeline.utils.log import get_logger

CMD_HELP = ("expected 'local', 'dask://HOST:PORT', 'slurm' or 'slurm:SBATCH OPTIONS' "
            "(e.g. 'slurm:--partition=cpu --time=2:00:00')")

log = get_logger("jobs")

__all__ = ["CMD_HELP", "JobError", "JobFailure", "parse_cmd", "run_jobs"]


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
        outcomes = run_local(fn, jobs, nj, log_paths, retries, timeout, name)
    elif engine == "dask":
        outcomes = run_dask(fn, jobs, nj, argument, name, log_paths, retries, timeout)
    else:
        outcomes = run_slurm(fn, jobs, nj, argument, name, Path(log_dir), log_paths, retries, timeout)
    failures = [o.failure for o in outcomes if o.failure is not None]
    if failures:
        lines = "\n  ".join(str(f) for f in failures)
        raise JobError(f"{len(failures)} of {len(jobs)} jobs of {name!r} failed; rerunning the stage redoes only "
                       f"the jobs without a done marker:\n  {lines}", failures)
    log.info(f"{name}: {len(jobs)} jobs done in {time.time() - start:.1f} s")
    return [o.value for o in outcomes]

