"""The cost of the content checks: sha256 of a stage's archive, as `mark_done`, `validate` and readers under
GMM_RESNEXT_VERIFY_INPUTS compute it (1 MiB blocks); a figure for the README.

    python bench/bench_checksums.py [--mb 200] [--repeats 3]

A float32 archive of paper-size LGP matrices (512 columns) is written to a temporary directory by the one archive
writer, then hashed from the page cache (as right after a stage wrote it). The rate is MB per second of this
process's CPU time, which on an idle machine equals wall-clock time and on a shared one leaves out the time other
jobs hold the core; reading from a cold disk adds the disk's own time.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

COLS = 512
ROWS = 300  # 3 s of frames: 600 KB a matrix


@click.command()
@click.option("--mb", default=200, show_default=True, help="size of the generated archive")
@click.option("--repeats", default=3, show_default=True, help="hashes of it; the fastest counts")
def main(mb: int, repeats: int) -> None:
    from pipeline.utils.archive import ArchiveWriter
    from pipeline.utils.checksums import output_digests

    rng = np.random.default_rng(0)
    block = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        with ArchiveWriter(Path(tmp) / "lgp") as writer:
            for i in range(mb * 10**6 // block.nbytes):
                writer.write(f"utt{i:06d}", block + i)
        size = (Path(tmp) / "lgp.ark").stat().st_size
        cpu, wall = [], []
        for _ in range(repeats):
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            output_digests(tmp, ["lgp.ark"])
            cpu.append(time.process_time() - start_cpu)
            wall.append(time.perf_counter() - start_wall)
    rate = size / 1e6 / min(cpu)
    print(f"sha256 of a {size / 1e6:.0f} MB archive (page cache), best of {repeats}: {rate:.0f} MB/s of CPU time "
          f"({size / 1e6 / min(wall):.0f} MB/s wall); 1 TB: {1e6 / rate / 60:.0f} CPU-minutes")


if __name__ == "__main__":
    main()
