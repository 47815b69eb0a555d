"""Stage 3: normalised LGP maps (frames x components) of a data dir under one GMM, as Kaldi ark/scp.

Writes `<lgp-dir>/lgp_<set>.<j>.{ark,scp}` and a data dir `<out-data-dir>` (bookkeeping copied from the
source set, `feats.scp` pointing at the LGP archives, `utt2num_frames` counting the voiced frames kept).
"""
from __future__ import annotations

import time
from pathlib import Path

import click
from tqdm import tqdm

from pipeline.features.gmm import DiagGMM
from pipeline.features.lgp import LGPExtractor
from pipeline.features.mfcc import normalize_frames
from pipeline.utils.archive import ArchiveWriter, load, merge_scps, read_scp
from pipeline.utils.config import fingerprint, load_config
from pipeline.utils.datadir import DataDir, DataDirError, copy_data_dir, write_table
from pipeline.utils.logging import get_logger
from pipeline.utils.parallel import run_jobs
from pipeline.utils.stage import file_digest, inputs_fingerprint, is_done, mark_done

BATCH_UTTS = 32  # utterances per GEMM: large enough for BLAS efficiency, small enough for memory


def lgp_job(job: int, feats: dict[str, str], vads: dict[str, str], gmm_npz: str, stem: str, voiced_only: bool,
            compress: bool, log_dir: str) -> None:
    """LGP archive of one job's utterances; skipped if already done for the same inputs and GMM."""
    key = fingerprint(sorted(feats.items()), file_digest(gmm_npz), voiced_only, compress)
    if is_done(log_dir, f"lgp.{job}", key, [stem + ".scp"]):
        return
    log = get_logger(f"make_lgp.{job}", Path(log_dir) / f"make_lgp.{job}.log")
    extractor = LGPExtractor(DiagGMM.load_npz(gmm_npz))
    utts = sorted(feats, key=str.encode)
    start, frames = time.time(), 0
    with ArchiveWriter(stem, compress=compress) as writer:
        for first in tqdm(range(0, len(utts), BATCH_UTTS), desc=f"lgp job {job}", unit="batch", leave=False,
                          position=job, mininterval=2):
            batch = utts[first:first + BATCH_UTTS]
            inputs = [normalize_frames(load(feats[u]), load(vads[u]), voiced_only=voiced_only) for u in batch]
            for utt, lgp in zip(batch, extractor.batch(inputs)):
                writer.write(utt, lgp)
                frames += len(lgp)
    log.info("job %d: %d utterances, %d frames in %.1f s", job, len(utts), frames, time.time() - start)
    mark_done(log_dir, f"lgp.{job}", key)


def make_lgp(data_dir: Path, gmm_dir: Path, lgp_dir: Path, out_dir: Path, log_dir: Path, *, nj: int,
             voiced_only: bool = True, compress: bool = False, cmd: str = "local") -> None:
    """Run stage 3 for one data dir and one GMM (skipped when the output is complete and current)."""
    log = get_logger("make_lgp", log_dir / "make_lgp.log")
    gmm_npz = gmm_dir / "gmm.npz"
    if not gmm_npz.is_file():
        raise FileNotFoundError(f"{gmm_npz} not found: run stage 2 (GMM) first")
    if not (data_dir / "feats.scp").is_file():
        raise DataDirError(f"{data_dir}/feats.scp missing: run stage 1 (MFCC) first")
    stage_key = inputs_fingerprint([voiced_only, compress], [data_dir / "feats.scp", data_dir / "utt2spk", gmm_npz])
    if is_done(out_dir, "lgp", stage_key, [out_dir / "feats.scp"]):
        log.info("%s: LGP features are complete and current, nothing to do", out_dir)
        return
    data = DataDir.load(data_dir)
    data.validate(data_dir, check_files=False)
    lgp_dir.mkdir(parents=True, exist_ok=True)
    parts = data.split(min(nj, len(data.spks)))
    jobs = [dict(job=j, feats=p.table("feats.scp"), vads=p.table("vad.scp"), gmm_npz=str(gmm_npz),
                 stem=str(lgp_dir.resolve() / f"lgp_{data_dir.name}.{j}"), voiced_only=voiced_only,
                 compress=compress, log_dir=str(log_dir)) for j, p in enumerate(parts, 1)]
    start = time.time()
    log.info("%s under %s: %d utterances in %d jobs", data_dir, gmm_dir, len(data.utts), len(jobs))
    run_jobs(lgp_job, jobs, nj=nj, cmd=cmd, name="make_lgp", log_dir=log_dir)
    copy_data_dir(data_dir, out_dir)
    merge_scps([j["stem"] + ".scp" for j in jobs], out_dir / "feats.scp")
    if voiced_only:
        vads = data.table("vad.scp")
        write_table(out_dir / "utt2num_frames", {u: int(load(vads[u]).sum()) for u in data.utts})
    else:
        write_table(out_dir / "utt2num_frames", data.table("utt2num_frames"))
    DataDir.load(out_dir).validate(out_dir, check_files=False)
    log.info("%s: %d utterances, %.1f s", out_dir, len(read_scp(out_dir / "feats.scp")), time.time() - start)
    mark_done(out_dir, "lgp", stage_key)


@click.command("make-lgp")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--nj", default=1, show_default=True)
@click.option("--cmd", default="local", show_default=True)
@click.option("--override", "-o", multiple=True)
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("gmm_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("lgp_dir", type=click.Path(file_okay=False))
@click.argument("out_data_dir", type=click.Path(file_okay=False))
def main(config_path: str, nj: int, cmd: str, override: tuple[str, ...], data_dir: str, gmm_dir: str,
         lgp_dir: str, out_data_dir: str) -> None:
    """LGP archives of DATA_DIR under the GMM in GMM_DIR, into LGP_DIR; data dir OUT_DATA_DIR."""
    cfg = load_config(config_path, override)
    lgp_cfg = cfg.get("lgp", {})
    out = Path(out_data_dir)
    make_lgp(Path(data_dir), Path(gmm_dir), Path(lgp_dir), out, Path(f"exp/make_lgp/{out.name}"), nj=nj,
             voiced_only=bool(cfg.get("gmm", {}).get("voiced_only", True)),
             compress=bool(lgp_cfg.get("compress", False)), cmd=cmd)
