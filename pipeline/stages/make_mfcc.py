"""Stage 1: MFCC + energy VAD of a data dir, in `--nj` jobs, as Kaldi ark/scp.

Writes `<mfcc-dir>/raw_mfcc_<set>.<j>.{ark,scp}`, `vad_<set>.<j>` and `cmvn_<set>.<j>` (per-utterance statistics of
the voiced frames, Kaldi's format), then `feats.scp`, `vad.scp`, `utt_cmvn.scp` (keyed by utterance, unlike Kaldi's
speaker-keyed `cmvn.scp`), `utt2num_frames` and `unusable_utts` in the data dir. With `features.fbank`, also the
log mel filterbank on the same frames, `raw_fbank_<set>.<j>` and `cmvn_fbank_<set>.<j>`, and the data dir
`<set>_fbank` that `input: fbank` models read (its `vad.scp` is the set's). The data dir's own tables (wav.scp,
utt2spk, trials) are never rewritten: an utterance whose audio cannot be used (unreadable, silent, too short, not
finite) is listed in `unusable_utts` with the reason, counted, and left out of the feature tables only, so that
trials naming it are counted by stage 6 and a fixed file is picked up by the next run.

The stage's key is its `features:` options, the content of wav.scp and the size and modification time of every audio
file it names; a job's key is the same for the job's utterances only, so a changed file redoes its job alone.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from pipeline.features.mfcc import FeatureError, MfccOptions, cmvn_stats, features_and_vad
from pipeline.utils.archive import ArchiveWriter, load, merge_scps, read_scp, referenced_archives
from pipeline.utils.audio import AudioError, audio_file_facts, files_key, read_wav_scp_entry
from pipeline.utils.config import fingerprint
from pipeline.utils.datadir import UNUSABLE_TABLE, DataDir, copy_data_dir, read_table, write_table
from pipeline.utils.jobs import run_jobs
from pipeline.utils.log import get_logger
from pipeline.utils.paths import recipe_path
from pipeline.utils.set_names import FBANK_INPUT, derived_data_dir
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done

DONE_NAME = "mfcc"
# The bookkeeping a feature data dir shares with its set.
COPIED_TABLES = ("utt2spk", "spk2utt", "spk2gender", "utt2dur", "wav.scp", "utt2lang")


# Bumped when stage 1 starts writing something new, so that outputs of an older version are redone.
OUTPUT_VERSION = 2   # 2: per-utterance CMN statistics (utt_cmvn.scp)


def job_stems(mfcc_dir: Path, name: str, job: int, fbank: bool) -> dict[str, str]:
    """The archive stems of one job: MFCC, VAD, CMN statistics of the MFCC and, with `fbank`, the filterbank and
    its statistics."""
    stems = {"feats": f"raw_mfcc_{name}.{job}", "vad": f"vad_{name}.{job}", "cmvn": f"cmvn_{name}.{job}"}
    if fbank:
        stems.update(fbank=f"raw_fbank_{name}.{job}", fbank_cmvn=f"cmvn_fbank_{name}.{job}")
    return {kind: recipe_path(mfcc_dir / stem) for kind, stem in stems.items()}


def mfcc_job(job: int, wavs: dict[str, str], facts: dict[str, list[tuple[str, int, int]]], opts: MfccOptions,
             stems: dict[str, str], log_dir: str) -> dict[str, str]:
    """Compute one job's archives; return {utt: reason} for the utterances left out. Skipped when done and current
    (`facts`: the stage's `audio_file_facts` of the job's utterances)."""
    log_dir_path = Path(log_dir)
    name = f"mfcc.{job}"
    key = fingerprint(asdict(opts), OUTPUT_VERSION, sorted(wavs.items()), files_key(facts))
    bad_file = log_dir_path / f"bad_utts.{job}"
    if is_done(log_dir_path, name, key):
        return _read_bad(bad_file)
    clear_done(log_dir_path, name)
    log = get_logger(f"make_mfcc.{job}", log_dir_path / f"make_mfcc.{job}.log")
    bad: dict[str, str] = {}
    start, seconds = time.time(), 0.0
    with contextlib.ExitStack() as stack:
        # features as the config says; the VAD (0/1) and the statistics (float64) exactly
        arks = {kind: stack.enter_context(ArchiveWriter(stem, compress=opts.compress and kind in ("feats", "fbank"),
                                                        double=kind.endswith("cmvn")))
                for kind, stem in stems.items()}
        for utt in tqdm(sorted(wavs, key=str.encode), desc=f"mfcc job {job}", unit="utt", leave=False,
                        position=job, mininterval=2):
            try:
                samples, _ = read_wav_scp_entry(wavs[utt], opts.sample_rate, resample=opts.resample)
                feats, vad, fbank = features_and_vad(samples, opts)
            except (AudioError, FeatureError) as err:
                bad[utt] = f"{wavs[utt]}: {err}"
                log.warning("leaving out %s (%s)", utt, bad[utt])
                continue
            seconds += samples.size / opts.sample_rate
            arks["feats"].write(utt, feats)
            arks["vad"].write(utt, vad)
            arks["cmvn"].write(utt, cmvn_stats(feats, vad))
            if fbank is not None:
                arks["fbank"].write(utt, fbank)
                arks["fbank_cmvn"].write(utt, cmvn_stats(fbank, vad))
    elapsed = time.time() - start
    log.info("job %d: %d utterances, %d left out, %.1f s of audio in %.1f s (%.0fx real time)",
             job, len(wavs) - len(bad), len(bad), seconds, elapsed, seconds / max(elapsed, 1e-9))
    write_table(bad_file, bad)
    mark_done(log_dir_path, name, key, [stem + ext for stem in stems.values() for ext in (".ark", ".scp")]
              + [bad_file])
    return bad


def _read_bad(path: Path) -> dict[str, str]:
    return read_table(path, check_sorted=False) if path.stat().st_size else {}


def stage_key(data_dir: Path, opts: MfccOptions, facts: dict[str, list[tuple[str, int, int]]] | None = None) -> str:
    """Stage 1's key of a data dir; `facts`: its `audio_file_facts`, when the caller has them already."""
    if facts is None:
        facts = audio_file_facts(read_table(data_dir / "wav.scp", check_sorted=False))
    return fingerprint(asdict(opts), OUTPUT_VERSION, file_digest(data_dir / "wav.scp"), files_key(facts))


