"""Stage 5: speaker embeddings of a data dir with a trained model, as the authors score them.

For every usable utterance, the embedding of the full utterance goes to `xvector.{ark,scp}` (float32 vectors, as
Kaldi and WeSpeaker write them) and the embeddings of `extract.num_crops` evenly spaced `extract.crop_frames`-frame
crops to `xvector_crops.{ark,scp}` (a num_crops x dim matrix per utterance); without crops only the first (a
training set used for the mean and the AS-Norm cohort needs none). With `--nj N` each job writes
`xvector.<j>.ark` and the scp files are merged.

The key chains the output key of stage 4 (the model) and of the features the model reads for this set; given the
current config, the stage also refuses a model that was trained under another one.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.dataset.features import FeatureSource
from pipeline.experiment import input_keys, resolve_experiment, training_key
from pipeline.utils.archive import ArchiveWriter, merge_scps, referenced_archives
from pipeline.utils.config import fingerprint, load_config
from pipeline.utils.datadir import DataDir
from pipeline.utils.jobs import run_jobs
from pipeline.utils.log import get_logger
from pipeline.utils.stage import StageError, clear_done, is_done, mark_done, output_key, recorded_key

DONE_NAME = "extract"


def crops_stem(stem: str) -> str:
    """`.../xvector.3` -> `.../xvector_crops.3`: the crop archive beside each full-utterance archive."""
    path = Path(stem)
    return str(path.with_name(path.name.replace("xvector", "xvector_crops", 1)))


def extract_job(exp_dir: str, set_dir: str, utts: list[str], stem: str, threads: int, with_crops: bool = True) -> int:
    """Write `<stem>.ark/scp` (full utterances) and, `with_crops`, `<crops_stem(stem)>.ark/scp` for `utts`;
    return how many utterances."""
    import torch  # here, not at the top: deciding that the stage is done needs no torch

    from pipeline.embed import load_embedder

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


def check_trained_for(cfg: dict[str, Any], exp_dir: Path, frozen: dict[str, Any]) -> None:
    """StageError when the model in `exp_dir` was not trained with what `cfg` now says (config, data, features):
    its embeddings would report on another system than the config describes."""
    train_dir = Path(cfg["data"]["root"]) / cfg["data"]["train"]
    expected = training_key(resolve_experiment(cfg, frozen["model_name"], train_dir), train_dir)
    if recorded_key(exp_dir, "train") != expected:
        raise StageError(f"{exp_dir}/models/final.pt was trained under another config or other training data than "
                         f"the current config gives: run stage 4 (training) for {frozen['model_name']}")


def extract_embeddings(exp_dir: Path, set_dir: Path, out_dir: Path, *, nj: int = 1, cmd: str = "local",
                       with_crops: bool = True, cfg: dict[str, Any] | None = None) -> None:
    """Stage 5 for one data dir; nothing is done when its embeddings are complete and current. With `cfg` (the
    recipe's config), a model trained under another config is refused."""
    log = get_logger(f"extract[{out_dir.resolve()}]", out_dir / "log" / "extract.log")
    train_key = output_key(exp_dir, "train")  # the model is complete, and config.yaml is the one written with it
    frozen = load_config(exp_dir / "config.yaml")
    if cfg is not None:
        check_trained_for(cfg, exp_dir, frozen)
    key = fingerprint(frozen["extract"], with_crops, train_key, input_keys(frozen["model"], set_dir))
    if is_done(out_dir, DONE_NAME, key):
        log.info("%s: embeddings are complete and current, nothing to do", out_dir)
        return
    clear_done(out_dir, DONE_NAME)
    if not with_crops:  # crops of an earlier run must not be scored with these vectors
        (out_dir / "xvector_crops.scp").unlink(missing_ok=True)
    names = frozen["model"]["inputs"]
    have_features = set(FeatureSource(set_dir, names).utts)
    data = DataDir.load(set_dir)
    parts = [[u for u in part.utts if u in have_features] for part in data.split(min(nj, len(data.spks)))]
    parts = [p for p in parts if p]
    if not parts:
        raise StageError(f"{set_dir}: no utterance has features for inputs {names}")
    single = len(parts) == 1
    stems = [str(out_dir.resolve() / ("xvector" if single else f"xvector.{j}")) for j in range(1, len(parts) + 1)]
    threads = max(1, (os.cpu_count() or 1) // len(parts))
    start = time.time()
    log.info("%s: embedding %d utterances of %s with %s in %d jobs", out_dir, sum(map(len, parts)), set_dir,
             exp_dir, len(parts))
    jobs = [dict(exp_dir=str(exp_dir), set_dir=str(set_dir), utts=p, stem=s, threads=threads, with_crops=with_crops)
            for p, s in zip(parts, stems)]
    count = sum(run_jobs(extract_job, jobs, nj=nj, cmd=cmd))
    scps = [out_dir / "xvector.scp"] + ([out_dir / "xvector_crops.scp"] if with_crops else [])
    if not single:
        merge_scps([s + ".scp" for s in stems], scps[0])
        if with_crops:
            merge_scps([crops_stem(s) + ".scp" for s in stems], scps[1])
    log.info("%s: %d embeddings in %.1f s", out_dir, count, time.time() - start)
    mark_done(out_dir, DONE_NAME, key, scps + [ark for scp in scps for ark in referenced_archives(scp)])
