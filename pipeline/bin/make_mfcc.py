"""Stage 1: MFCC + energy VAD of a data dir, in `--nj` jobs, as Kaldi ark/scp.

Writes `<mfcc-dir>/raw_mfcc_<set>.<j>.{ark,scp}` and `vad_<set>.<j>.{ark,scp}`, then `feats.scp`, `vad.scp`
and `utt2num_frames` in the data dir. Unusable audio is reported by utterance and file, and left out of the
data dir (as `fix_data_dir.sh` would), with a count at the end.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import click
from tqdm import tqdm

from pipeline.features.mfcc import FeatureError, MfccOptions, mfcc_and_vad
from pipeline.utils.archive import ArchiveWriter, load, merge_scps, read_scp
from pipeline.utils.audio import AudioError, read_audio
from pipeline.utils.config import fingerprint, load_config
from pipeline.utils.datadir import DataDir, read_table, write_table
from pipeline.utils.logging import get_logger
from pipeline.utils.parallel import run_jobs
from pipeline.utils.stage import inputs_fingerprint, is_done, mark_done


def mfcc_job(job: int, wavs: dict[str, str], opts: MfccOptions, feats_stem: str, vad_stem: str,
             log_dir: str) -> dict[str, str]:
    """Compute one job's archives; return {utt: reason} for the utterances left out. Skips if already done."""
    log_dir_path = Path(log_dir)
    key = fingerprint(asdict(opts), sorted(wavs.items()))
    bad_file = log_dir_path / f"bad_utts.{job}"
    if is_done(log_dir_path, f"mfcc.{job}", key, [feats_stem + ".scp", vad_stem + ".scp", bad_file]):
        return _read_bad(bad_file)
    log = get_logger(f"make_mfcc.{job}", log_dir_path / f"make_mfcc.{job}.log")
    bad: dict[str, str] = {}
    start, seconds = time.time(), 0.0
    with ArchiveWriter(feats_stem, compress=opts.compress) as feats_ark, ArchiveWriter(vad_stem) as vad_ark:
        for utt in tqdm(sorted(wavs, key=str.encode), desc=f"mfcc job {job}", unit="utt", leave=False,
                        position=job, mininterval=2):
            try:
                samples, _ = read_audio(wavs[utt], opts.sample_rate, resample=opts.resample)
                feats, vad = mfcc_and_vad(samples, opts)
            except (AudioError, FeatureError) as err:
                bad[utt] = f"{wavs[utt]}: {err}"
                log.warning("leaving out %s (%s)", utt, bad[utt])
                continue
            seconds += samples.size / opts.sample_rate
            feats_ark.write(utt, feats)
            vad_ark.write(utt, vad)
    elapsed = time.time() - start
    log.info("job %d: %d utterances, %d left out, %.1f s of audio in %.1f s (%.0fx real time)",
             job, len(wavs) - len(bad), len(bad), seconds, elapsed, seconds / max(elapsed, 1e-9))
    write_table(bad_file, bad)
    mark_done(log_dir_path, f"mfcc.{job}", key)
    return bad


def _read_bad(path: Path) -> dict[str, str]:
    return read_table(path, check_sorted=False) if path.stat().st_size else {}


def make_mfcc(data_dir: Path, mfcc_dir: Path, log_dir: Path, opts: MfccOptions, nj: int, cmd: str = "local") -> None:
    """Run stage 1 on one data dir (skipped when its features are complete and current)."""
    log = get_logger("make_mfcc", log_dir / "make_mfcc.log")
    data = DataDir.load(data_dir)
    stage_key = inputs_fingerprint(asdict(opts), [data_dir / "wav.scp"])
    outputs = [data_dir / n for n in ("feats.scp", "vad.scp", "utt2num_frames")]
    if is_done(data_dir, "mfcc", stage_key, outputs):
        log.info("%s: features are complete and current, nothing to do", data_dir)
        return
    data.validate(data_dir)
    name = data_dir.name
    mfcc_dir.mkdir(parents=True, exist_ok=True)
    parts = data.split(min(nj, len(data.spks)))
    jobs = [dict(job=j, wavs=part.table("wav.scp"), opts=opts, log_dir=str(log_dir),
                 feats_stem=str(mfcc_dir.resolve() / f"raw_mfcc_{name}.{j}"),
                 vad_stem=str(mfcc_dir.resolve() / f"vad_{name}.{j}")) for j, part in enumerate(parts, 1)]
    start = time.time()
    log.info("%s: %d utterances in %d jobs (log: %s)", data_dir, len(data.utts), len(jobs), log_dir)
    bad: dict[str, str] = {}
    for result in run_jobs(mfcc_job, jobs, nj=nj, cmd=cmd, name="make_mfcc", log_dir=log_dir):
        bad.update(result)
    merge_scps([j["feats_stem"] + ".scp" for j in jobs], data_dir / "feats.scp")
    merge_scps([j["vad_stem"] + ".scp" for j in jobs], data_dir / "vad.scp")
    frames = {utt: int(v) for utt, v in _num_frames(data_dir / "vad.scp").items()}
    if bad:
        for utt, reason in sorted(bad.items()):
            log.warning("left out %s: %s", utt, reason)
        data = data.subset(set(data.utts) - set(bad))
    data.utt_tables["feats.scp"] = read_scp(data_dir / "feats.scp")
    data.utt_tables["vad.scp"] = read_scp(data_dir / "vad.scp")
    data.utt_tables["utt2num_frames"] = {u: str(n) for u, n in frames.items()}
    data.save(data_dir)
    data.validate(data_dir)
    summary = data.summary()
    log.info("%s: %d utterances with features (%d left out as unusable), %d frames, %.1f s",
             data_dir, summary["utterances"], len(bad), summary["frames"], time.time() - start)
    mark_done(data_dir, "mfcc", inputs_fingerprint(asdict(opts), [data_dir / "wav.scp"]))


def _num_frames(vad_scp: Path) -> dict[str, int]:
    return {utt: int(load(spec).shape[0]) for utt, spec in read_scp(vad_scp).items()}


@click.command("make-mfcc")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--nj", default=1, show_default=True, help="parallel jobs (split per speaker)")
@click.option("--cmd", default="local", show_default=True, help="job engine (see README: Scaling out)")
@click.option("--log-dir", type=click.Path(file_okay=False), help="default: exp/make_mfcc/<set>")
@click.option("--override", "-o", multiple=True, help="config override, e.g. features.compress=true")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("mfcc_dir", type=click.Path(file_okay=False))
def main(config_path: str, nj: int, cmd: str, log_dir: str | None, override: tuple[str, ...], data_dir: str,
         mfcc_dir: str) -> None:
    """Compute MFCC + VAD archives for DATA_DIR into MFCC_DIR."""
    cfg = load_config(config_path, override)
    data_path = Path(data_dir)
    make_mfcc(data_path, Path(mfcc_dir), Path(log_dir or f"exp/make_mfcc/{data_path.name}"),
              MfccOptions.from_config(cfg.get("features")), nj, cmd)
