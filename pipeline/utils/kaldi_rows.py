"""Rows [start, stop) of one matrix in a Kaldi binary archive, touching only those rows' bytes.

Training takes a 200-frame crop of each utterance; decoding the whole matrix (`kaldiio.load_mat`) to keep 200 of
its 300-1200 rows wastes most of the reading and nearly all of the decoding. Here each archive is memory-mapped
once per process, the header is parsed in place, and only the crop's bytes are read and decoded.

Formats: `FM` and `DM` (float32 and float64 matrices) and Kaldi's compressed matrices `CM` (kOneByteWithColHeaders,
what `copy-feats --compress=true` writes), `CM2` (kTwoByte) and `CM3` (kOneByte); little-endian, as Kaldi and
kaldiio write them. Values are bit-identical to `kaldiio.load_mat(rxspec)[start:stop]` as float32: the decoding
repeats kaldiio's float32 operations in the same order. (kaldiio's, not Kaldi's: Kaldi's C++ expands the 16-bit
percentiles as `min + range * 1.52590218966964e-05f * value`, which can differ in the last bit.)

Maps: one read-only map per archive path per process, at most `MAX_OPEN_MAPS` (least recently used closed first).
Every call `os.stat`s the path (about a microsecond) and maps the file again when its device, inode, size or
mtime changed, so an archive replaced by a rename (how `ArchiveWriter` publishes one) is never read through the
old map. Rewriting an archive in place while a reader runs is not supported: as with any memory map, a read of
pages the file no longer has raises SIGBUS. Forked DataLoader workers keep the maps they inherit.
"""
from __future__ import annotations

import math
import mmap
import operator
import os
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from pipeline.errors import PipelineError

# Each map holds a file descriptor; a training set spread over a few hundred archives stays well under `ulimit -n`.
MAX_OPEN_MAPS = 128
# CM decoding reuses per-thread work buffers of up to this many values (8 MiB of indices); larger ones are not kept.
_SCRATCH_MAX_VALUES = 1 << 20

_FLOAT_TYPES = {"FM": np.dtype("<f4"), "DM": np.dtype("<f8")}
# Kaldi's compressed types: bytes per value, and the `c` of GlobalHeader::uint_to_float (65535 or 255).
_COMPRESSED_TYPES = {"CM": (1, np.float32(65535.0)), "CM2": (2, np.float32(65535.0)),
                     "CM3": (1, np.float32(255.0))}
_VECTOR_TYPES = ("FV", "DV")
_BINARY_MAGIC = b"\0B"
_LONGEST_HEADER = 2 + 4 + 16  # "\0B" + "CM2 " + GlobalHeader; "FM " + two sized ints is shorter

# CM byte values -> position inside their piece of the percentile interpolation (kaldiio's `char_to_float`):
# bytes 0..64 run p0..p25, 65..192 run p25..p75, 193..255 run p75..p100.
_BYTE = np.arange(256, dtype=np.float32)
_PIECES = (  # (bytes, offset subtracted from the byte, scale): kaldiio multiplies by (1 / 64.0) etc. in float32
    (slice(0, 65), np.float32(0.0), np.float32(1 / 64.0)),
    (slice(65, 193), np.float32(64.0), np.float32(1 / 128.0)),
    (slice(193, 256), np.float32(192.0), np.float32(1 / 63.0)),
)
_PIECE_STEPS = tuple((_BYTE[bytes_] - offset)[:, None] for bytes_, offset, _ in _PIECES)
# kaldiio's `(width * step) * scale` equals `width * (step * scale)` bit for bit when the scale is a power of two
# (scaling by 2**-k is exact, and rounding commutes with it): one pass over those pieces' table entries, not two.
_EXACT_SCALE = tuple(float(scale) == 2.0 ** np.round(np.log2(float(scale))) for _, _, scale in _PIECES)
_SCALED_STEPS = tuple(steps * scale for steps, (_, _, scale) in zip(_PIECE_STEPS, _PIECES))


class ArchiveRowsError(PipelineError, ValueError):
    """An archive entry that cannot be read as a matrix (missing, truncated, not binary, not a matrix) or a row
    range outside it; the message names the archive, the offset and, when given, the key."""


