"""One job of a stage: its failure record, its outcome, and one attempt of it logged to its own file.

Shared by every engine, so that a job's log reads the same whether it ran here, on Dask or on Slurm.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

from pipeline.errors import PipelineError


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


class JobError(PipelineError):
    """One or more jobs of a stage failed, or the engine could not run them; the message names them and their logs."""

    def __init__(self, message: str, failures: list[JobFailure] | None = None):
        super().__init__(message)
        self.failures = failures or []


@dataclass
class Outcome:
    index: int
    value: Any = None
    failure: JobFailure | None = None


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def note(stream: TextIO | None, text: str) -> None:
    if stream is not None:
        stream.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        stream.flush()


def run_logged(fn: Callable[..., Any], job: dict[str, Any], index: int, stream: TextIO | None, where: str) -> Any:
    """Run one job, noting start, end and (on failure) the traceback in its log so that the log alone explains it."""
    note(stream, f"job {index + 1} started on {socket.gethostname()} (pid {os.getpid()}, {where})")
    start = time.time()
    try:
        value = fn(**job)
    except Exception:
        note(stream, f"job {index + 1} failed after {time.time() - start:.1f} s:\n{traceback.format_exc()}")
        raise
    note(stream, f"job {index + 1} finished in {time.time() - start:.1f} s")
    return value


def run_with_log_file(fn: Callable[..., Any], job: dict[str, Any], index: int, log_path: Path | None,
                       where: str) -> Any:
    """What a local or Dask worker runs: one attempt of one job, logged to its own file."""
    if log_path is None:
        return run_logged(fn, job, index, None, where)
    with open(log_path, "a", encoding="utf-8") as stream:
        return run_logged(fn, job, index, stream, where)

