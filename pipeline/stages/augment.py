"""Stage 0 (optional): an augmented copy of a training data dir, and the clean + augmented union, as Kaldi's
egs/voxceleb/v2 makes `data/train_aug` and `data/train_combined`.

Each source utterance gets `augment.copies` copies (default 1), each of one type drawn with the configured
weights (reverb, noise, music, babble: see `pipeline/augment/augmenter.py`), written as 16-bit audio to
`<audio-dir>/<spk>/<utt>-<type>.wav` and listed in `<aug-dir>` under the id `<utt>-<type>` (speaker-prefixed, as
Kaldi's `--utt-suffix` makes them). `<audio-dir>/conditions.tsv` says what was done to each copy. The combined
dir, `<src> + <aug>`, is what stages 1-3 then archive like any other set. Work is split per speaker into
`--nj` jobs; the result is the same for a seed whatever `--nj`; a rerun with the same inputs does nothing.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from pipeline.augment.augmenter import AugmentConfigError, Augmenter, AugmentOptions, babble_pool_from
from pipeline.utils.audio import (PCM16_SCALE, AudioError, audio_file_facts, files_key, read_wav_scp_entry,
                                  write_audio)
from pipeline.utils.config import fingerprint
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.datadir import DataDir, c_sorted, publish_data_dir, read_table
from pipeline.utils.log import get_logger
from pipeline.utils.paths import recipe_path
from pipeline.utils.jobs import run_jobs
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done

# One row per copy, in <audio-dir>/conditions.tsv (and per job in the log dir): what was done, and where it went.
# codec: name[:sox -C setting]; band_hz: the copy's upper band edge after the low-pass and the codec.
COLUMNS = ("utt", "source", "spk", "type", "snr_db", "rt60_s", "rir", "sources", "codec", "band_hz", "gain", "dur",
           "wav")
DONE_NAME = "augment"
BUILDING_KEY = ".augment_key"  # in the audio dir: which stage key its files were made for


def write_conditions(path: Path, rows: list[dict[str, Any]]) -> None:
    """The condition rows as a tab-separated table with a header, sorted by utterance, written atomically."""
    def cell(value: Any) -> str:
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    write_text_atomic(path, "\t".join(COLUMNS) + "\n" + "".join(
        "\t".join(cell(row.get(c, "")) for c in COLUMNS) + "\n"
        for row in sorted(rows, key=lambda r: str(r["utt"]).encode())))


def read_conditions(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a conditions table, as strings keyed by column."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


def augment_job(job: int, utts: dict[str, tuple[str, str]], opts: AugmentOptions, pool: list[tuple[str, str, str]],
                audio_dir: str, log_dir: str, sample_rate: int, resample: bool, key: str) -> list[dict[str, str]]:
    """Augment one job's utterances ({utt: (speaker, wav.scp entry)}); return one condition row per copy.

    Skipped when this job finished for the same key and its audio is still there.
    """
    log_path = Path(log_dir)
    table = log_path / f"conditions.{job}.tsv"
    name = f"augment.{job}"
    job_key = fingerprint(key, sorted(utts.items()))
    if is_done(log_path, name, job_key):
        rows = read_conditions(table)
        if all(Path(r["wav"]).is_file() for r in rows):
            return rows
    clear_done(log_path, name)
    log = get_logger(f"augment.{job}", log_path / f"augment.{job}.log")
    augmenter = Augmenter(opts, sample_rate=sample_rate, babble_pool=pool)
    if opts.types.get("codec", 0) > 0 and augmenter.codecs != list(opts.codecs):
        # Codecs are drawn by their place in this list: a node whose sox lacks one would draw other copies.
        raise AugmentConfigError(f"augment job {job}: this node's sox makes codecs {augmenter.codecs}, the node that "
                                 f"planned the copy {list(opts.codecs)} ({augmenter.unavailable}); install the same "
                                 f"sox and codec libraries on every node")
    rows, start, seconds = [], time.time(), 0.0
    for utt in tqdm(c_sorted(utts), desc=f"augment job {job}", unit="utt", leave=False, position=job,
                    mininterval=2):
        spk, entry = utts[utt]
        try:
            samples, _ = read_wav_scp_entry(entry, sample_rate, resample=resample)
        except AudioError as err:  # left out of the copy; stage 1 reports the source utterance itself
            log.warning("leaving out %s: %s", utt, err)
            continue
        speech = samples / PCM16_SCALE
        seconds += len(speech) / sample_rate
        for kind, audio, cond in augmenter.augment_utterance(utt, speech, spk):
            # Noise and reverberation can push peaks past full scale: scale the copy down rather than clip it.
            peak = float(np.max(np.abs(audio)))
            gain = 1.0 if peak <= 1.0 else 0.99 / peak
            path = Path(audio_dir) / spk / f"{utt}-{kind}.{opts.audio_format}"
            write_audio(path, audio * gain, sample_rate, opts.audio_format)
            rows.append({**cond, "utt": f"{utt}-{kind}", "source": utt, "spk": spk, "gain": gain, "wav": str(path),
                         "dur": f"{len(audio) / sample_rate:.4f}"})
    write_conditions(table, rows)
    elapsed = time.time() - start
    log.info("job %d: %d copies of %d utterances (%.1f s of audio) in %.1f s (%.0fx real time)", job, len(rows),
             len(utts), seconds, elapsed, seconds / max(elapsed, 1e-9))
    mark_done(log_path, name, job_key, [table])
    return read_conditions(table)  # the same strings whether the job ran now or earlier


def _stage_key(src: Path, audio_dir: Path, combined: Path | None, opts: AugmentOptions, sample_rate: int,
               resample: bool, augmenter: Augmenter) -> str:
    sources = {"rirs": {k: len(v) for k, v in (augmenter.rirs or {}).items()},
               "musan": {k: len(v) for k, v in (augmenter.musan or {}).items()}}
    if augmenter.codecs:  # those this sox has (a key without codec copies stays as it was before they existed)
        sources["codecs"] = augmenter.codecs
    inputs = [(name, file_digest(src / name)) for name in ("wav.scp", "utt2spk", "spk2gender")
              if (src / name).is_file()]
    return fingerprint(opts.fingerprint_fields(), sample_rate, resample, recipe_path(audio_dir),
                       recipe_path(combined) if combined else None, sources, inputs,
                       files_key(audio_file_facts(read_table(src / "wav.scp"))))


def augmented_data_dir(src: DataDir, rows: list[dict[str, str]]) -> DataDir:
    """The data dir of the copies: audio, speakers, durations; genders and languages from their sources."""
    utt_tables: dict[str, dict[str, str]] = {
        "wav.scp": {r["utt"]: r["wav"] for r in rows},
        "utt2spk": {r["utt"]: r["spk"] for r in rows},
        "utt2dur": {r["utt"]: r["dur"] for r in rows},
    }
    if "utt2lang" in src.utt_tables:
        utt_tables["utt2lang"] = {r["utt"]: src.utt_tables["utt2lang"][r["source"]] for r in rows}
    spks = set(utt_tables["utt2spk"].values())
    spk_tables = {name: {s: v for s, v in table.items() if s in spks} for name, table in src.spk_tables.items()}
    return DataDir(utt_tables, spk_tables)


def augment_data_dir(src_dir: Path, aug_dir: Path, audio_dir: Path, combined_dir: Path | None,
                     opts: AugmentOptions, *, nj: int = 1, cmd: str = "local", log_dir: Path | None = None,
                     sample_rate: int = 16000, resample: bool = False) -> bool:
    """Write the augmented copy of `src_dir` (and the union with it, if `combined_dir`); return False when
    they are already complete for the same inputs and options (nothing done)."""
    targets = [aug_dir] + ([combined_dir] if combined_dir else [])
    if any(t.resolve() == src_dir.resolve() for t in targets) or aug_dir.resolve() == audio_dir.resolve() or (
            combined_dir and combined_dir.resolve() == aug_dir.resolve()):
        raise AugmentConfigError(f"augment-data-dir {src_dir} {aug_dir} {audio_dir} {combined_dir or ''}: the "
                                 f"source, the copy, its audio and the union need four different directories (is "
                                 f"data.train still the source set?)")
    log_dir = log_dir or Path("exp/augment") / src_dir.name
    log = get_logger("augment", log_dir / "augment.log")
    src = DataDir.load(src_dir)
    src.validate(src_dir, check_files=False)
    pool = babble_pool_from(src.utt2spk, src.table("wav.scp"), opts.babble_pool, opts.seed)
    augmenter = Augmenter(opts, sample_rate=sample_rate, babble_pool=pool)
    key = _stage_key(src_dir, audio_dir, combined_dir, opts, sample_rate, resample, augmenter)
    if is_done(aug_dir, DONE_NAME, key):
        log.info("%s: augmented copy of %s is complete and current, nothing to do", aug_dir, src_dir)
        return False
    for kind, why in augmenter.unavailable.items():
        log.warning("augmentation %s left out: %s", kind, why)
    clear_done(aug_dir, DONE_NAME)
    # Audio made for other options is removed; audio of this key survives a crash and is reused by job markers.
    building = audio_dir / BUILDING_KEY
    if audio_dir.exists() and not building.is_file() and any(audio_dir.iterdir()):
        raise AugmentConfigError(f"{audio_dir} holds files that augment-data-dir did not write; give the "
                                 f"augmented audio a directory of its own")
    if building.is_file() and building.read_text().strip() != key:
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(building, key + "\n")

    started = time.time()
    parts = src.split(min(nj, len(src.spks)))
    wav_scp = src.table("wav.scp")
    # The jobs make the codecs this sox makes (the stage key has them), and check that their sox makes the same.
    job_opts = replace(opts, codecs=tuple(augmenter.codecs))
    jobs = [dict(job=j, utts={u: (part.utt2spk[u], wav_scp[u]) for u in part.utts}, opts=job_opts, pool=pool,
                 audio_dir=recipe_path(audio_dir), log_dir=str(log_dir.resolve()), sample_rate=sample_rate,
                 resample=resample, key=key) for j, part in enumerate(parts, 1)]
    log.info("%s: %d utterances of %d speakers, %d cop%s each (types %s, weights %s; reverb: %s; noise: %s) "
             "in %d jobs", src_dir, len(src.utts), len(src.spks), opts.copies, "y" if opts.copies == 1 else "ies",
             ", ".join(augmenter.kinds), ", ".join(f"{p:.2f}" for p in augmenter.probabilities),
             "RIRS_NOISES" if augmenter.rirs else "simulated rooms",
             "MUSAN" if augmenter.musan else "coloured noise, training babble", len(jobs))
    if augmenter.codecs:
        log.info("codec copies: %s; low-pass at %g-%g Hz, none with probability %.2f", ", ".join(augmenter.codecs),
                 *opts.codec_lowpass_hz, opts.codec_full_band)
    rows = [row for result in run_jobs(augment_job, jobs, nj=nj, cmd=cmd, name="augment", log_dir=log_dir)
            for row in result]
    if not rows:
        raise AudioError(f"{src_dir}: no utterance could be augmented (see {log_dir}/augment.*.log)")
    write_conditions(audio_dir / "conditions.tsv", rows)

    aug = augmented_data_dir(src, rows)
    publish_data_dir(aug, aug_dir)
    counts = Counter(r["type"] for r in rows)
    log.info("%s: %s; copies per type: %s", aug_dir, aug.summary(), dict(sorted(counts.items())))
    if combined_dir is not None:
        combined = DataDir.combine([src, aug])
        # The copies' audio was checked above; the source's is stage 1's to check, as for any set.
        publish_data_dir(combined, combined_dir, check_files=False)
        log.info("%s: %s", combined_dir, combined.summary())
    outputs = [aug_dir / "wav.scp", aug_dir / "utt2spk", audio_dir / "conditions.tsv"]
    if combined_dir is not None:
        outputs += [combined_dir / "wav.scp", combined_dir / "utt2spk"]
    mark_done(aug_dir, DONE_NAME, key, outputs)
    log.info("augmentation done in %.1f s", time.time() - started)
    return True
