"""Stage 5: speaker embeddings of a data dir with a trained model, as the authors score them.

For every usable utterance, the embedding of the full utterance goes to `xvector.{ark,scp}` (float32 vectors, as
Kaldi and WeSpeaker write them) and the embeddings of `extract.num_crops` evenly spaced `extract.crop_frames`-frame
crops to `xvector_crops.{ark,scp}` (a num_crops x dim matrix per utterance); without crops only the first (a
training set used for the mean and the AS-Norm cohort needs none). The classical GMM-UBM writes its enrolment and
test vectors instead, `ubm_enroll.{ark,scp}` and `ubm_test.{ark,scp}`. With `--nj N` each job writes
`<name>.<j>.ark` and the scp files are merged.

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

from pipeline.dataset.features import FeatureSource, input_data_dir
from pipeline.embedding_files import write_mean_embedding
from pipeline.experiment import current_training, input_keys, model_checksum
from pipeline.recipe_layout import MODEL_CHECKSUM_FILE
from pipeline.stages.make_lgp import lgp_gmm
from pipeline.utils.archive import ArchiveWriter, merge_scps, referenced_archives
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.config import fingerprint, load_config
from pipeline.systems import ALL_ARCHIVES, EMBEDDING_ARCHIVE, system_of
from pipeline.utils.datadir import DataDir
from pipeline.utils.jobs import run_jobs
from pipeline.utils.log import get_logger
from pipeline.utils.paths import recipe_path
from pipeline.utils.set_names import lgp_gmm_names
from pipeline.utils.stage import StageError, clear_done, is_done, mark_done, output_key, recorded_key

DONE_NAME = "extract"
OUTPUT_VERSION = 2   # 2: mean.vec beside the embeddings


def extract_job(exp_dir: str, set_dir: str, utts: list[str], stems: list[str], threads: int) -> int:
    """Write the archives `<stem>.ark/scp` of `utts`, one stem per name of the system's `archive_names`; return how many
    utterances."""
    from pipeline.embed import load_embedder  # here, not at the top: deciding that the stage is done needs no torch

    embedder = load_embedder(exp_dir, threads=threads)
    source = FeatureSource(set_dir, embedder.input_names, voiced_only=embedder.voiced_only)
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(ArchiveWriter(stem)) for stem in stems]
        for first in tqdm(range(0, len(utts), embedder.group), desc=f"embedding {Path(stems[0]).name}",
                          unit="batch", leave=False, mininterval=2):
            batch = utts[first:first + embedder.group]
            for utt, vectors in zip(batch, embedder.embed_all([source.read(u) for u in batch], len(writers))):
                for writer, vector in zip(writers, vectors):
                    writer.write(utt, vector)
    return len(utts)


def check_trained_for(cfg: dict[str, Any], exp_dir: Path, frozen: dict[str, Any]) -> None:
    """StageError when the model in `exp_dir` was not trained with what `cfg` now says (config, data, features):
    its embeddings would report on another system than the config describes."""
    if recorded_key(exp_dir, "train") != current_training(cfg, frozen["model_name"], exp_dir)[1]:
        raise StageError(f"{exp_dir}/models/final.pt was trained under another config or other training data than "
                         f"the current config gives: run stage 4 (training) for {frozen['model_name']}")


def check_lgp_gmms(frozen: dict[str, Any], set_dir: Path) -> None:
    """StageError when an LGP input of `set_dir` was computed under another GMM than the one the model was trained
    on (a GMM refitted since, or another config's `gmm.root`): its embeddings would be of other features."""
    for name, gmm in lgp_gmm_names(frozen["model"]["inputs"]).items():
        made_under, directory = lgp_gmm(input_data_dir(set_dir, name))
        if made_under != frozen.get("lgp_gmms", {}).get(gmm):   # a model frozen before GMMs were recorded: refused
            raise StageError(f"{input_data_dir(set_dir, name)} holds LGP maps under the GMM in {directory}, not under "
                             f"the GMM {gmm!r} that {frozen['model_name']} was trained on: rerun stage 3 (LGP) for "
                             f"{set_dir.name} with the model's GMM, or stage 4 (training) with the new one")


def extract_embeddings(exp_dir: Path, set_dir: Path, out_dir: Path, *, nj: int = 1, cmd: str = "local",
                       with_crops: bool = True, cfg: dict[str, Any] | None = None) -> None:
    """Stage 5 for one data dir; nothing is done when its embeddings are complete and current. With `cfg` (the
    recipe's config), a model trained under another config is refused."""
    log = get_logger(f"extract[{out_dir.resolve()}]", out_dir / "log" / "extract.log")
    train_key = output_key(exp_dir, "train")  # the model is complete, and config.yaml is the one written with it
    frozen = load_config(exp_dir / "config.yaml")
    if cfg is not None:
        check_trained_for(cfg, exp_dir, frozen)
    check_lgp_gmms(frozen, set_dir)
    key = fingerprint(frozen["extract"], with_crops, train_key, input_keys(frozen, set_dir), OUTPUT_VERSION)
    if is_done(out_dir, DONE_NAME, key):
        log.info("%s: embeddings are complete and current, nothing to do", out_dir)
        return
    clear_done(out_dir, DONE_NAME)
    archives = system_of(frozen["model"]).archive_names(with_crops)
    for stale in ALL_ARCHIVES - set(archives):  # never scored with these vectors
        (out_dir / f"{stale}.scp").unlink(missing_ok=True)
    names = frozen["model"]["inputs"]
    have_features = set(FeatureSource(set_dir, names).utts)
    data = DataDir.load(set_dir)
    parts = [[u for u in part.utts if u in have_features] for part in data.split(min(nj, len(data.spks)))]
    parts = [p for p in parts if p]
    if not parts:
        raise StageError(f"{set_dir}: no utterance has features for inputs {names}")
    single = len(parts) == 1
    stems = [[recipe_path(out_dir / (name if single else f"{name}.{j}")) for name in archives]
             for j in range(1, len(parts) + 1)]
    threads = max(1, (os.cpu_count() or 1) // len(parts))
    start = time.time()
    log.info("%s: %s of %d utterances of %s with %s in %d jobs", out_dir, ", ".join(archives),
             sum(map(len, parts)), set_dir, exp_dir, len(parts))
    jobs = [dict(exp_dir=str(exp_dir), set_dir=str(set_dir), utts=p, stems=s, threads=threads)
            for p, s in zip(parts, stems)]
    count = sum(run_jobs(extract_job, jobs, nj=nj, cmd=cmd))
    scps = [out_dir / f"{name}.scp" for name in archives]
    if not single:
        for k, scp in enumerate(scps):
            merge_scps([job_stems[k] + ".scp" for job_stems in stems], scp)
    write_text_atomic(out_dir / MODEL_CHECKSUM_FILE, model_checksum(exp_dir) + "\n")
    made = scps + [out_dir / MODEL_CHECKSUM_FILE]
    if EMBEDDING_ARCHIVE in archives:
        made.append(write_mean_embedding(out_dir))
    log.info("%s: %d utterances in %.1f s", out_dir, count, time.time() - start)
    mark_done(out_dir, DONE_NAME, key, made + [ark for scp in scps for ark in referenced_archives(scp)])
