"""The `dask://HOST:PORT` engine: the jobs of a stage on an already running Dask distributed cluster
(`dask scheduler` + `dask worker`s started from this repo's environment)."""
from __future__ import annotations

import os
import traceback
import uuid
from itertools import islice
from pathlib import Path
from typing import Any, Callable

from pipeline.utils.jobs.job import JobError, JobFailure, Outcome, describe, run_with_log_file

# A Dask scheduler that does not answer within this time is reported as unreachable.
DASK_CONNECT_TIMEOUT_S = 10.0


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
            f"cannot reach the Dask scheduler at {address} ({describe(err)}). Start one with "
            f"`dask scheduler --port {host_port.rsplit(':', 1)[-1]}` and workers on each machine with "
            f"`dask worker {address}` (run from this repo's environment), check the address in --cmd "
            f"dask://{host_port}, or use --cmd local") from err


def run_in_directory(directory: str, fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in `directory`: jobs read and write the recipe's relative paths (pipeline/utils/paths.py), as
    the local engine's processes and Slurm's `--chdir` do, wherever the worker was started."""
    os.chdir(directory)
    return fn(*args)


def run_dask(fn: Callable[..., Any], jobs: list[dict[str, Any]], nj: int, address: str, name: str,
             log_paths: list[Path | None], retries: int, timeout: float | None) -> list[Outcome]:
    from distributed import as_completed

    outcomes: list[Outcome | None] = [None] * len(jobs)
    # A fresh key per call and pure=False: Dask must run every job again, never hand back a result or an
    # error it still holds from an earlier call, or a rerun would skip the job's own done-marker check.
    token = uuid.uuid4().hex[:8]
    recipe_dir = os.getcwd()
    with _connect_dask(address) as client:
        index_of: dict[str, int] = {}

        def submit(i: int):
            key = f"{name}-{i + 1}-{token}"
            index_of[key] = i
            return client.submit(run_in_directory, recipe_dir, run_with_log_file, fn, jobs[i], i, log_paths[i],
                                 f"dask {key}", key=key, retries=retries, pure=False)

        waiting = iter(range(len(jobs)))
        running = as_completed([submit(i) for i in islice(waiting, nj)], loop=client.loop, timeout=timeout)
        try:
            for future in running:  # keeps at most nj jobs on the cluster
                i = index_of[future.key]
                if future.status == "finished":
                    outcomes[i] = Outcome(i, future.result())
                elif future.status == "error":  # after all retries; KilledWorker when the job kept killing workers
                    tb = "".join(traceback.format_tb(future.traceback()))
                    outcomes[i] = Outcome(i, failure=JobFailure(i, describe(future.exception()), tb, retries + 1,
                                                                 f"dask {future.key}", log_paths[i]))
                else:  # cancelled, e.g. by a scheduler restart
                    outcomes[i] = Outcome(i, failure=JobFailure(i, f"lost: Dask says the job was {future.status}",
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

