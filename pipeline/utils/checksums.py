"""Content hashes of a stage's outputs, recorded in its done marker and checked on demand.

Size and modification time catch every ordinary rewrite and cost nothing, so they decide whether work is done. They
miss bytes changed with the time put back (`touch -r`, a restore that keeps times, a bad disk), which move scores
without a trace; the sha256 recorded beside them catches that. Hashing reads every byte, so it runs where it is
asked for: `python -m pipeline validate`, and every stage's reads when `GMM_RESNEXT_VERIFY_INPUTS` is set
(run.sh sets it from the config's `checks.verify_inputs`).

A marker written before digests were recorded has none: its outputs are not content-checked (size and time still
are). Counting it as not done instead would redo every finished stage, training included, on upgrade.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

from pipeline.utils.atomic import sha256_file

DIGESTS_FIELD = "sha256"  # {path relative to the marker's directory: hex digest}, beside the record's "files"
VERIFY_INPUTS_ENV = "GMM_RESNEXT_VERIFY_INPUTS"


def output_digests(directory: str | os.PathLike, names: Iterable[str]) -> dict[str, str]:
    """{name: sha256} of files named relative to `directory` (read in 1 MiB blocks: memory stays flat). A directory
    among the outputs (the demo corpus's wav/) has no content of its own to hash: its size and time stand for it."""
    return {name: sha256_file(os.path.join(directory, name)) for name in names
            if not os.path.isdir(os.path.join(directory, name))}


def content_problems(directory: str | os.PathLike, record: dict[str, Any]) -> list[tuple[str, str]]:
    """[(path, problem)] for each output of a done record whose bytes differ from its recorded sha256 (or that is
    gone); empty when all match or when the record holds no digests."""
    problems = []
    for name, recorded in record.get(DIGESTS_FIELD, {}).items():
        path = os.path.normpath(os.path.join(directory, name))
        try:
            found = sha256_file(path)
        except FileNotFoundError:
            problems.append((path, "is missing"))
            continue
        if found != recorded:
            problems.append((path, f"has sha256 {found[:16]}..., its stage recorded {recorded[:16]}..."))
    return problems


def describe_content_problem(path: str, problem: str, stage: str) -> str:
    """One line for a person: the file, what is wrong with it and which stage remakes it."""
    if problem == "is missing":
        return f"{path} is missing: rerun {stage}"
    # a rerun would skip the stage, the file's size and time being unchanged: deleting it makes the stage redo it
    return f"{path} {problem}: its content changed after {stage} wrote it; delete it and rerun {stage}"


def verify_inputs_enabled() -> bool:
    """Whether stages re-hash the outputs they read (`GMM_RESNEXT_VERIFY_INPUTS` = true/1/yes)."""
    return os.environ.get(VERIFY_INPUTS_ENV, "").strip().lower() in ("1", "true", "yes")
