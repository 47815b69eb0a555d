"""read_rows / matrix_shape: bit-exact against kaldiio's full decode for every format kaldiio writes, and errors that
name the archive, the offset and the key for the broken archives and bad ranges users will hit."""
from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import kaldiio
import numpy as np
import pytest

from pipeline.utils.kaldi_rows import ArchiveRowsError, close_archives, matrix_shape, read_rows

# Kaldi's CompressionMethod values, all of which kaldiio writes: CM for 1 (over 8 rows) and 2, CM2 for 1 (up to
# 8 rows), 3 and 4, CM3 for 5, 6 and 7.
COMPRESSION_METHODS = [1, 2, 3, 4, 5, 6, 7]
SHAPES = [(1, 1), (4, 2), (7, 3), (513, 80), (1000, 512)]


def matrix_values(method: int | None, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Values of the kind each method is made for; the general ones get heavy tails and a per-column offset, so
    that CM's three pieces (below p25, p25-p75, above p75) are all used."""
    if method == 4:
        return rng.integers(-32768, 32768, shape).astype(np.float32)
    if method == 6:
        return rng.integers(0, 256, shape).astype(np.float32)
    if method == 7:
        return rng.uniform(0, 1, shape).astype(np.float32)
    return (rng.standard_t(3, shape) * 4 + rng.normal(0, 10, shape[1])).astype(np.float32)


def write_ark(path: Path, matrices: dict[str, np.ndarray], method: int | None = None, **kwargs) -> dict[str, str]:
    """Write an ark + scp with kaldiio; return key -> rxspec (`path.ark:offset`)."""
    scp = path.with_suffix(".scp")
    kaldiio.save_ark(str(path), matrices, scp=str(scp), compression_method=method, **kwargs)
    return dict(line.split(maxsplit=1) for line in scp.read_text().splitlines())


def crops(rows: int) -> set[tuple[int, int]]:
    """Full range, each end, single rows, a 200-row crop at each end and one in the middle."""
    candidates = {(0, rows), (0, 1), (rows - 1, rows), (rows // 2, rows // 2 + 1), (0, min(rows, 200)),
                  (rows - min(rows, 200), rows), (rows // 4, 3 * rows // 4 + 1)}
    return {(start, stop) for start, stop in candidates if 0 <= start < stop <= rows}


def check_against_kaldiio(table: dict[str, str]) -> None:
    for key, rxspec in table.items():
        full = kaldiio.load_mat(rxspec)
        assert matrix_shape(rxspec, key=key) == full.shape
        for start, stop in crops(full.shape[0]):
            got = read_rows(rxspec, start, stop, key=key)
            assert got.dtype == np.float32 and got.shape == (stop - start, full.shape[1])
            assert np.array_equal(got, full[start:stop].astype(np.float32)), (key, start, stop)


@pytest.mark.parametrize("method", COMPRESSION_METHODS)
def test_compressed_rows_equal_kaldiio_full_decode(tmp_path, method):
    rng = np.random.default_rng(method)
    matrices = {f"utt{r}x{c}": matrix_values(method, (r, c), rng) for r, c in SHAPES}
    if method in (1, 2, 3, 5):  # the range-from-data methods: constant matrices and columns are special cases
        matrices["constant"] = np.full((20, 6), -2.5, np.float32)
        matrices["constant_column"] = matrix_values(method, (30, 5), rng)
        matrices["constant_column"][:, 2] = 7.0
    check_against_kaldiio(write_ark(tmp_path / "feats.ark", matrices, method))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_rows_equal_kaldiio(tmp_path, dtype):
    rng = np.random.default_rng(0)
    matrices = {f"utt{r}x{c}": matrix_values(None, (r, c), rng).astype(dtype) * np.pi for r, c in SHAPES}
    table = write_ark(tmp_path / "feats.ark", matrices)
    assert kaldiio.load_mat(next(iter(table.values()))).dtype == dtype  # FM and DM were written
    check_against_kaldiio(table)


@pytest.mark.parametrize("method, c_order", [(None, True), (2, False), (3, True), (5, True)])
def test_result_is_a_writable_copy_in_the_archives_order(tmp_path, method, c_order):
    table = write_ark(tmp_path / "feats.ark", {"u": matrix_values(None, (50, 16), np.random.default_rng(1))}, method)
    rows = read_rows(table["u"], 10, 30)
    assert rows.flags.writeable  # the map is read-only: a view of it would not be
    # CM stores columns together: its rows come back column-major, so the (cols, frames) a model takes is free.
    assert rows.flags.c_contiguous if c_order else rows.T.flags.c_contiguous


def test_concurrent_threads_read_the_same_values(tmp_path):
    rng = np.random.default_rng(2)
    table = write_ark(tmp_path / "feats.ark", {f"u{i}": matrix_values(None, (300 + 40 * i, 64), rng)
                                               for i in range(4)}, 2)
    expected = {key: kaldiio.load_mat(rxspec) for key, rxspec in table.items()}
    failures = []

    def read_many(seed: int) -> None:
        picks = np.random.default_rng(seed)
        for _ in range(30):
            key = list(table)[picks.integers(len(table))]
            start = int(picks.integers(0, 100))
            if not np.array_equal(read_rows(table[key], start, start + 200), expected[key][start:start + 200]):
                failures.append((key, start))

    threads = [threading.Thread(target=read_many, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def _read_in_child(rxspec: str) -> np.ndarray:
    return read_rows(rxspec, 3, 9)


def test_forked_worker_reads_through_inherited_map(tmp_path):
    table = write_ark(tmp_path / "feats.ark", {"u": matrix_values(None, (40, 8), np.random.default_rng(3))}, 2)
    parent = read_rows(table["u"], 3, 9)  # the map exists before the fork, as in a DataLoader's parent
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert np.array_equal(pool.apply(_read_in_child, (table["u"],)), parent)


def test_one_map_per_archive_and_a_replaced_archive_is_mapped_again(tmp_path):
    rng = np.random.default_rng(4)
    close_archives()
    first = write_ark(tmp_path / "a.ark", {"u": matrix_values(None, (40, 8), rng)}, 2)
    other = write_ark(tmp_path / "b.ark", {"u": matrix_values(None, (40, 8), rng)}, 2)
    read_rows(first["u"], 0, 10)
    read_rows(first["u"], 5, 20)
    read_rows(other["u"], 0, 10)
    assert close_archives() == 2

    read_rows(first["u"], 0, 10)
    # Rewrite a.ark the way ArchiveWriter publishes one: a new file renamed over the old (a new inode), same size.
    replacement = write_ark(tmp_path / "new.ark", {"u": matrix_values(None, (40, 8), rng)}, 2)
    os.replace(tmp_path / "new.ark", tmp_path / "a.ark")
    rxspec = replacement["u"].replace("new.ark", "a.ark")
    assert rxspec == first["u"]
    assert np.array_equal(read_rows(rxspec, 0, 10), kaldiio.load_mat(rxspec)[:10])


@pytest.fixture
def one_matrix(tmp_path):
    """A 50 x 8 CM matrix after a float32 one, so that its offset is not 0: (ark path, rxspec, offset)."""
    rng = np.random.default_rng(5)
    table = write_ark(tmp_path / "feats.ark", {"a_first": matrix_values(None, (3, 8), rng),
                                                "b_utt": matrix_values(None, (50, 8), rng)}, 2)
    rxspec = table["b_utt"]
    return tmp_path / "feats.ark", rxspec, int(rxspec.rsplit(":", 1)[1])


def assert_names_entry(err: pytest.ExceptionInfo, ark: Path, offset: int, *words: str) -> None:
    message = str(err.value)
    assert f"{ark}:{offset}" in message and "'b_utt'" in message, message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("start, stop", [(-1, 5), (0, 51), (45, 60), (7, 7), (8, 3)])
def test_rows_outside_the_matrix(one_matrix, start, stop):
    ark, rxspec, offset = one_matrix
    with pytest.raises(ArchiveRowsError) as err:
        read_rows(rxspec, start, stop, key="b_utt")
    assert_names_entry(err, ark, offset, f"[{start}, {stop})", "50 rows")


@pytest.mark.parametrize("keep, what", [(22 + 8 * 8 + 100, "data"), (10, "header")])
def test_truncated_entry(one_matrix, keep, what):
    ark, rxspec, offset = one_matrix
    read_rows(rxspec, 0, 10)  # mapped before the cut: the cached map must not be trusted afterwards
    os.truncate(ark, offset + keep)
    for read in (lambda: read_rows(rxspec, 0, 10, key="b_utt"), lambda: matrix_shape(rxspec, key="b_utt")):
        with pytest.raises(ArchiveRowsError) as err:
            read()
        assert_names_entry(err, ark, offset, "truncated", str(offset + keep))


def corrupted_copy(ark: Path, offset: int, replacement: bytes) -> Path:
    data = bytearray(ark.read_bytes())
    data[offset:offset + len(replacement)] = replacement
    ark.write_bytes(bytes(data))
    return ark


def test_wrong_binary_magic(one_matrix):
    ark, rxspec, offset = one_matrix
    corrupted_copy(ark, offset, b"XY")
    with pytest.raises(ArchiveRowsError) as err:
        read_rows(rxspec, 0, 10, key="b_utt")
    assert_names_entry(err, ark, offset, "\\0B", "XY")


def test_unknown_matrix_type(one_matrix):
    ark, rxspec, offset = one_matrix
    corrupted_copy(ark, offset + 2, b"QM")
    with pytest.raises(ArchiveRowsError) as err:
        matrix_shape(rxspec, key="b_utt")
    assert_names_entry(err, ark, offset, "unsupported type 'QM'")


def test_text_archive(tmp_path):
    table = write_ark(tmp_path / "text.ark", {"b_utt": np.ones((5, 3), np.float32)}, text=True)
    offset = int(table["b_utt"].rsplit(":", 1)[1])
    with pytest.raises(ArchiveRowsError) as err:
        read_rows(table["b_utt"], 0, 2, key="b_utt")
    assert_names_entry(err, tmp_path / "text.ark", offset, "text archive")


@pytest.mark.parametrize("vector, kind", [(np.ones(5, np.float32), "vector (FV)"),
                                          (np.arange(5, dtype=np.int32), "int32 vector")])
def test_vectors_are_not_matrices(tmp_path, vector, kind):
    table = write_ark(tmp_path / "vectors.ark", {"b_utt": vector})
    offset = int(table["b_utt"].rsplit(":", 1)[1])
    with pytest.raises(ArchiveRowsError) as err:
        read_rows(table["b_utt"], 0, 1, key="b_utt")
    assert_names_entry(err, tmp_path / "vectors.ark", offset, kind)


def test_missing_empty_and_short_archives(tmp_path):
    with pytest.raises(ArchiveRowsError, match=r"missing\.ark:0 \(key 'u'\): cannot open"):
        read_rows(f"{tmp_path}/missing.ark:0", 0, 1, key="u")
    (tmp_path / "empty.ark").write_bytes(b"")
    with pytest.raises(ArchiveRowsError, match="empty.ark:0: truncated"):
        matrix_shape(f"{tmp_path}/empty.ark:0")
    table = write_ark(tmp_path / "feats.ark", {"u": np.ones((5, 3), np.float32)})
    size = (tmp_path / "feats.ark").stat().st_size
    with pytest.raises(ArchiveRowsError, match=f"feats.ark:{size + 10}: truncated"):
        read_rows(table["u"].rsplit(":", 1)[0] + f":{size + 10}", 0, 1)


@pytest.mark.parametrize("rxspec", ["feats.ark", "feats.ark:12[0:3]", "cat feats.ark |", "feats.ark:-4"])
def test_rxspec_must_be_file_and_offset(rxspec):
    with pytest.raises(ArchiveRowsError, match="expected 'file.ark:offset'"):
        read_rows(rxspec, 0, 1, key="u")