@dataclass(frozen=True)
class _Header:
    kind: str  # "FM", "DM", "CM", "CM2" or "CM3"
    rows: int
    cols: int
    body: int  # file offset of what follows the header: CM's column headers, the others' values
    min_value: np.float32 = np.float32(0)
    range: np.float32 = np.float32(0)


class _MappedArchive:
    """A read-only map of one archive file and the identity (device, inode, size, mtime) it was mapped under."""

    def __init__(self, path: str):
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            self.size = st.st_size
            # mmap refuses empty files; an empty archive then fails the size checks like a truncated one.
            self.buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""


class _MapCache:
    def __init__(self) -> None:
        self.maps: OrderedDict[str, _MappedArchive] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: str) -> _MappedArchive:
        st = os.stat(path)
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self.lock:
            mapped = self.maps.get(path)
            if mapped is not None and mapped.identity == identity:
                self.maps.move_to_end(path)
                return mapped
        mapped = _MappedArchive(path)
        with self.lock:
            self.maps[path] = mapped
            self.maps.move_to_end(path)
            while len(self.maps) > MAX_OPEN_MAPS:
                # Dropped, not closed: a map closes when the last array viewing it goes.
                self.maps.popitem(last=False)
        return mapped

    def clear(self) -> int:
        with self.lock:
            count = len(self.maps)
            self.maps.clear()
        return count

    def after_fork(self) -> None:
        # The parent's lock may have been held by another of its threads at the fork.
        self.lock = threading.Lock()


_MAPS = _MapCache()
os.register_at_fork(after_in_child=_MAPS.after_fork)
_scratch = threading.local()


def close_archives() -> int:
    """Drop this process's cached archive maps (each closes once no array views it); return how many there were."""
    return _MAPS.clear()


def matrix_shape(rxspec: str, *, key: str | None = None) -> tuple[int, int]:
    """(rows, cols) of the matrix at `rxspec` (`file.ark:offset`), from its header alone.

    Checks that the archive holds the whole entry the header describes, without reading its values. Raises
    ArchiveRowsError for what `read_rows` would refuse to read.
    """
    path, offset = _parse_rxspec(rxspec, key)
    header = _read_header(_open(path, offset, key), path, offset, key)
    return header.rows, header.cols


def read_rows(rxspec: str, start: int, stop: int, *, key: str | None = None) -> np.ndarray:
    """Rows [start, stop) of the matrix at `rxspec` (`file.ark:offset`, the offset pointing at its binary header,
    just past "<key> "), as a (stop - start, cols) float32 array; 0 <= start < stop <= rows.

    Equal, bit for bit, to `kaldiio.load_mat(rxspec)[start:stop]` in float32 (DM values are rounded to float32).
    The result's memory order follows the archive's: column-major (Fortran order) for CM, which stores each
    column's bytes together, C order for the others; so `np.ascontiguousarray(rows.T)`, the (cols, frames)
    layout a model takes, costs no copy for CM. `key` only names the entry in error messages.
    """
    path, offset = _parse_rxspec(rxspec, key)
    mapped = _open(path, offset, key)
    header = _read_header(mapped, path, offset, key)
    start, stop = _check_range(header, start, stop, path, offset, key)
    if header.kind in _FLOAT_TYPES:
        return _float_rows(mapped.buffer, header, start, stop)
    if header.kind == "CM":
        return _percentile_rows(mapped.buffer, header, start, stop)
    return _linear_rows(mapped.buffer, header, start, stop)


def _where(path: str, offset: int | None, key: str | None) -> str:
    place = path if offset is None else f"{path}:{offset}"
    return place if key is None else f"{place} (key {key!r})"


def _parse_rxspec(rxspec: str, key: str | None) -> tuple[str, int]:
    path, sep, offset = str(rxspec).rpartition(":")
    if not sep or not path or not offset.isdigit():
        raise ArchiveRowsError(f"{_where(str(rxspec), None, key)}: expected 'file.ark:offset' (an scp value); "
                               "pipes, ranges and text archives are not read by read_rows")
    return path, int(offset)


