"""The `local` engine: the jobs of a stage as processes on this machine (joblib's loky backend)."""
from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any, Callable

from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError
from tqdm import tqdm

from pipeline.utils.jobs.job import JobError, JobFailure, Outcome, describe, run_with_log_file


def _run_attempts(fn: Callable[..., Any], job: dict[str, Any], index: int, log_path: Path | None,
                        retries: int) -> Outcome:
    # Failures come back as values so that one bad job does not stop joblib from finishing the others.
    for attempt in range(1, retries + 2):
        try:
            return Outcome(index, run_with_log_file(fn, job, index, log_path, f"local, attempt {attempt}"))
        except Exception as err:
            failure = JobFailure(index, describe(err), traceback.format_exc(), attempt, None, log_path)
    return Outcome(index, failure=failure)


def run_local(fn: Callable[..., Any], jobs: list[dict[str, Any]], nj: int, log_paths: list[Path | None],
              retries: int, timeout: float | None, name: str = "jobs") -> list[Outcome]:
    # More jobs than processes (e.g. one per person): a bar over the finished jobs, with an ETA.
    progress = tqdm(total=len(jobs), desc=name, unit="job", mininterval=2, disable=len(jobs) <= nj)
    if nj == 1:  # no worker processes: simplest to debug, and what --nj 1 promises
        outcomes = []
        for i, job in enumerate(jobs):
            outcomes.append(_run_attempts(fn, job, i, log_paths[i], retries))
            progress.update()
        progress.close()
        return outcomes
    try:
        outcomes = []
        for outcome in Parallel(n_jobs=nj, backend="loky", timeout=timeout, return_as="generator_unordered")(
                delayed(_run_attempts)(fn, job, i, log_paths[i], retries) for i, job in enumerate(jobs)):
            outcomes.append(outcome)
            progress.update()
        progress.close()
        return sorted(outcomes, key=lambda o: o.index)
    except TimeoutError as err:
        raise JobError(f"a local job did not finish within {timeout} s; rerun the stage to redo the unfinished "
                       f"ones") from err
    except TerminatedWorkerError as err:  # a process was killed, most often for memory
        raise JobError(f"a local worker process died ({describe(err)}); lower --nj if memory is short, then "
                       f"rerun the stage to redo the unfinished jobs") from err

