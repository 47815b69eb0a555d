"""Speed of the front end (stages 1-3) on this machine; prints figures for the README.

    python bench/bench_frontend.py [--components 512] [--frames 200000] [--threads 1]

- MFCC+VAD real-time factor per core (one process, one BLAS thread);
- GMM fit time (scikit-learn EM, diagonal) for N components on F frames;
- LGP frames/s: ours against scikit-learn's own per-component log-likelihood on the same GMM, and against this
  machine's float32 GEMM rate for the same product ((T x 2D) @ (2D x N), the limit of the method).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time  # noqa: E402  (bench/, this script's directory)


@click.command()
@click.option("--components", default=512, show_default=True)
@click.option("--dim", default=80, show_default=True)
@click.option("--frames", default=100_000, show_default=True, help="frames for the LGP measurement")
@click.option("--fit-frames", default=50_000, show_default=True, help="frames for the GMM fit")
@click.option("--fit-components", default=64, show_default=True)
@click.option("--threads", default=1, show_default=True, help="BLAS threads")
def main(components: int, dim: int, frames: int, fit_frames: int, fit_components: int, threads: int) -> None:
    from threadpoolctl import threadpool_limits

    from pipeline.features.gmm import DiagGMM, fit_gmm
    from pipeline.features.lgp import LGPExtractor
    from pipeline.features.mfcc import MfccOptions, mfcc_and_vad

    rng = np.random.default_rng(0)
    print(f"machine: {os.cpu_count()} cores; BLAS threads {threads}")
    with threadpool_limits(threads):
        # MFCC + VAD on 60 s of speech-like audio (noise-modulated harmonics)
        t = np.arange(60 * 16000) / 16000
        audio = (np.sin(2 * np.pi * 140 * t) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
                 + 0.05 * rng.standard_normal(t.size)) * 8000
        opts = MfccOptions()
        seconds = best_time(lambda: mfcc_and_vad(audio, opts))
        print(f"MFCC+VAD (80 mel, 80 cepstra): {60 / seconds:.0f}x real time per core")

        fit_data = rng.standard_normal((fit_frames, dim))
        start = time.perf_counter()
        _, info = fit_gmm(fit_data, fit_components, max_iter=20, seed=0)
        print(f"GMM fit: {fit_components} components on {fit_frames} x {dim} frames, {info['iterations']} EM "
              f"iterations: {time.perf_counter() - start:.1f} s")

        gmm = DiagGMM(weights=np.full(components, 1 / components), means=rng.standard_normal((components, dim)),
                      variances=rng.uniform(0.5, 2, (components, dim)), lgp_mean=np.zeros(components),
                      lgp_std=np.ones(components))
        x = rng.standard_normal((frames, dim)).astype(np.float32)
        extractor = LGPExtractor(gmm)
        ours = best_time(lambda: extractor(x))
        sk = gmm.to_sklearn()
        sklearn_time = best_time(lambda: sk._estimate_weighted_log_prob(x), repeat=1)
        stacked = np.concatenate([x, x * x], axis=1)
        gemm = best_time(lambda: stacked @ extractor.projection)
        print(f"LGP, {components} components, dim {dim}, {frames} frames:")
        print(f"  ours:         {frames / ours:12,.0f} frames/s")
        print(f"  scikit-learn: {frames / sklearn_time:12,.0f} frames/s  (ours is {sklearn_time / ours:.1f}x faster)")
        print(f"  GEMM limit:   {frames / gemm:12,.0f} frames/s  (ours reaches {gemm / ours:.0%}; "
              f"{2 * frames * 2 * dim * components / gemm / 1e9:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
