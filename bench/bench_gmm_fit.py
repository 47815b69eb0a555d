"""Peak memory and time of stage 2's GMM fit at paper scale: scikit-learn's EM as is, and with the E-step in chunks
(`pipeline.features.gmm.chunked_gaussian_mixture`, what stage 2 runs); figures for the README.

    python bench/bench_gmm_fit.py [--frames 2000000] [--plain-frames 100000] [--components 512] [--max-iter 2]

Each fit runs in a fresh process on synthetic 80-d frames (a random 64-cluster mixture); its peak resident memory
(`ru_maxrss`) includes the frames themselves (float64, 640 B a frame). Memory per frame is what grows with the
config's `gmm.max_frames`; the plain fit is run on fewer frames and its per-frame figure extrapolated.
"""
from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _fit(frames: int, components: int, dim: int, max_iter: int, chunked: bool, queue) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (64, dim))
    x = centres[rng.integers(0, 64, frames)] + rng.standard_normal((frames, dim))
    began = time.time()
    if chunked:
        from pipeline.features.gmm import chunked_gaussian_mixture
        gm = chunked_gaussian_mixture(components, max_iter=max_iter, random_state=0)
    else:
        from sklearn.mixture import GaussianMixture
        gm = GaussianMixture(components, covariance_type="diag", max_iter=max_iter, init_params="k-means++",
                             random_state=0)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is cut short on purpose
        gm.fit(x)
    queue.put((time.time() - began, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))


def measure(frames: int, components: int, dim: int, max_iter: int, chunked: bool) -> tuple[float, int]:
    queue = multiprocessing.get_context("fork").Queue()
    proc = multiprocessing.get_context("fork").Process(target=_fit, args=(frames, components, dim, max_iter,
                                                                           chunked, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


@click.command()
@click.option("--frames", default=2_000_000, show_default=True, help="frames of the chunked fit (paper config)")
@click.option("--plain-frames", default=100_000, show_default=True, help="frames of scikit-learn's plain fit")
@click.option("--components", default=512, show_default=True)
@click.option("--dim", default=80, show_default=True)
@click.option("--max-iter", default=2, show_default=True, help="EM iterations (memory does not grow with them)")
def main(frames: int, plain_frames: int, components: int, dim: int, max_iter: int) -> None:
    gib = 2 ** 30
    print(f"{components} diagonal Gaussians, {dim}-d frames, {max_iter} EM iterations after k-means++ seeding")
    seconds, peak = measure(plain_frames, components, dim, max_iter, chunked=False)
    per_frame = peak / plain_frames
    print(f"  scikit-learn as is, {plain_frames:,} frames: peak {peak / gib:.2f} GiB ({per_frame / 1024:.1f} KiB a "
          f"frame: {per_frame * frames / gib:.0f} GiB at {frames:,}), {seconds:.0f} s")
    seconds, peak = measure(frames, components, dim, max_iter, chunked=True)
    print(f"  E-step in chunks, {frames:,} frames: peak {peak / gib:.2f} GiB ({peak / frames / 1024:.2f} KiB a "
          f"frame, the frames themselves 0.63), {seconds:.0f} s")
    print(f"GMM fit, {components} x {dim}, {frames:,} frames: peak {peak / gib:.1f} GiB")


if __name__ == "__main__":
    main()
