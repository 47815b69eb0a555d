"""The one way the package writes a file: under a temporary name beside it, then renamed over it.

A crash therefore never leaves half a file under the final name, only a `<name>.tmp` that no reader trusts and
the next run overwrites. Files that must be checked when they are read back (checkpoints, GMMs) also get a
content hash beside them, `<name>.sha256` in `sha256sum` format, so `sha256sum -c final.pt.sha256` checks one by
hand and `verify_checksum` refuses one whose bytes changed after it was written.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import IO, Iterator

from pipeline.errors import PipelineError

TMP_SUFFIX = ".tmp"
CHECKSUM_SUFFIX = ".sha256"


class IntegrityError(PipelineError):
    """A file whose content no longer matches the hash recorded when it was written; the message names it."""


def tmp_path(path: str | os.PathLike) -> Path:
    """Where `path` is written before it is renamed into place."""
    path = Path(path)
    return path.with_name(path.name + TMP_SUFFIX)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write `path` through (for writers that take a file name); renamed onto `path` when the
    block ends without an exception, removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, durable: bool = False) -> Iterator[IO]:
    """An open handle (text mode in UTF-8, or binary with `mode="wb"`) whose content replaces `path` when the block
    ends without an exception. `durable` also flushes it to the disk before the rename (archives, checkpoints:
    files that are expensive to remake)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file writes whole files: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())


def swap_in_directory(staged: str | os.PathLike, final: str | os.PathLike) -> None:
    """Put the complete directory `staged` at `final`, the one directory swap of the package: the old directory is
    renamed aside, the new one renamed in, and only then is the old one removed, so a crash leaves the old or the
    new one whole (`recover_directory` puts back one left aside), never a half. A link or a file at `final` is
    replaced, never followed."""
    staged, final = Path(staged), Path(final)
    old = aside_path(final)
    if old.exists() or old.is_symlink():   # from a swap cut short: `final` is about to be replaced anyway
        _remove(old)
    if final.is_symlink() or final.is_file():
        final.unlink()
    elif final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)


def recover_directory(final: str | os.PathLike) -> None:
    """A swap cut short between its two renames leaves the previous directory aside: put it back."""
    old = aside_path(final)
    if old.is_dir() and not Path(final).exists():
        os.replace(old, final)


def aside_path(final: str | os.PathLike) -> Path:
    final = Path(final)
    return final.with_name(f".{final.name}.old")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_file(path) as handle:
        handle.write(text)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def write_checksum(path: str | os.PathLike) -> str:
    """Record the sha256 of `path` beside it (after the file itself is complete); return the hash."""
    digest = sha256_file(path)
    write_text_atomic(checksum_path(path), f"{digest}  {Path(path).name}\n")
    return digest


def verify_checksum(path: str | os.PathLike) -> str:
    """The sha256 of `path` if it equals the one recorded by `write_checksum`; IntegrityError otherwise."""
    path = Path(path)
    recorded_path = checksum_path(path)
    if not recorded_path.is_file():
        raise IntegrityError(f"{path} has no recorded content hash ({recorded_path.name} is missing), so it cannot "
                             f"be trusted: remake it with the stage that writes it")
    recorded = recorded_path.read_text(encoding="utf-8").split()[:1]
    actual = sha256_file(path)
    if recorded != [actual]:
        raise IntegrityError(f"{path} changed after it was written: its sha256 is {actual[:16]}..., "
                             f"{recorded_path.name} records {(recorded or ['nothing'])[0][:16]}...; it is corrupt or "
                             f"was replaced: remake it with the stage that writes it, or restore the original")
    return actual
