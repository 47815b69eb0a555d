"""Kaldi ark/scp archives: the one writer and the one reader of feature, VAD and embedding archives.

Archives are Kaldi binary (`BFM`/`BFV`, or `CM` compressed matrices), readable by Kaldi's own `copy-feats` and
`copy-vector`. The writer is atomic: it fills `x.ark.tmp`, then renames it and writes the scp last, so an
scp that exists always points into a complete archive, and a crash leaves only `.tmp` files that no reader
trusts and the next run overwrites.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Iterable, Iterator

import kaldiio
import numpy as np

from pipeline.errors import PipelineError
from pipeline.utils.atomic import atomic_file, write_text_atomic
from pipeline.utils.paths import in_recipe
# Rows of a matrix without decoding the rest of it (training crops): pipeline/utils/kaldi_rows.py.
from pipeline.utils.kaldi_rows import ArchiveRowsError, close_archives, matrix_shape, read_rows  # noqa: F401

# Kaldi's CompressionMethod kAutomaticMethod: what `copy-feats --compress=true` uses.
KALDI_AUTO_COMPRESSION = 1


class ArchiveError(PipelineError, ValueError):
    """An scp or ark is missing, truncated or names a key twice; the message names the file."""


class ArchiveWriter:
    """Write (key, array) pairs into `<stem>.ark` + `<stem>.scp`, atomically.

    Use as a context manager; on an exception nothing is published. Keys must be written in C order so
    that the scp is a sorted Kaldi table.
    """

    def __init__(self, stem: str | os.PathLike, *, compress: bool = False, double: bool = False):
        # Stems like `raw_mfcc_train.3` carry a job number: append, never replace, the suffix.
        self.ark_path = Path(f"{stem}.ark")
        self.scp_path = Path(f"{stem}.scp")
        self.compress = compress
        self.dtype = np.float64 if double else np.float32   # float64 (Kaldi's DM/DV) for statistics
        self._stack = contextlib.ExitStack()
        self._handle: IO | None = None
        self._scp_lines: list[str] = []
        self._last_key: str | None = None

    def __enter__(self) -> "ArchiveWriter":
        self._handle = self._stack.enter_context(atomic_file(self.ark_path, "wb", durable=True))
        return self

    def write(self, key: str, array: np.ndarray) -> None:
        assert self._handle is not None, "use ArchiveWriter as a context manager"
        if self._last_key is not None and key.encode() <= self._last_key.encode():
            raise ArchiveError(f"{self.ark_path}: key {key!r} written after {self._last_key!r} (keys must be unique and sorted)")
        if not np.all(np.isfinite(array)):
            raise ArchiveError(f"{self.ark_path}: {key!r} has NaN or infinite values")
        start = self._handle.tell()
        method = KALDI_AUTO_COMPRESSION if self.compress and array.ndim == 2 else None
        kaldiio.save_ark(self._handle, {key: np.ascontiguousarray(array, dtype=self.dtype)},
                         compression_method=method)
        # The scp offset points just past "<key> ", at the binary header.
        self._scp_lines.append(f"{key} {self.ark_path}:{start + len(key.encode()) + 1}\n")
        self._last_key = key

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.__exit__(exc_type, exc, tb)  # the ark is renamed into place, or removed on an exception
        if exc_type is None:
            write_text_atomic(self.scp_path, "".join(self._scp_lines))


def write_archive(stem: str | os.PathLike, items: Iterable[tuple[str, np.ndarray]], *, compress: bool = False) -> Path:
    """Write all items (sorted by key) to `<stem>.ark/scp`; return the scp path."""
    with ArchiveWriter(stem, compress=compress) as writer:
        for key, array in sorted(items, key=lambda kv: kv[0].encode()):
            writer.write(key, array)
    return writer.scp_path


def read_scp(path: str | os.PathLike) -> dict[str, str]:
    """Read an scp (key -> `ark:offset` rxspecifier) in file order, checking keys are unique."""
    from pipeline.utils.datadir import read_table  # one table reader for the whole package

    return read_table(path)


def load(rxspec: str) -> np.ndarray:
    """Load one matrix or vector given its scp value (`file.ark:offset`)."""
    try:
        return np.asarray(kaldiio.load_mat(rxspec))
    except (OSError, ValueError, EOFError) as err:
        raise ArchiveError(f"cannot read {rxspec}: {err}") from err


def iterate_scp(path: str | os.PathLike, keys: Iterable[str] | None = None, *,
                recipe_dir: str | os.PathLike | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (key, array) for every entry of an scp (or only `keys`, in their order). Relative archive paths start
    at `recipe_dir` when given (the recipe writes them relative to its directory), else at the working directory."""
    table = read_scp(path)
    for key in (keys if keys is not None else table):
        if key not in table:
            raise ArchiveError(f"{path}: no entry for {key!r}")
        yield key, load(str(in_recipe(table[key], recipe_dir)) if recipe_dir is not None else table[key])


def referenced_archives(scp: str | os.PathLike) -> list[Path]:
    """The ark files an scp points into, in order of first mention."""
    arks: dict[str, None] = {}
    for value in read_scp(scp).values():
        arks.setdefault(value.rsplit(":", 1)[0], None)
    return [Path(a) for a in arks]


def merge_scps(parts: Iterable[str | os.PathLike], out: str | os.PathLike) -> int:
    """Concatenate per-job scps into one sorted table (atomically); return the entry count."""
    from pipeline.utils.datadir import write_table

    merged: dict[str, str] = {}
    for part in parts:
        for key, value in read_scp(part).items():
            if key in merged:
                raise ArchiveError(f"{part}: key {key!r} is also in another job's archive")
            merged[key] = value
    write_table(out, merged)
    return len(merged)
