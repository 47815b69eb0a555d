"""Embedding extraction real-time factor on one CPU thread, front end included; prints figures for the README.

    python bench/bench_extract.py [--seconds 10] [--repeat 3]

Paper-size models (GMM-ResNext: 512 Gaussians, C 512, depths [3, 3, 9, 3]; ResNet34: width 32) with random weights
(speed does not depend on them). GMM-ResNext's time includes MFCC + VAD + LGP under a 512-component GMM; ResNet34's
includes MFCC + VAD. Each runs in torch and as the file `python -m pipeline export` writes (ONNX, the GMM folded
into the graph as a frozen GMM layer), through onnxruntime with one thread. WeSpeaker publishes RTF 0.061 for its
ResNet34 (ONNX, one CPU thread).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time  # noqa: E402  (bench/, this script's directory)


@click.command()
@click.option("--seconds", default=10.0, show_default=True, help="utterance length")
@click.option("--repeat", default=3, show_default=True)
def main(seconds: float, repeat: int) -> None:
    from pipeline.features.gmm import DiagGMM
    from pipeline.features.lgp import LGPExtractor
    import tempfile

    import onnxruntime

    from pipeline.export import FramesToEmbedding, write_onnx
    from pipeline.features.mfcc import MfccOptions, mfcc_and_vad, normalize_frames
    from pipeline.models import build_model, count_parameters
    from pipeline.models.gmm_layer import TrainableGMMLayer

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = (np.sin(2 * np.pi * 140 * t) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
             + 0.05 * rng.standard_normal(t.size)) * 8000
    opts = MfccOptions()
    n = 512
    gmm = DiagGMM(weights=np.full(n, 1 / n), means=rng.standard_normal((n, 80)), variances=rng.uniform(0.5, 2, (n, 80)),
                  lgp_mean=np.zeros(n), lgp_std=np.ones(n))
    lgp = LGPExtractor(gmm)
    models = {
        "GMM-ResNext (512 Gaussians, C 512)": (build_model({"arch": "gmm_resnext", "in_channels": n}), True),
        "ResNet34 (width 32)": (build_model({"arch": "resnet34", "feat_dim": 80}), False),
    }
    print(f"one CPU thread, {seconds:.0f} s utterance, best of {repeat}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    for name, (model, uses_lgp) in models.items():
        model.eval()

        def embed() -> None:
            feats, vad = mfcc_and_vad(audio, opts)
            frames = normalize_frames(feats, vad)
            x = lgp(frames) if uses_lgp else frames
            with torch.no_grad():
                model(torch.from_numpy(np.ascontiguousarray(x.T))[None])

        embed()  # warm-up
        best = best_time(embed, repeat)
        print(f"  {name}, torch: {count_parameters(model) / 1e6:.1f} M parameters, RTF {best / seconds:.3f} "
              f"({seconds / best:.0f}x real time)")
        layer = TrainableGMMLayer.from_params(gmm.weights, gmm.means, gmm.variances, gmm.lgp_mean, gmm.lgp_std,
                                              trainable=False) if uses_lgp else None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            write_onnx(FramesToEmbedding(model, [layer], np.zeros(model.emb_dim)), 80, path, {})
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        def embed_onnx() -> None:
            feats, vad = mfcc_and_vad(audio, opts)
            session.run(["embedding"], {"frames": normalize_frames(feats, vad)[None]})

        embed_onnx()
        best = best_time(embed_onnx, repeat)
        print(f"  {name}, exported ONNX on onnxruntime: RTF {best / seconds:.3f} ({seconds / best:.0f}x real time)")
    print("  WeSpeaker ResNet34, ONNX, one CPU thread (published): RTF 0.061")


if __name__ == "__main__":
    main()
