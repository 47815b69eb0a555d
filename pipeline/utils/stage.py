"""The one place where a stage (or one job of it) decides whether its work is done and current.

A finished unit of work leaves `<dir>/.done.<name>`, a small JSON record of its key and of the size and modification
time of every file it wrote. The key is a fingerprint of the config it ran with and of the output keys
(`output_key`) of the stage outputs it read, never of the text of an scp (which stays the same when the numbers
change). So keys chain: a change upstream changes the key of everything computed from it, and exactly that is
redone. The recorded file facts make an output that changed on disk after it was written (edited, truncated,
replaced) count as not done, both for the stage that wrote it and for every stage that reads it.

A stage clears its marker before it rewrites any output and marks it done only when every output is complete, so
a crash half-way never leaves a marker beside outputs it does not describe.

The record also holds each file's sha256, for the content checks that read every byte (pipeline/utils/checksums.py):
`verify_contents`, `python -m pipeline validate`, and `output_key` under GMM_RESNEXT_VERIFY_INPUTS.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterable

from pipeline.errors import PipelineError
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.checksums import (DIGESTS_FIELD, content_problems, describe_content_problem, output_digests,
                                      verify_inputs_enabled)
from pipeline.utils.config import fingerprint


# The done markers whose outputs other stages read, and how a person names the stage that writes them.
STAGE_NAMES = {"mfcc": "stage 1 (MFCC + VAD)", "gmm": "stage 2 (GMMs)", "lgp": "stage 3 (LGP)",
               "train": "stage 4 (training)", "extract": "stage 5 (embeddings)", "score": "stage 6 (scoring)",
               "plda": "stage 6 (scoring: PLDA)"}


class StageError(PipelineError):
    """A stage's input is missing, unfinished, or changed after the stage that wrote it finished."""


def file_digest(path: str | os.PathLike) -> str:
    """Content hash of a small table that a stage reads as it is (wav.scp, utt2spk, spk2gender)."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]


def file_facts(paths: Iterable[str | os.PathLike], relative_to: str | os.PathLike | None = None
               ) -> dict[str, list[int]]:
    """{path: [size, mtime in ns]} of files (a missing one is [-1, -1]); paths relative to `relative_to` if given,
    else as given (the recipe writes them relative to its directory, so that a moved checkout has the same facts)."""
    facts = {}
    for path in paths:
        name = os.path.relpath(path, relative_to) if relative_to is not None else str(path)
        try:
            st = os.stat(path)
            facts[name] = [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            facts[name] = [-1, -1]
    return facts


DONE_PREFIX = ".done."


def _marker(directory: str | os.PathLike, name: str) -> Path:
    return Path(directory) / f"{DONE_PREFIX}{name}"


def _record(directory: str | os.PathLike, name: str) -> dict[str, Any] | None:
    try:
        record = json.loads(_marker(directory, name).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # none yet, or a marker of another version of the toolkit
        return None
    return record if isinstance(record, dict) and {"key", "files"} <= set(record) else None


def _changed_file(directory: str | os.PathLike, record: dict[str, Any]) -> tuple[str, list[int], list[int]] | None:
    """The first recorded output whose size or modification time differs now, with both facts. Outputs are recorded
    relative to the marker's directory, so a copied or moved result is checked where it is now."""
    for name, facts in record["files"].items():
        path = os.path.normpath(os.path.join(directory, name))
        now = file_facts([path])[path]
        if now != facts:
            return path, facts, now
    return None


def is_done(directory: str | os.PathLike, name: str, key: str) -> bool:
    """True when `name` finished with the same key and none of its outputs changed since."""
    record = _record(directory, name)
    return record is not None and record["key"] == key and _changed_file(directory, record) is None


def mark_done(directory: str | os.PathLike, name: str, key: str, outputs: Iterable[str | os.PathLike], *,
              made_under: dict[str, str] | None = None) -> None:
    """Record that `name` finished with `key`, and the facts of the files it wrote (all must exist). `made_under`:
    config section -> fingerprint of what the outputs were computed under, which `output_key` checks for readers."""
    files = file_facts(outputs, relative_to=directory)
    missing = [p for p, facts in files.items() if facts[0] < 0]
    if missing:
        raise StageError(f"{directory}: {name} cannot be marked done, {missing[0]} was not written")
    Path(directory).mkdir(parents=True, exist_ok=True)
    record = {"key": key, "files": files, DIGESTS_FIELD: output_digests(directory, files),
              "made_under": made_under or {}}
    write_text_atomic(_marker(directory, name), json.dumps(record, indent=1) + "\n")


def clear_done(directory: str | os.PathLike, name: str) -> None:
    """Forget that `name` finished: call before rewriting any of its outputs."""
    _marker(directory, name).unlink(missing_ok=True)


def recorded_key(directory: str | os.PathLike, name: str) -> str | None:
    """The key `name` finished with in `directory` (None when it has not), whatever its outputs look like now."""
    record = _record(directory, name)
    return None if record is None else record["key"]


def recorded_digests(directory: str | os.PathLike, name: str) -> dict[str, str] | None:
    """The sha256 of each output `name` recorded in `directory` ({} for a marker written before digests were
    recorded; None when it has not finished there)."""
    record = _record(directory, name)
    return None if record is None else record.get(DIGESTS_FIELD, {})


def verify_contents(directory: str | os.PathLike, name: str) -> list[tuple[str, str]]:
    """[(path, problem)] for each output of `name` whose bytes differ from the sha256 recorded when it finished,
    whatever its size and modification time say; [] when all match (or the marker records no digests)."""
    record = _record(directory, name)
    if record is None:
        return [(str(_marker(directory, name)), "is missing or unreadable")]
    return content_problems(directory, record)


def _when(mtime_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime_ns / 1e9)) + f".{mtime_ns % 10**9:09d}"


def output_key(directory: str | os.PathLike, name: str, made_under: dict[str, str] | None = None) -> str:
    """The key that a stage reading the outputs of `name` (a key of STAGE_NAMES) in `directory` chains into its own
    key. It changes whenever those outputs were rewritten. StageError when `name` has not finished there, when one
    of its outputs changed since (its bytes too, under GMM_RESNEXT_VERIFY_INPUTS), or when they were computed under
    another config section than the reader's `made_under` (section -> fingerprint) says: a stage never reads
    features of one config into a model that will say it used another."""
    what = STAGE_NAMES[name]
    record = _record(directory, name)
    if record is None:
        raise StageError(f"{directory}: {what} has not finished there (no {_marker(directory, name).name}); "
                         f"run it first")
    changed = _changed_file(directory, record)
    if changed is not None:
        path, before, now = changed
        state = "is missing" if now[0] < 0 else (f"is {now[0]} bytes, modified {_when(now[1])} (was {before[0]} bytes, "
                                                 f"modified {_when(before[1])})")
        raise StageError(f"{path} changed after {what} wrote it: it {state}; rerun {what} for {directory}")
    recorded = record.get("made_under") or {}
    for section, expected in (made_under or {}).items():
        if section in recorded and recorded[section] != expected:
            raise StageError(f"{directory}: {what} computed these under another `{section}:` config than the current "
                             f"one: rerun {what} for {directory} with this config")
    if verify_inputs_enabled():
        problems = content_problems(directory, record)
        if problems:
            more = f" ({len(problems) - 1} more such files)" if len(problems) > 1 else ""
            raise StageError(f"{describe_content_problem(*problems[0], what)} for {directory}{more}")
    return fingerprint(record["key"], sorted(record["files"].items()))
