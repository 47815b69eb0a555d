"""Training-crop reads on one CPU thread: `read_rows` against kaldiio's full decode + slice; figures for the README.

    python bench/bench_read_rows.py [--utts 100] [--crops 3000] [--kaldiio-crops 300] [--crop-rows 200]

A paper-size LGP archive (512 columns, utterances of 300-1200 rows, values like normalised LGP) is written twice to
a temporary directory, compressed (`CM`, what `ArchiveWriter(compress=True)` writes) and float32 (`FM`); both
readers then take the same random crops (random utterance, random start) from the page-cache-warm archives.
Rates are crops per second of this process's CPU time, which on an idle machine equals wall-clock time and on a
shared one leaves out the time other jobs hold the core.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads
    os.environ[_var] = "1"

import sys
import tempfile
import time
from pathlib import Path

import click
import kaldiio
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLS = 512
KALDI_AUTO_COMPRESSION = 1  # kAutomaticMethod: CM for more than 8 rows


@click.command()
@click.option("--utts", default=100, show_default=True, help="utterances in the archive")
@click.option("--crops", default=3000, show_default=True, help="crops read by read_rows")
@click.option("--kaldiio-crops", default=300, show_default=True, help="crops read by kaldiio (slower)")
@click.option("--crop-rows", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(utts: int, crops: int, kaldiio_crops: int, crop_rows: int, seed: int) -> None:
    from pipeline.utils.kaldi_rows import read_rows

    rng = np.random.default_rng(seed)
    lengths = rng.integers(300, 1201, utts)
    matrices = {f"utt{i:04d}": (rng.standard_normal((n, COLS)) + rng.standard_normal(COLS)).astype(np.float32)
                for i, n in enumerate(lengths)}
    print(f"{utts} utterances of {lengths.min()}-{lengths.max()} rows x {COLS} columns, {crop_rows}-row crops "
          "at random starts, one thread, crops per CPU-second")
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for kind, method in (("CM", KALDI_AUTO_COMPRESSION), ("FM", None)):
            ark, scp = Path(tmp, f"{kind}.ark"), Path(tmp, f"{kind}.scp")
            kaldiio.save_ark(str(ark), matrices, scp=str(scp), compression_method=method)
            table = dict(line.split() for line in scp.read_text().splitlines())
            ark.read_bytes()  # page cache warm for both readers
            crop_list = _random_crops(table, lengths, max(crops, kaldiio_crops), crop_rows, rng)
            for rxspec, start, stop in crop_list[:5]:  # same numbers, or the speed means nothing
                assert np.array_equal(read_rows(rxspec, start, stop), kaldiio.load_mat(rxspec)[start:stop])
            ours = _crops_per_second(lambda c: read_rows(*c), crop_list[:crops])
            theirs = _crops_per_second(lambda c: kaldiio.load_mat(c[0])[c[1]:c[2]], crop_list[:kaldiio_crops])
            rates[kind] = ours, theirs
            print(f"  {kind} ({ark.stat().st_size / 2**20:.0f} MiB): read_rows {ours:,.0f} crops/s, "
                  f"kaldiio load_mat + slice {theirs:,.0f} crops/s (x{ours / theirs:.1f})")
    ours, theirs = rates["CM"]
    print(f"512-d compressed LGP crop: {ours:.0f} crops/s per core, kaldiio full decode {theirs:.0f} "
          f"(x{ours / theirs:.1f})")


def _random_crops(table: dict[str, str], lengths: np.ndarray, count: int, crop_rows: int,
                  rng: np.random.Generator) -> list[tuple[str, int, int]]:
    rxspecs = list(table.values())
    crops = []
    for utt in rng.integers(0, len(rxspecs), count):
        start = int(rng.integers(0, lengths[utt] - crop_rows + 1))
        crops.append((rxspecs[utt], start, start + crop_rows))
    return crops


def _crops_per_second(read, crops: list[tuple[str, int, int]]) -> float:
    read(crops[0])  # warm-up: maps, caches
    began = time.process_time()
    for crop in crops:
        read(crop)
    return len(crops) / (time.process_time() - began)


if __name__ == "__main__":
    main()