def make_mfcc(data_dir: Path, mfcc_dir: Path, log_dir: Path, opts: MfccOptions, nj: int, cmd: str = "local") -> None:
    """Run stage 1 on one data dir (nothing is done when its features are complete and current)."""
    log = get_logger("make_mfcc", log_dir / "make_mfcc.log")
    data = DataDir.load(data_dir)
    data.validate(data_dir)
    facts = audio_file_facts(data.table("wav.scp"))
    key = stage_key(data_dir, opts, facts)
    if is_done(data_dir, DONE_NAME, key):
        log.info("%s: features are complete and current, nothing to do", data_dir)
        return
    clear_done(data_dir, DONE_NAME)
    name = data_dir.name
    mfcc_dir.mkdir(parents=True, exist_ok=True)
    parts = data.split(min(nj, len(data.spks)))
    jobs = [dict(job=j, wavs=part.table("wav.scp"), facts={u: facts[u] for u in part.utts}, opts=opts,
                 log_dir=str(log_dir),
                 stems=job_stems(mfcc_dir, name, j, opts.fbank)) for j, part in enumerate(parts, 1)]
    start = time.time()
    log.info("%s: %d utterances in %d jobs (log: %s)", data_dir, len(data.utts), len(jobs), log_dir)
    bad: dict[str, str] = {}
    for result in run_jobs(mfcc_job, jobs, nj=nj, cmd=cmd, name="make_mfcc", log_dir=log_dir):
        bad.update(result)
    tables = {"feats": data_dir / "feats.scp", "vad": data_dir / "vad.scp", "cmvn": data_dir / "utt_cmvn.scp"}
    fbank_dir = derived_data_dir(data_dir, FBANK_INPUT)
    if opts.fbank:  # a data dir of its own, as Kaldi's make_fbank.sh would make, with the set's VAD
        copy_data_dir(data_dir, fbank_dir, tables=COPIED_TABLES)
        tables.update(fbank=fbank_dir / "feats.scp", fbank_cmvn=fbank_dir / "utt_cmvn.scp")
    for kind, table in tables.items():
        merge_scps([j["stems"][kind] + ".scp" for j in jobs], table)
    write_table(data_dir / "utt2num_frames",
                {utt: int(load(spec).shape[0]) for utt, spec in read_scp(tables["vad"]).items()})
    if not opts.fbank and fbank_dir.exists():  # filterbanks of an earlier config must not be read as current
        shutil.rmtree(fbank_dir)
    unusable = data_dir / UNUSABLE_TABLE
    if bad:
        write_table(unusable, bad)
        for utt, reason in sorted(bad.items()):
            log.warning("unusable: %s: %s", utt, reason)
    else:
        unusable.unlink(missing_ok=True)
    data = DataDir.load(data_dir)
    data.validate(data_dir)
    summary = data.summary()
    log.info("%s: %d of %d utterances with features%s, %d frames, %.1f s", data_dir, len(data.usable_utts),
             summary["utterances"], f" ({len(bad)} unusable, listed in {unusable})" if bad else "", summary["frames"],
             time.time() - start)
    if opts.fbank:
        for table in ("vad.scp", "utt2num_frames", UNUSABLE_TABLE):
            if (data_dir / table).is_file():
                shutil.copyfile(data_dir / table, fbank_dir / table)
            else:
                (fbank_dir / table).unlink(missing_ok=True)
        DataDir.load(fbank_dir).validate(fbank_dir)
    outputs = [*tables.values(), data_dir / "utt2num_frames", *([unusable] if bad else []),
               *(archive for scp in tables.values() for archive in referenced_archives(scp))]
    mark_done(data_dir, DONE_NAME, key, outputs, made_under=opts.made_under())

