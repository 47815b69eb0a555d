"""Build the embedded demo corpus from the real people that Debian packages carry, and its Kaldi data dirs.

Two kinds of speaker, each one real person counted once:
  - synthesised: one-person TTS voices (`local/demo/voices.tsv`, `local/demo/tts_*.py`): MBROLA, flite, Festival,
    RHVoice, SVOX Pico, Open JTalk, reading the embedded texts with a random pitch and rate per utterance;
  - recorded: real recordings of identifiable people in game and IVR packages (`local/demo/recordings.tsv`,
    `local/demo/recorded_speakers.py`), fetched with `apt-get download` into a package cache, never installed.
Every clean utterance then gets what real recordings have: simulated room reverberation, additive babble (from
a pool of people in neither split) or coloured noise, and a channel whose low-pass sits below the narrowest source's
band, so that neither bandwidth, sample rate nor level tells a source or a voice.

People are split into train, test and a babble pool; test holds both genders and both kinds. The test set's trials
are all its pairs (`trials_O`), all its same-gender pairs (`trials_H`) and all pairs of recorded people
(`trials_real`). Outputs: `<out-dir>/wav/<spk>/<utt>.wav` (16 kHz mono 16-bit), `<out-dir>/conditions.tsv` (what
was done to each utterance), `<out-dir>/speakers.tsv` (who is who, where from, how much), and `<data-dir>/{train,test}`.
Deterministic for a seed whatever --nj; a second run with the same arguments and sources does nothing; audio and
data dirs appear only when complete.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from local.demo import debian_packages, recorded_speakers as rec, tts_voices as tts
from local.demo.clean_speech import clean_speech_job, recorded_job, tts_job
from local.demo.corpus_tables import build_data_dir, test_trials, write_conditions, write_speakers
from local.demo.degradation import degrade_speaker_job, rir_bank
from local.demo.people import recorded_people, split_people, tts_people
from pipeline.errors import PipelineError
from pipeline.utils.atomic import atomic_path, swap_in_directory
from pipeline.utils.config import fingerprint
from pipeline.utils.datadir import publish_data_dir
from pipeline.utils.jobs import run_jobs
from pipeline.utils.log import get_logger
from pipeline.utils.paths import recipe_path
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done

PACKAGE_DIR = Path(__file__).resolve().parent
# The code the corpus is made with: a change there rebuilds the corpus.
SOURCE_CODE = sorted(PACKAGE_DIR.glob("*.py")) + [
    PACKAGE_DIR.parents[1] / "pipeline" / sub for sub in ("augment/noise.py", "augment/rir.py", "augment/seeding.py",
                                                          "utils/audio.py")]
DONE_NAME = "demo_corpus"
MIN_UTTERANCE_SHARE = 0.6         # a recorded person with less speech than this share of the utterances asked is out


class CorpusError(PipelineError, RuntimeError):
    """The corpus cannot be built: too few people, a failed source; the message says which and why."""


def make_demo_corpus(out_dir: str | os.PathLike, data_dir: str | os.PathLike, *, nj: int = 2, seed: int = 0,
                     utts_per_spk: int = 20, test_utts_per_spk: int = 20, test_fraction: float = 0.3,
                     recorded_test: int = 0,
                     min_dur: float = 2.0, max_dur: float = 8.0, speakers: Sequence[str] = (),
                     max_speakers: int = 0, recordings: bool = True,
                     package_cache: str | os.PathLike = "corpus/packages",
                     voice_table: str | os.PathLike = tts.DEFAULT_VOICE_TABLE,
                     recording_table: str | os.PathLike = rec.DEFAULT_RECORDING_TABLE,
                     text_dir: str | os.PathLike = tts.DEFAULT_TEXT_DIR) -> bool:
    """Build the corpus and data dirs; return False when an identical build is already complete (nothing done)."""
    out_dir, data_dir = Path(out_dir).resolve(), Path(data_dir)  # absolute for the jobs' tools (festival chdirs)
    log = get_logger("make_demo_corpus", out_dir / "log" / "make_demo_corpus.log")
    started = time.time()

    # Who can speak on this machine: installed TTS voices, recordings apt can provide.
    voice_people, installed = tts.read_voice_table(voice_table), tts.installed_voices()
    voices = tts.available_speakers(voice_people, installed)
    absent = [s for s in tts.unavailable_speakers(voice_people, installed) if not speakers or s in speakers]
    if absent:
        log.warning("no installed voice for %d people, left out: %s (local/install_demo_voices.sh as root installs "
                    "them; the MBROLA and RHVoice voices need Debian contrib and non-free)", len(absent), ", ".join(absent))
    recorded = rec.read_recording_table(recording_table) if recordings else []
    roots: dict[str, str] = {}
    if recorded:
        found, missing = debian_packages.fetch_packages(sorted({p for s in recorded for p in s.packages}),
                                                        Path(package_cache), log)
        for package, reason in sorted(missing.items()):
            left_out = [s.id for s in recorded if package in s.packages]
            log.warning("package %s cannot be had (%s): leaving out %s", package, reason, ", ".join(left_out))
        recorded = [s for s in recorded if all(p in found for p in s.packages)]
        roots = {p: str(found[p]) for s in recorded for p in s.packages}
    # Which package versions the clips came from: a new version redoes the corpus.
    versions = sorted((p, (Path(root) / debian_packages.EXTRACTED_MARKER).read_text().strip())
                      for p, root in roots.items())
    if speakers:
        voices = [s for s in voices if s.id in set(speakers)]
        recorded = [s for s in recorded if s.id in set(speakers)]
    if max_speakers:
        voices = voices[:max_speakers]
        recorded = recorded[:max(0, max_speakers - len(voices))]
    people = tts_people(voices) + recorded_people(recorded)
    if len({p.gender for p in people}) < 2 or len(people) < 4:
        raise CorpusError(f"only {len(people)} people with installed voices or available recordings "
                          f"({', '.join(p.id for p in people)}); need 4 or more of both genders: run "
                          f"local/install_demo_voices.sh as root")

    texts_digest = fingerprint(sorted((p.name, file_digest(p)) for p in Path(text_dir).glob("*.txt")))
    key = fingerprint(dict(seed=seed, utts_per_spk=utts_per_spk, test_utts_per_spk=test_utts_per_spk,
                           test_fraction=test_fraction, recorded_test=recorded_test, min_dur=min_dur, max_dur=max_dur,
                           out_dir=recipe_path(out_dir)),
                      [(s.id, s.gender, s.language, s.voices) for s in voices], recorded, versions, texts_digest,
                      file_digest(voice_table), file_digest(recording_table), [file_digest(p) for p in SOURCE_CODE])
    if is_done(data_dir, DONE_NAME, key):
        log.info("demo corpus already complete in %s and %s (same arguments and sources): nothing to do",
                 out_dir, data_dir)
        return False

    # From here on nothing may look complete until everything is: drop the marker and the data dirs first.
    clear_done(data_dir, DONE_NAME)
    for name in ("train", "test"):
        if (data_dir / name).exists():
            shutil.rmtree(data_dir / name)
    staging = out_dir / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "clean").mkdir(parents=True)
    train, test, babble = split_people(people, test_fraction, seed, recorded_test)
    split_of = {p.id: "train" for p in train} | {p.id: "test" for p in test} | {p.id: "babble" for p in babble}
    log.info("building the demo corpus: %d people (%s; %d recorded), %d train, %d test, %d babble only; seed %d, "
             "%d jobs", len(people), ", ".join(f"{g}: {sum(p.gender == g for p in people)}" for g in "mf"),
             len(recorded), len(train), len(test), len(babble), seed, nj)

    # 1. Clean speech, per person in parallel.
    t0 = time.time()
    wanted = {p.id: test_utts_per_spk if split_of[p.id] == "test" else utts_per_spk for p in people}
    common = dict(seed=seed, clean_dir=str(staging / "clean"), min_dur=min_dur, max_dur=max_dur)
    jobs = [dict(job=tts_job, speaker=s, n_utts=wanted[s.id], text_dir=str(text_dir), **common) for s in voices]
    jobs += [dict(job=recorded_job, speaker=s, roots=roots, n_utts=wanted[s.id], **common) for s in recorded]
    cleans = [c for made in run_jobs(clean_speech_job, jobs, nj=nj, name="clean_speech") for c in made]
    short = {s: n for s, n in Counter(c.speaker for c in cleans).items() if n < MIN_UTTERANCE_SHARE * wanted[s]}
    if short:
        log.warning("too little speech, left out: %s", ", ".join(f"{s} ({n} of {wanted[s]} utterances)"
                                                                 for s, n in sorted(short.items())))
        cleans = [c for c in cleans if c.speaker not in short]
        train, test, babble = ([p for p in group if p.id not in short] for group in (train, test, babble))
    log.info("%d clean utterances in %.1f s", len(cleans), time.time() - t0)

    # 2. Room, noise and channel; babble from people heard in neither split.
    t0 = time.time()
    rirs, rt60 = rir_bank(seed)
    with atomic_path(staging / "rirs.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, rirs=rirs, rt60=rt60)
    pool = [c.wav for c in cleans if split_of[c.speaker] == "babble"]
    jobs = [dict(utterances=[c for c in cleans if c.speaker == p.id], babble_pool=pool,
                 rir_file=str(staging / "rirs.npz"), wav_dir=str(staging / "wav"), seed=seed) for p in train + test]
    results = [r for rs in run_jobs(degrade_speaker_job, jobs, nj=nj, name="degrade") for r in rs]
    log.info("room, noise and channel for %d utterances in %.1f s", len(results), time.time() - t0)

    # 3. The audio moved into place, then the data dirs (each validated, then swapped in); the marker last.
    wav_dir = out_dir / "wav"
    write_conditions(staging / "conditions.tsv", results, split_of)
    write_speakers(staging / "speakers.tsv", train + test + babble, split_of, cleans)
    swap_in_directory(staging / "wav", wav_dir)
    for table in ("conditions.tsv", "speakers.tsv"):
        os.replace(staging / table, out_dir / table)
    shutil.rmtree(staging)
    for name, group in (("train", train), ("test", test)):
        ids = {p.id for p in group}
        data = build_data_dir([r for r in results if r[0].speaker in ids], group, wav_dir)
        if name == "test":
            data.trials = test_trials(data, group)
        publish_data_dir(data, data_dir / name)
        log.info("%s/%s: %s", data_dir, name, data.summary())
    outputs = [data_dir / name / table for name in ("train", "test") for table in ("wav.scp", "utt2spk", "spk2gender")]
    outputs += [data_dir / "test" / name for name in data.trials]
    outputs += [out_dir / "conditions.tsv", out_dir / "speakers.tsv", wav_dir]
    mark_done(data_dir, DONE_NAME, key, outputs)
    log.info("demo corpus done in %.1f s", time.time() - started)
    return True
