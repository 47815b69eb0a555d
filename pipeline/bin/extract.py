"""Stage 5: speaker embeddings of a data dir with a trained model, as the authors score them.

    python -m pipeline extract --exp-dir exp/gmm_resnext --data-dir data/test --out-dir exp/gmm_resnext/embeddings/test

Reads only `exp/<model>/config.yaml` and `exp/<model>/models/final.pt`. For every utterance writes the embedding of
the full utterance to `xvector.{ark,scp}` (float32 vectors, as Kaldi and WeSpeaker write them) and the embeddings
of `extract.num_crops` evenly spaced `extract.crop_frames`-frame crops to `xvector_crops.{ark,scp}` (a
num_crops x 256 matrix per utterance); `--no-crops` skips the crops (a training set used only for the mean and the
AS-Norm cohort needs none). With `--nj N` each job writes `xvector.<j>.ark` and the scp files are merged.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from pipeline.dataset.crops import evenly_spaced_crops
from pipeline.dataset.features import FeatureSource, input_data_dir
from pipeline.models import TrainableGMMLayer, build_model
from pipeline.utils.archive import ArchiveError, ArchiveWriter, merge_scps
from pipeline.utils.checkpoint import CheckpointError, load_checkpoint
from pipeline.utils.config import ConfigError, load_config
from pipeline.utils.datadir import DataDir, DataDirError
from pipeline.utils.logging import get_logger
from pipeline.utils.parallel import run_jobs
from pipeline.utils.stage import file_digest, inputs_fingerprint, is_done, mark_done

# The authors score with 10 crops of 400 frames (4 s) besides the full utterance.
DEFAULT_EXTRACT: dict[str, Any] = {"crop_frames": 400, "num_crops": 10, "batch_size": 32}
MODEL_ENTRY_KEYS = ("inputs", "head")


def crops_stem(stem: str) -> str:
    """`.../xvector.3` -> `.../xvector_crops.3`: the crop archive beside each full-utterance archive."""
    path = Path(stem)
    return str(path.with_name(path.name.replace("xvector", "xvector_crops", 1)))


class Embedder:
    """A trained model in evaluation mode: one utterance's inputs -> (full-utterance vector, crop matrix).

    Inputs are what `FeatureSource.read` (or `inputs_from_mfcc`) returns: one frames x dim array per input name
    (`input_names`). Vectors are float32, `emb_dim` long; the crop matrix is num_crops x emb_dim.
    """

    def __init__(self, model: nn.Module, input_names: list[str], *, crop_frames: int, num_crops: int,
                 batch_size: int = 32, device: torch.device | str = "cpu", voiced_only: bool = True):
        if crop_frames < 1 or num_crops < 1:
            raise ValueError(f"extract.crop_frames ({crop_frames}) and extract.num_crops ({num_crops}) must be >= 1")
        self.model = model.to(device).eval()
        self.input_names = list(input_names)
        self.crop_frames = crop_frames
        self.num_crops = num_crops
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.voiced_only = voiced_only
        self.emb_dim = int(model.emb_dim)

    def _forward(self, inputs: list[np.ndarray]) -> np.ndarray:
        """Embeddings of a batch: each input is (B, frames, dim), all with the same frames."""
        tensors = [torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1))).to(self.device) for x in inputs]
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            out = self.model(tensors[0] if len(tensors) == 1 else tensors)
        return out.float().cpu().numpy()

    def embed_full(self, inputs: list[np.ndarray]) -> np.ndarray:
        """The embedding of the whole utterance (one forward: pooling needs no padding mask then)."""
        return self._forward([x[None] for x in inputs])[0]

    def embed_crops(self, utterances: list[list[np.ndarray]]) -> list[np.ndarray]:
        """Crop matrices of several utterances; all crops have one length, so they are batched across them."""
        crops = [[evenly_spaced_crops(x, self.crop_frames, self.num_crops) for x in inputs] for inputs in utterances]
        stacked = [np.concatenate([c[j] for c in crops]) for j in range(len(self.input_names))]
        rows = np.concatenate([self._forward([x[i:i + self.batch_size] for x in stacked])
                               for i in range(0, len(stacked[0]), self.batch_size)])
        return list(rows.reshape(len(utterances), self.num_crops, self.emb_dim))

    def __call__(self, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"model reads {self.input_names}, got {len(inputs)} input arrays")
        return self.embed_full(inputs), self.embed_crops([inputs])[0]


def _gmm_layer_from_state(state: dict[str, torch.Tensor], prefix: str) -> TrainableGMMLayer:
    """An empty GMM layer of the trained one's shape; its values come from the checkpoint, so extraction does not
    need the stage-2 `.npz` the layer was initialised from."""
    num_components, feat_dim = state[prefix + "log_inv_var"].shape
    return TrainableGMMLayer(num_components, feat_dim, trainable=False)


def build_trained_model(model_cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> nn.Module:
    net_cfg = {k: v for k, v in model_cfg.items() if k not in MODEL_ENTRY_KEYS}
    for key, prefix in (("gmm_layer", "gmm_layer."), ("male_gmm_layer", "paths.male.gmm_layer."),
                        ("female_gmm_layer", "paths.female.gmm_layer.")):
        if net_cfg.get(key):
            net_cfg[key] = _gmm_layer_from_state(state, prefix)
    model = build_model(net_cfg)
    model.load_state_dict(state)
    return model


def load_embedder(exp_dir: str | os.PathLike, device: torch.device | str | None = None) -> Embedder:
    """The final model of a trained experiment, ready to embed utterances (what stage 5 and `verify` use)."""
    exp_dir = Path(exp_dir)
    cfg = load_config(exp_dir / "config.yaml")
    checkpoint = load_checkpoint(exp_dir / "models" / "final.pt")
    if "model" not in cfg:
        raise ConfigError(f"{exp_dir}/config.yaml has no `model:` section: is it a config frozen by stage 4?")
    extract_cfg = {**DEFAULT_EXTRACT, **(cfg.get("extract") or {})}
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return Embedder(build_trained_model(cfg["model"], checkpoint["model"]), cfg["model"]["inputs"],
                    crop_frames=int(extract_cfg["crop_frames"]), num_crops=int(extract_cfg["num_crops"]),
                    batch_size=int(extract_cfg["batch_size"]), device=device,
                    voiced_only=bool((cfg.get("gmm") or {}).get("voiced_only", True)))


def extract_job(exp_dir: str, set_dir: str, utts: list[str], stem: str, threads: int, with_crops: bool = True) -> int:
    """Write `<stem>.ark/scp` (full utterances) and, `with_crops`, `<crops_stem(stem)>.ark/scp` for `utts`;
    return how many utterances."""
    torch.set_num_threads(threads)
    embedder = load_embedder(exp_dir)
    source = FeatureSource(set_dir, embedder.input_names, voiced_only=embedder.voiced_only)
    group = max(1, embedder.batch_size // embedder.num_crops)  # utterances whose crops fill a batch
    with contextlib.ExitStack() as stack:
        full_writer = stack.enter_context(ArchiveWriter(stem))
        crops_writer = stack.enter_context(ArchiveWriter(crops_stem(stem))) if with_crops else None
        for first in tqdm(range(0, len(utts), group), desc=f"embedding {Path(stem).name}", unit="batch",
                          leave=False, mininterval=2):
            batch = utts[first:first + group]
            inputs = [source.read(u) for u in batch]
            for utt, x in zip(batch, inputs):
                full_writer.write(utt, embedder.embed_full(x))
            if crops_writer is not None:
                for utt, crops in zip(batch, embedder.embed_crops(inputs)):
                    crops_writer.write(utt, crops)
    return len(utts)


def extract_embeddings(exp_dir: Path, set_dir: Path, out_dir: Path, *, nj: int = 1, cmd: str = "local",
                       with_crops: bool = True) -> None:
    """Stage 5 for one data dir; skipped when its embeddings are complete and made by the current model.

    Without crops only `xvector.scp` is written: enough for a training set that gives the mean and the cohort."""
    log = get_logger(f"extract[{out_dir.resolve()}]", out_dir / "log" / "extract.log")
    final = exp_dir / "models" / "final.pt"
    if not final.is_file():
        raise CheckpointError(f"{final} not found: train the model first (stage 4)")
    cfg = load_config(exp_dir / "config.yaml")
    names = cfg["model"]["inputs"]
    inputs = [input_data_dir(set_dir, n) / "feats.scp" for n in names] + [set_dir / "utt2spk"]
    key = inputs_fingerprint([cfg.get("extract"), file_digest(final), with_crops], inputs)
    outputs = [out_dir / "xvector.scp"] + ([out_dir / "xvector_crops.scp"] if with_crops else [])
    if is_done(out_dir, "extract", key, outputs):
        log.info("%s: embeddings are complete and current, nothing to do", out_dir)
        return
    source = FeatureSource(set_dir, names, voiced_only=bool((cfg.get("gmm") or {}).get("voiced_only", True)))
    data = DataDir.load(set_dir)
    have_features = set(source.utts)
    parts = [[u for u in part.utts if u in have_features] for part in data.split(min(nj, len(data.spks)))]
    parts = [p for p in parts if p]
    if not parts:
        raise DataDirError(f"{set_dir}: no utterance has features for inputs {names}")
    single = len(parts) == 1
    stems = [str(out_dir.resolve() / ("xvector" if single else f"xvector.{j}")) for j in range(1, len(parts) + 1)]
    threads = max(1, (os.cpu_count() or 1) // len(parts))
    start = time.time()
    log.info("%s: embedding %d utterances of %s with %s in %d jobs", out_dir, sum(map(len, parts)), set_dir,
             exp_dir, len(parts))
    jobs = [dict(exp_dir=str(exp_dir), set_dir=str(set_dir), utts=p, stem=s, threads=threads, with_crops=with_crops)
            for p, s in zip(parts, stems)]
    count = sum(run_jobs(extract_job, jobs, nj=nj, cmd=cmd))
    if not single:
        merge_scps([s + ".scp" for s in stems], out_dir / "xvector.scp")
        if with_crops:
            merge_scps([crops_stem(s) + ".scp" for s in stems], out_dir / "xvector_crops.scp")
    log.info("%s: %d embeddings in %.1f s", out_dir, count, time.time() - start)
    mark_done(out_dir, "extract", key)


@click.command("extract")
@click.option("--exp-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--data-dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="the set to embed (its MFCC dir; LGP inputs are read from <set>_lgp_<gmm>)")
@click.option("--out-dir", type=click.Path(file_okay=False), help="default: <exp-dir>/embeddings/<set>")
@click.option("--nj", default=1, show_default=True, help="parallel jobs (split per speaker)")
@click.option("--cmd", default="local", show_default=True, help="job engine (see README: Scaling out)")
@click.option("--crops/--no-crops", default=True, show_default=True,
              help="also embed evenly spaced crops (xvector_crops.scp); a cohort or mean set needs none")
def main(exp_dir: str, data_dir: str, out_dir: str | None, nj: int, cmd: str, crops: bool) -> None:
    """Embeddings of DATA_DIR's utterances (full and evenly spaced crops) with a trained model (stage 5)."""
    out = Path(out_dir) if out_dir else Path(exp_dir) / "embeddings" / Path(data_dir).name
    try:
        extract_embeddings(Path(exp_dir), Path(data_dir), out, nj=nj, cmd=cmd, with_crops=crops)
    except (CheckpointError, ConfigError, DataDirError, ArchiveError, ValueError) as err:
        raise click.ClickException(str(err)) from err