def _open(path: str, offset: int, key: str | None) -> _MappedArchive:
    try:
        return _MAPS.get(path)
    except OSError as err:
        raise ArchiveRowsError(f"{_where(path, offset, key)}: cannot open the archive: {err.strerror}") from err


def _read_header(mapped: _MappedArchive, path: str, offset: int, key: str | None) -> _Header:
    def fail(message: str) -> ArchiveRowsError:
        return ArchiveRowsError(f"{_where(path, offset, key)}: {message}")

    def truncated(needed: int, what: str) -> ArchiveRowsError:
        return fail(f"truncated entry: {what} needs the file to reach byte {needed}, but it has {mapped.size} "
                    "bytes; the archive was cut short (a killed job, a full disk): make it again")

    buf = mapped.buffer
    head = buf[offset:offset + _LONGEST_HEADER]
    if len(head) < 2:
        raise truncated(offset + 2, "the binary header")
    if head[:2] != _BINARY_MAGIC:
        text = head[:1] in (b"[", b" ") or head[:1].isalnum()
        raise fail(f"no Kaldi binary header ('\\0B') at this offset, found {head[:8]!r}"
                   + ("; a text archive? read_rows reads binary ones (copy-feats ark:in.ark ark:out.ark)" if text
                      else "; the offset must point just past '<key> ' in a binary archive"))
    if head[2:3] == b"\x04":
        raise fail("an int32 vector, not a matrix")
    space = head.find(b" ", 2)
    if space < 0:
        if len(head) < _LONGEST_HEADER:
            raise truncated(offset + len(head) + 1, "the binary header")
        raise fail(f"unreadable type token {head[2:10]!r} (expected FM, DM, CM, CM2 or CM3)")
    kind = head[2:space].decode("latin-1")
    body = offset + space + 1
    if kind in _FLOAT_TYPES:
        if len(head) < space + 11:
            raise truncated(body + 10, f"the {kind} header")
        if head[space + 1] != 4 or head[space + 6] != 4:
            raise fail(f"corrupt {kind} header: row and column counts are not int32")
        (rows,), (cols,) = struct.unpack_from("<i", head, space + 2), struct.unpack_from("<i", head, space + 7)
        header = _Header(kind, rows, cols, body + 10)
        end = header.body + rows * cols * _FLOAT_TYPES[kind].itemsize
    elif kind in _COMPRESSED_TYPES:
        if len(head) < space + 17:
            raise truncated(body + 16, f"the {kind} header")
        min_value, range_, rows, cols = struct.unpack_from("<ffii", head, space + 1)
        header = _Header(kind, rows, cols, body + 16, np.float32(min_value), np.float32(range_))
        value_bytes, _ = _COMPRESSED_TYPES[kind]
        end = header.body + (8 * cols if kind == "CM" else 0) + rows * cols * value_bytes
    elif kind in _VECTOR_TYPES:
        raise fail(f"a vector ({kind}), not a matrix")
    else:
        raise fail(f"unsupported type {kind!r} (read_rows reads FM, DM, CM, CM2 and CM3 matrices)")
    if rows < 0 or cols < 0:
        raise fail(f"corrupt {header.kind} header: {rows} rows, {cols} columns")
    if end > mapped.size:
        raise truncated(end, f"the {header.kind} {rows}x{cols} matrix")
    return header


def _check_range(header: _Header, start: int, stop: int, path: str, offset: int,
                 key: str | None) -> tuple[int, int]:
    try:
        start, stop = operator.index(start), operator.index(stop)
    except TypeError as err:
        raise ArchiveRowsError(f"{_where(path, offset, key)}: row bounds must be integers, "
                               f"got {start!r}, {stop!r}") from err
    if not 0 <= start < stop <= header.rows:
        raise ArchiveRowsError(f"{_where(path, offset, key)}: rows [{start}, {stop}) are not a non-empty range "
                               f"inside the matrix's {header.rows} rows")
    return start, stop


