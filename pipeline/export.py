"""A trained network as one file for deployment: ONNX or TorchScript, from front-end frames to the embedding.

The exported graph reads what stage 1 writes, after the VAD and mean normalisation `FeatureSource` applies: the
voiced MFCC frames (or, for an `input: fbank` model, the log mel filterbank frames), mean removed, as a
(batch, frames, dim) float32 tensor with any number of frames. An LGP model's GMMs are folded into the graph as
frozen GMM layers computing stage 3's normalised LGP map (equal within 1e-4), so the file needs no GMM files and no
stage 3; dGMM-ResNext computes both maps from the one MFCC input. Outputs: `embedding`, the network's vector
(stage 5's row 0 when the frames are the whole utterance), and `normalized`, the model's scorer's full-utterance
row of it (`scoring.CosineScorer.rows`: the training mean stage 6 removes taken off, length-normalised), so that a
cosine score is a dot product.

The front end travels with the file as metadata (`front_end`, the frozen `features:` section, and `input`, mfcc or
fbank); `frames_from_audio` turns a recording into the input with it:

    >>> import numpy as np, onnxruntime                                                   # doctest: +SKIP
    >>> from pipeline.export import frames_from_audio, read_onnx_metadata                 # doctest: +SKIP
    >>> meta = read_onnx_metadata("gmm_resnext.onnx")                                     # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession("gmm_resnext.onnx")                        # doctest: +SKIP
    >>> def embed(path):                                                                  # doctest: +SKIP
    ...     frames = frames_from_audio(path, meta)[None]
    ...     return session.run(["normalized"], {"frames": frames})[0][0]
    >>> float(np.dot(embed("a.wav"), embed("b.wav")))                                     # doctest: +SKIP
    0.4123
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.nn as nn

from pipeline.dataset.features import inputs_from_samples
from pipeline.errors import PipelineError
from pipeline.features.mfcc import MfccOptions
from pipeline.models.gmm_layer import TrainableGMMLayer
from pipeline.utils.audio import read_audio_file
from pipeline.utils.set_names import FBANK_INPUT, MFCC_INPUT, lgp_gmm_names

FORMATS = ("onnx", "torchscript")


class ExportError(PipelineError):
    """A model that cannot be exported (the classical GMM-UBM, inputs of two kinds), or a bad output path."""


class FramesToEmbedding(nn.Module):
    """(batch, frames, dim) normalised front-end frames -> (embedding, normalized), each (batch, emb_dim)."""

    def __init__(self, network: nn.Module, gmm_layers: list[TrainableGMMLayer | None], train_mean: np.ndarray):
        super().__init__()
        self.network = network.eval()
        self.gmm_layers = nn.ModuleList([layer if layer is not None else nn.Identity() for layer in gmm_layers])
        self.register_buffer("train_mean", torch.as_tensor(train_mean, dtype=torch.float32))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = frames.transpose(1, 2)
        inputs = [layer(x) for layer in self.gmm_layers]
        embedding = self.network(inputs[0] if len(inputs) == 1 else inputs)
        centred = embedding - self.train_mean
        return embedding, centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)


def exportable(model: Any) -> tuple[FramesToEmbedding, str]:
    """The export wrapper of a loaded `SpeakerModel`, and the front-end input it reads (`mfcc` or `fbank`)."""
    from pipeline.embed import Embedder

    if not isinstance(model.embedder, Embedder):
        raise ExportError(f"{model.exp_dir}: the classical GMM-UBM is scored from statistics, not an embedding "
                          f"network; there is nothing to export")
    names = model.embedder.input_names
    kinds = {FBANK_INPUT if n == FBANK_INPUT else MFCC_INPUT for n in names}
    if len(kinds) > 1:
        raise ExportError(f"{model.exp_dir}: inputs {names} read two front ends; an exported model reads one")
    layers = []
    lgp = lgp_gmm_names(names)
    for name in names:
        if name in lgp:   # the GMM the model was trained on, as final.pt carries it
            gmm = model.gmms[lgp[name]]
            layers.append(TrainableGMMLayer.from_params(gmm.weights, gmm.means, gmm.variances, gmm.lgp_mean,
                                                        gmm.lgp_std, trainable=False))
        else:
            layers.append(None)
    network = model.embedder.model.to("cpu").float()
    # the centre of the model's scorer: the graph's `normalized` is that scorer's row 0, computed in the graph
    return FramesToEmbedding(network, layers, model.scorer.mean).eval(), kinds.pop()


def metadata(model: Any, input_kind: str) -> dict[str, str]:
    """What a deployment needs besides the graph: the front end and where the model came from."""
    return {"model_name": model.name, "input": input_kind, "emb_dim": str(model.embedder.emb_dim),
            "front_end": json.dumps(model.config.get("features") or {}, sort_keys=True),
            "voiced_only": json.dumps(model.embedder.voiced_only)}


def export_model(model: Any, out: str | os.PathLike, fmt: str = "onnx", *, example_frames: int = 300) -> Path:
    """Write `model` (a loaded `SpeakerModel`) as ONNX (opset 18, dynamic batch and frames) or TorchScript, with
    `metadata` in the file; the file appears complete or not at all. ExportError naming the directory when it
    cannot be written (read-only, not a directory, no permission, full)."""
    from pipeline.utils.atomic import atomic_file

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    wrapper, kind = exportable(model)
    meta = metadata(model, kind)
    dim = int(wrapper.gmm_layers[0].feat_dim) if isinstance(wrapper.gmm_layers[0], TrainableGMMLayer) else \
        _input_dim(model, kind)
    out = Path(out)
    try:
        # Through our own handle, opened before the export runs: a directory that cannot take the file fails
        # at once and as an OSError (torch.jit.save given a path reports it as a RuntimeError).
        with atomic_file(out, "wb") as handle:
            if fmt == "torchscript":
                with torch.no_grad():
                    traced = torch.jit.trace(wrapper, (torch.randn(1, example_frames, dim),), check_trace=False)
                torch.jit.save(traced, handle, _extra_files={"metadata.json": json.dumps(meta)})
            else:
                write_onnx(wrapper, dim, handle, meta, example_frames=example_frames)
    except OSError as err:
        why = "it is not a directory" if out.parent.exists() and not out.parent.is_dir() else err.strerror or err
        raise ExportError(f"cannot write {out} into {out.parent}: {why}; give an output path in a directory you "
                          f"can write") from err
    return out


def write_onnx(wrapper: nn.Module, dim: int, path: str | os.PathLike | IO[bytes], meta: dict[str, str], *,
               example_frames: int = 300) -> None:
    """`wrapper` ((batch, frames, dim) -> outputs) as ONNX, opset 18, batch and frames dynamic, `meta` as its
    metadata properties."""
    import onnx

    frames = torch.export.Dim("frames", min=2, max=1_000_000)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        program = torch.onnx.export(wrapper, (torch.randn(1, example_frames, dim),), dynamo=True,
                                    input_names=["frames"], output_names=["embedding", "normalized"],
                                    dynamic_shapes={"frames": {0: batch, 1: frames}}, opset_version=18,
                                    verbose=False)
    proto = program.model_proto
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, path)


def _input_dim(model: Any, kind: str) -> int:
    return int(model.options.nfilt if kind == FBANK_INPUT else model.options.numcep)


def read_onnx_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata `export_model` wrote into an ONNX file, `front_end` and `voiced_only` decoded."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    meta: dict[str, Any] = {p.key: p.value for p in proto.metadata_props}
    for key in ("front_end", "voiced_only"):
        meta[key] = json.loads(meta[key])
    return meta


def frames_from_audio(audio: str | os.PathLike, meta: dict[str, Any]) -> np.ndarray:
    """The exported model's input for one recording (any rate: resampled): MFCC or filterbank frames, voiced only,
    mean removed, float32 (frames x dim), with the front end stored in the file (`read_onnx_metadata`)."""
    options = MfccOptions.from_config({**meta["front_end"], "resample": True,
                                       "fbank": meta["input"] == FBANK_INPUT})
    samples, _ = read_audio_file(audio, options.sample_rate, resample=True)
    return inputs_from_samples(samples, options, [meta["input"]], {}, voiced_only=bool(meta["voiced_only"]),
                               name=str(audio))[0]
