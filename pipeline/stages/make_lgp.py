"""Stage 3: normalised LGP maps (frames x components) of a data dir under one GMM, as Kaldi ark/scp.

Writes `<lgp-dir>/lgp_<set>.<j>.{ark,scp}` and a data dir `<out-data-dir>` (bookkeeping copied from the source set,
`feats.scp` pointing at the LGP archives, `utt2num_frames` counting the frames kept, and `gmm_key`, the parameter
fingerprint and directory of the GMM the maps were computed under, which stage 5 checks against the model's GMM).
Its key chains the output keys of stage 1 (the MFCC archives it reads) and of stage 2 (the GMM), so new features or
a new GMM redo it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.features.gmm import DiagGMM
from pipeline.features.lgp import LGPExtractor
from pipeline.dataset.features import FeatureSource
from pipeline.features.mfcc import features_made_under
from pipeline.utils.archive import ArchiveWriter, load, merge_scps, read_scp, referenced_archives
from pipeline.utils.config import fingerprint
from pipeline.utils.datadir import DataDir, copy_data_dir, write_table
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.jobs import run_jobs
from pipeline.utils.log import get_logger
from pipeline.utils.paths import recipe_path
from pipeline.utils.set_names import MFCC_INPUT
from pipeline.utils.stage import StageError, clear_done, is_done, mark_done, output_key

BATCH_UTTS = 32  # utterances per GEMM: large enough for BLAS efficiency, small enough for memory
DONE_NAME = "lgp"
GMM_KEY_FILE = "gmm_key"
OUTPUT_VERSION = 3   # 2: gmm_key beside feats.scp; 3: it holds the GMM's parameter fingerprint


def lgp_job(job: int, set_dir: str, feats: dict[str, str], gmm_npz: str, stem: str, voiced_only: bool,
            compress: bool, log_dir: str, key: str) -> None:
    """LGP archive of the utterances `feats` names, read from `set_dir` as every model input is; nothing is done
    when it is complete for the same inputs."""
    name = f"lgp.{job}"
    key = fingerprint(key, sorted(feats.items()))
    if is_done(log_dir, name, key):
        return
    clear_done(log_dir, name)
    log = get_logger(f"make_lgp.{job}", Path(log_dir) / f"make_lgp.{job}.log")
    extractor = LGPExtractor(DiagGMM.load_npz(gmm_npz))
    source = FeatureSource(set_dir, [MFCC_INPUT], voiced_only=voiced_only)
    utts = sorted(feats, key=str.encode)
    start, frames = time.time(), 0
    with ArchiveWriter(stem, compress=compress) as writer:
        for first in tqdm(range(0, len(utts), BATCH_UTTS), desc=f"lgp job {job}", unit="batch", leave=False,
                          position=job, mininterval=2):
            batch = utts[first:first + BATCH_UTTS]
            inputs = [source.read(u)[0] for u in batch]
            for utt, lgp in zip(batch, extractor.batch(inputs)):
                writer.write(utt, lgp)
                frames += len(lgp)
    log.info("job %d: %d utterances, %d frames in %.1f s", job, len(utts), frames, time.time() - start)
    mark_done(log_dir, name, key, [stem + ".ark", stem + ".scp"])


def make_lgp(data_dir: Path, gmm_dir: Path, lgp_dir: Path, out_dir: Path, log_dir: Path, *, nj: int,
             voiced_only: bool = True, compress: bool = False, cmd: str = "local",
             features: dict[str, Any] | None = None) -> None:
    """Run stage 3 for one data dir and one GMM (nothing is done when the output is complete and current).
    `features`: the config's section, which stage 1's MFCC must have been computed under (unchecked if None)."""
    log = get_logger("make_lgp", log_dir / "make_lgp.log")
    gmm_npz = gmm_dir / "gmm.npz"
    gmm_key = output_key(gmm_dir, "gmm")
    key = fingerprint(voiced_only, compress, output_key(data_dir, "mfcc", features_made_under(features)), gmm_key,
                      OUTPUT_VERSION)
    if is_done(out_dir, DONE_NAME, key):
        log.info("%s: LGP features are complete and current, nothing to do", out_dir)
        return
    clear_done(out_dir, DONE_NAME)
    data = DataDir.load(data_dir)
    data.validate(data_dir, check_files=False)
    lgp_dir.mkdir(parents=True, exist_ok=True)
    parts = data.split(min(nj, len(data.spks)))
    jobs = [dict(job=j, set_dir=recipe_path(data_dir), feats=p.table("feats.scp"), gmm_npz=str(gmm_npz),
                 stem=recipe_path(lgp_dir / f"lgp_{data_dir.name}.{j}"), voiced_only=voiced_only,
                 compress=compress, log_dir=str(log_dir), key=key) for j, p in enumerate(parts, 1)]
    jobs = [j for j in jobs if j["feats"]]  # a split of unusable utterances only has nothing to compute
    start = time.time()
    log.info("%s under %s: %d utterances in %d jobs", data_dir, gmm_dir, len(data.usable_utts), len(jobs))
    run_jobs(lgp_job, jobs, nj=nj, cmd=cmd, name="make_lgp", log_dir=log_dir)
    copy_data_dir(data_dir, out_dir)
    merge_scps([j["stem"] + ".scp" for j in jobs], out_dir / "feats.scp")
    if voiced_only:
        vads = data.table("vad.scp")
        write_table(out_dir / "utt2num_frames", {u: int(load(vads[u]).sum()) for u in data.usable_utts})
    else:
        write_table(out_dir / "utt2num_frames", data.table("utt2num_frames"))
    DataDir.load(out_dir).validate(out_dir, check_files=False)
    write_text_atomic(out_dir / GMM_KEY_FILE, f"{DiagGMM.load_npz(gmm_npz).fingerprint()} {recipe_path(gmm_dir)}\n")
    log.info("%s: %d utterances, %.1f s", out_dir, len(read_scp(out_dir / "feats.scp")), time.time() - start)
    mark_done(out_dir, DONE_NAME, key, [out_dir / "feats.scp", out_dir / "utt2num_frames", out_dir / GMM_KEY_FILE,
                                        *referenced_archives(out_dir / "feats.scp")])


def lgp_gmm(lgp_data_dir: Path) -> tuple[str, str]:
    """(parameter fingerprint, directory) of the GMM stage 3 computed the maps of `lgp_data_dir` under."""
    path = lgp_data_dir / GMM_KEY_FILE
    if not path.is_file():
        raise StageError(f"{path} not found: rerun stage 3 (LGP) for {lgp_data_dir.name}")
    key, directory = path.read_text().strip().split(" ", 1)
    return key, directory
