"""The one place where a stage (or one job of it) decides whether its work is already done and valid.

A finished unit of work leaves `<dir>/.done.<name>` holding a fingerprint of what it was computed from (the
config section and the contents of its input tables). Rerunning with the same inputs skips the work;
changed inputs or config redo it. Markers are written after the outputs, so a crash leaves no marker.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from pipeline.utils.config import fingerprint


def file_digest(path: str | os.PathLike) -> str:
    """Content hash of a (small) input table such as an scp or utt2spk."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:16]


def inputs_fingerprint(config_section: Any, input_files: list[str | os.PathLike]) -> str:
    return fingerprint(config_section, [(str(p), file_digest(p)) for p in input_files])


def _marker(directory: str | os.PathLike, name: str) -> Path:
    return Path(directory) / f".done.{name}"


def is_done(directory: str | os.PathLike, name: str, key: str, outputs: list[str | os.PathLike] = ()) -> bool:
    """True when `name` finished with the same fingerprint and all its outputs still exist."""
    marker = _marker(directory, name)
    if not marker.is_file() or marker.read_text().strip() != key:
        return False
    return all(Path(p).exists() for p in outputs)


def mark_done(directory: str | os.PathLike, name: str, key: str) -> None:
    marker = _marker(directory, name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(key + "\n")
    os.replace(tmp, marker)


def clear_done(directory: str | os.PathLike, name: str) -> None:
    _marker(directory, name).unlink(missing_ok=True)