def _float_rows(buf: mmap.mmap, header: _Header, start: int, stop: int) -> np.ndarray:
    dtype = _FLOAT_TYPES[header.kind]
    values = np.ndarray((stop - start, header.cols), dtype, buffer=buf,
                        offset=header.body + start * header.cols * dtype.itemsize)
    return np.array(values, dtype=np.float32)


def _linear_rows(buf: mmap.mmap, header: _Header, start: int, stop: int) -> np.ndarray:
    """CM2 / CM3: kaldiio's `min_value + value * range / c`, one float32 operation at a time, in its order."""
    value_bytes, c = _COMPRESSED_TYPES[header.kind]
    stored = np.ndarray((stop - start, header.cols), np.dtype(f"<u{value_bytes}"), buffer=buf,
                        offset=header.body + start * header.cols * value_bytes)
    return _expand_linear(stored.astype(np.float32), header, c)


def _expand_linear(values: np.ndarray, header: _Header, c: np.float32) -> np.ndarray:
    """In place, on the stored integers as float32: kaldiio's GlobalHeader.uint_to_float."""
    values *= header.range
    values /= c
    values += header.min_value
    return values


def _percentile_rows(buf: mmap.mmap, header: _Header, start: int, stop: int) -> np.ndarray:
    """CM: each column maps bytes piecewise-linearly through its four 16-bit percentiles (p0, p25, p75, p100).

    Rather than evaluate all three pieces at every value, as kaldiio does, fill a table with every column's 256
    possible values (by the same float32 operations) and look the crop's bytes up in it.
    """
    rows, cols, n = header.rows, header.cols, stop - start
    stride = _table_stride(cols)
    percentiles = np.zeros((4, stride), np.float32)  # the padding columns' values are never looked up
    percentiles[:, :cols] = np.ndarray((cols, 4), np.dtype("<u2"), buffer=buf, offset=header.body).T
    p0, p25, p75, p100 = _expand_linear(percentiles, header, np.float32(65535.0))
    table = _scratch_array("table", (256, stride), np.float32)  # table[byte, column]
    for (bytes_, _, scale), steps, scaled, exact, low, high in zip(_PIECES, _PIECE_STEPS, _SCALED_STEPS,
                                                                   _EXACT_SCALE, (p0, p25, p75), (p25, p75, p100)):
        piece = table[bytes_]
        if exact:
            np.multiply(scaled, high - low, out=piece)
        else:
            np.multiply(steps, high - low, out=piece)
            piece *= scale
        piece += low
    # Column-major bytes: row c holds column c's bytes for rows [start, stop), contiguous in the file.
    stored = np.ndarray((cols, n), np.uint8, buffer=buf, offset=header.body + 8 * cols + start, strides=(rows, 1))
    # int32 indices (the table has fewer than 2**31 entries): half the memory traffic of intp, and `take` reads
    # them as they are; copy, scale and offset in place run twice as fast as one casting multiply
    index = _scratch_array("index", (cols, n), np.int32)
    np.copyto(index, stored)
    index *= stride
    index += _column_offsets(cols)
    return table.ravel().take(index).T


def _column_offsets(cols: int) -> np.ndarray:
    """(cols, 1) int32: column c's entries sit at table.ravel()[byte * stride + c]."""
    offsets = getattr(_scratch, "offsets", None)
    if offsets is None or len(offsets) != cols:
        offsets = np.arange(cols, dtype=np.int32)[:, None]
        _scratch.offsets = offsets
    return offsets


def _table_stride(cols: int) -> int:
    """Row length of the lookup table: an odd number of 64-byte cache lines, so that one column's 256 entries do
    not all fall into the same few cache sets (a 512-column table's 2 KiB rows did, and lookups ran 20 % slower)."""
    lines = -(-cols // 16) | 1
    return 16 * lines


def _scratch_array(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A per-thread buffer reused across calls: fresh large arrays each call cost page faults that dominate a crop."""
    size = math.prod(shape)
    if size > _SCRATCH_MAX_VALUES:
        return np.empty(shape, dtype)
    held = getattr(_scratch, name, None)
    if held is None or held.size < size:
        held = np.empty(size, dtype)
        setattr(_scratch, name, held)
    return held[:size].reshape(shape)
