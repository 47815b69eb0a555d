#!/usr/bin/env python3
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
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import click
import numpy as np

LOCAL_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LOCAL_DIR.parent))  # the repo root, so that `pipeline` imports without path.sh

from local.demo import debian_packages, recorded_speakers as rec  # noqa: E402
from local.demo import tts_voices as tts  # noqa: E402
from local.demo.recorded_utterances import recorded_speaker_job  # noqa: E402
from local.demo.tts_engines import synthesize_speaker_job  # noqa: E402
from local.demo.tts_plan import plan_speaker  # noqa: E402
from local.demo.dsp import SAMPLE_RATE, band_limit, normalise_level  # noqa: E402
from pipeline.augment.noise import babble_noise, coloured_noise, mix_at_snr  # noqa: E402
from pipeline.augment.rir import reverberate, room_impulse_response  # noqa: E402
from pipeline.augment.seeding import rng_for  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402
from pipeline.utils.atomic import atomic_file, atomic_path, swap_in_directory  # noqa: E402
from pipeline.utils.audio import audio_info, load_audio, write_audio  # noqa: E402
from pipeline.utils.config import fingerprint  # noqa: E402
from pipeline.utils.datadir import DataDir, publish_data_dir  # noqa: E402
from pipeline.utils.jobs import run_jobs  # noqa: E402
from pipeline.utils.log import get_logger  # noqa: E402
from pipeline.utils.paths import recipe_path  # noqa: E402
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done  # noqa: E402
from pipeline.utils.trials import Trials, all_pairs_trials  # noqa: E402

# The code the corpus is made with: a change there rebuilds the corpus, as a change here does.
SOURCE_CODE = [Path(__file__)] + sorted(
    (LOCAL_DIR / "demo").glob("*.py")) + [
    LOCAL_DIR.parent / "pipeline" / sub for sub in ("augment/noise.py", "augment/rir.py", "augment/seeding.py",
                                                    "utils/audio.py")]
DONE_NAME = "demo_corpus"
# What every utterance goes through (see degrade_utterance).
REVERB_PROBABILITY = 0.6
RT60_RANGE_S = (0.15, 0.7)
RIR_BANK_SIZE = 256               # rooms simulated once per build, drawn per utterance
SNR_RANGE_DB = (5.0, 25.0)
BABBLE_PROBABILITY = 0.35         # otherwise coloured noise
BABBLE_TALKERS = (3, 6)
# Every utterance is low-passed below the narrowest source (the 11 kHz Ur-Quan Masters recordings end at 5.5 kHz),
# so that the bandwidth of a recording tells nothing of its source.
LOWPASS_RANGE_HZ = (3400.0, 5200.0)
HIGHPASS_PROBABILITY = 0.3
HIGHPASS_RANGE_HZ = (80.0, 300.0)
BABBLE_POOL = {"m": 4, "f": 4}    # people heard only as babble, per gender: in neither split (fewer in small builds)
MIN_UTTERANCE_SHARE = 0.6         # a recorded person with less speech than this share of the utterances asked is out


class CorpusError(PipelineError, RuntimeError):
    """The corpus cannot be built: too few people, a failed source; the message says which and why."""


@dataclass(frozen=True)
class Person:
    """One speaker of the corpus, whatever makes their speech."""
    id: str
    gender: str
    language: str
    kind: str       # "tts" or "recorded"
    source: str     # engine or package, for speakers.tsv and the README's tally
    licence: str


@dataclass
class Clean:
    """One clean utterance, before room, noise and channel."""
    utt: str
    speaker: str
    language: str
    wav: str
    source: str     # the voice (engine:name) or the package it came from
    details: str    # TTS: pitch, rate, text; recorded: the clips it was joined or cut from


# ---------------------------------------------------------------------------------------------------------------
# Who: the people both tables offer on this machine
# ---------------------------------------------------------------------------------------------------------------
def tts_people(speakers: Sequence[tts.Speaker]) -> list[Person]:
    return [Person(s.id, s.gender, s.language, "tts", s.voices[0].split(":", 1)[0], s.license) for s in speakers]


def recorded_people(speakers: Sequence[rec.RecordedSpeaker]) -> list[Person]:
    return [Person(s.id, s.gender, s.language, "recorded", s.packages[0], s.licence) for s in speakers]


def split_people(people: Sequence[Person], test_fraction: float, seed: int
                 ) -> tuple[list[Person], list[Person], list[Person]]:
    """(train, test, babble): a babble pool of TTS people of both genders heard in neither split, then evenly spaced
    picks from the rest ordered by kind, gender and language, so that test gets ~test_fraction of each kind and
    gender and language groups spread over both sets."""
    rng = rng_for(seed, "split")
    keys = rng.random(len(people))
    babble: list[Person] = []
    for gender, count in BABBLE_POOL.items():
        candidates = sorted((p for p in people if p.kind == "tts" and p.gender == gender),
                            key=lambda p: keys[people.index(p)])
        babble += candidates[:min(count, len(candidates) // 4)]  # most of a gender stays for train and test
    rest = [p for p in people if p not in babble]
    order = sorted(range(len(rest)), key=lambda i: (rest[i].kind, rest[i].gender, rest[i].language,
                                                    keys[people.index(rest[i])]))
    n_test = max(1, int(round(len(rest) * test_fraction))) if len(rest) > 1 else 0
    picks = {order[int((k + rng.random()) * len(rest) / n_test)] for k in range(n_test)} if n_test else set()
    train = [p for i, p in enumerate(rest) if i not in picks]
    test = [p for i, p in enumerate(rest) if i in picks]
    return train, test, babble


# ---------------------------------------------------------------------------------------------------------------
# Clean speech (jobs: module level, keyword arguments, so that run_jobs can ship them)
# ---------------------------------------------------------------------------------------------------------------
def tts_job(speaker: tts.Speaker, n_utts: int, seed: int, text_dir: str, clean_dir: str, min_dur: float,
            max_dur: float) -> list[Clean]:
    plans = plan_speaker(speaker, n_utts, seed, text_dir, min_dur, max_dur)
    return [Clean(p.utt, p.speaker, p.language, p.wav, p.voice,
                  f"f0={p.f0_hz:.0f} pitch={p.pitch_factor:.3f} stretch={p.stretch:.3f} text={p.text}")
            for p in synthesize_speaker_job(plans, clean_dir, text_dir, min_dur, max_dur)]


def recorded_job(speaker: rec.RecordedSpeaker, roots: dict[str, str], n_utts: int, seed: int, clean_dir: str,
                 min_dur: float, max_dur: float) -> list[Clean]:
    made = recorded_speaker_job(speaker, roots, n_utts, seed, min_dur, max_dur, clean_dir)
    return [Clean(u["utt"], speaker.id, u["language"], u["wav"], ",".join(speaker.packages), u["clips"])
            for u in made]


# ---------------------------------------------------------------------------------------------------------------
# Room, noise and channel
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Condition:
    """What was done to one utterance (written to conditions.tsv for people and analyses)."""
    utt: str
    rt60: float = 0.0
    noise: str = "none"
    snr_db: float = float("nan")
    highpass_hz: float = 0.0
    lowpass_hz: float = 0.0


def rir_bank(seed: int, size: int = RIR_BANK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """`size` simulated rooms (impulse responses zero-padded to one length) and their RT60s: drawing from a bank
    costs a fraction of simulating a room per utterance."""
    rooms = [room_impulse_response(rng_for(seed, "rir", k), RT60_RANGE_S) for k in range(size)]
    longest = max(len(r) for r, _ in rooms)
    bank = np.zeros((size, longest))
    for k, (rir, _) in enumerate(rooms):
        bank[k, :len(rir)] = rir
    return bank, np.array([rt60 for _, rt60 in rooms])


def degrade_utterance(speech: np.ndarray, babble_pool: list[str], rirs: tuple[np.ndarray, np.ndarray],
                      rng: np.random.Generator, utt: str) -> tuple[np.ndarray, Condition]:
    """Room, noise and channel for one utterance; `babble_pool` holds clean audio of people in neither split."""
    cond = Condition(utt)
    speech = normalise_level(speech)
    if rng.random() < REVERB_PROBABILITY:
        k = int(rng.integers(len(rirs[1])))
        speech = reverberate(speech, np.trim_zeros(rirs[0][k], "b"))
        cond.rt60 = float(rirs[1][k])
    cond.snr_db = float(rng.uniform(*SNR_RANGE_DB))
    if babble_pool and rng.random() < BABBLE_PROBABILITY:
        n_talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
        talkers = rng.choice(len(babble_pool), size=n_talkers, replace=len(babble_pool) < n_talkers)
        noise = babble_noise([load_audio(babble_pool[i])[0] for i in talkers], len(speech), rng)
        cond.noise = f"babble{len(talkers)}"
    else:
        exponent = float(rng.uniform(0.0, 2.0))
        noise = coloured_noise(len(speech), exponent, rng)
        cond.noise = f"coloured{exponent:.2f}"
    audio = mix_at_snr(speech, noise, cond.snr_db)
    cond.lowpass_hz = float(rng.uniform(*LOWPASS_RANGE_HZ))
    if rng.random() < HIGHPASS_PROBABILITY:
        cond.highpass_hz = float(rng.uniform(*HIGHPASS_RANGE_HZ))
    audio = band_limit(audio, cond.highpass_hz or None, cond.lowpass_hz)
    return normalise_level(audio), cond


def degrade_speaker_job(utterances: list[Clean], babble_pool: list[str], rir_file: str, wav_dir: str,
                        seed: int) -> list[tuple[Clean, Condition]]:
    """Room, noise and channel for every utterance of one speaker; write the final 16-bit wavs."""
    with np.load(rir_file) as bank:
        rirs = (bank["rirs"], bank["rt60"])
    out = []
    for clean in utterances:
        speech, _ = load_audio(clean.wav)
        audio, cond = degrade_utterance(speech, babble_pool, rirs, rng_for(seed, clean.speaker, clean.utt, "degrade"),
                                        clean.utt)
        write_audio(Path(wav_dir) / clean.speaker / f"{clean.utt}.wav", audio)
        out.append((clean, cond))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Data dirs, trials, tables
# ---------------------------------------------------------------------------------------------------------------
def build_data_dir(results: list[tuple[Clean, Condition]], people: list[Person], wav_dir: Path) -> DataDir:
    wav_scp, utt2spk, utt2dur, utt2lang = {}, {}, {}, {}
    for clean, _ in results:
        path = wav_dir / clean.speaker / f"{clean.utt}.wav"
        wav_scp[clean.utt] = recipe_path(path)   # as the recipe names its files: a moved checkout reads its own
        utt2spk[clean.utt] = clean.speaker
        utt2dur[clean.utt] = f"{audio_info(path).frames / SAMPLE_RATE:.4f}"
        utt2lang[clean.utt] = clean.language
    return DataDir({"wav.scp": wav_scp, "utt2spk": utt2spk, "utt2dur": utt2dur, "utt2lang": utt2lang},
                   {"spk2gender": {p.id: p.gender for p in people}})


def test_trials(data: DataDir, people: list[Person]) -> dict[str, Trials]:
    """All pairs (O), all same-gender pairs (H), all pairs of recorded people (real)."""
    everything = all_pairs_trials(data.utt2spk)
    gender = data.spk_tables["spk2gender"]
    same_gender = np.array([gender[data.utt2spk[e]] == gender[data.utt2spk[t]]
                            for e, t in zip(everything.enroll.tolist(), everything.test.tolist())], dtype=bool)
    recorded = {p.id for p in people if p.kind == "recorded"}
    lists = {"trials_O": everything, "trials_H": everything.where(same_gender)}
    real = all_pairs_trials({u: s for u, s in data.utt2spk.items() if s in recorded})
    if real.num_target and len(real) > real.num_target:
        lists["trials_real"] = real
    return lists


def write_conditions(path: Path, results: list[tuple[Clean, Condition]], split_of: dict[str, str]) -> None:
    with atomic_file(path) as handle:
        handle.write("utt\tsplit\tsource\trt60_s\tnoise\tsnr_db\thighpass_hz\tlowpass_hz\tdetails\n")
        for clean, cond in sorted(results, key=lambda r: r[0].utt.encode()):
            handle.write(f"{clean.utt}\t{split_of[clean.speaker]}\t{clean.source}\t{cond.rt60:.2f}\t{cond.noise}\t"
                         f"{cond.snr_db:.1f}\t{cond.highpass_hz:.0f}\t{cond.lowpass_hz:.0f}\t{clean.details}\n")


def write_speakers(path: Path, people: list[Person], split_of: dict[str, str], cleans: list[Clean]) -> None:
    """Who is who: kind, source, language, split, utterances and seconds of clean speech, licence."""
    count, seconds = Counter(c.speaker for c in cleans), Counter()
    for c in cleans:
        seconds[c.speaker] += audio_info(c.wav).frames / SAMPLE_RATE
    with atomic_file(path) as handle:
        handle.write("speaker\tgender\tkind\tsource\tlanguage\tsplit\tutterances\tseconds\tlicence\n")
        for p in sorted(people, key=lambda p: p.id.encode()):
            handle.write(f"{p.id}\t{p.gender}\t{p.kind}\t{p.source}\t{p.language}\t{split_of[p.id]}\t{count[p.id]}\t"
                         f"{seconds[p.id]:.1f}\t{p.licence}\n")


# ---------------------------------------------------------------------------------------------------------------
# The whole build
# ---------------------------------------------------------------------------------------------------------------
def make_demo_corpus(out_dir: str | os.PathLike, data_dir: str | os.PathLike, *, nj: int = 2, seed: int = 0,
                     utts_per_spk: int = 20, test_utts_per_spk: int = 20, test_fraction: float = 0.3,
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
                           test_fraction=test_fraction, min_dur=min_dur, max_dur=max_dur, out_dir=recipe_path(out_dir)),
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
    train, test, babble = split_people(people, test_fraction, seed)
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
    cleans = [c for made in run_jobs(_call, jobs, nj=nj, name="clean_speech") for c in made]
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


def _call(job, **kwargs):
    """Run one clean-speech job, TTS or recorded (run_jobs ships a function and its keyword arguments)."""
    return job(**kwargs)


@click.command(context_settings={"show_default": True})
@click.option("--out-dir", default="corpus/demo", help="where the audio goes (wav/<spk>/<utt>.wav)")
@click.option("--data-dir", default="data", help="where data dirs train/ and test/ go")
@click.option("--nj", default=2, help="parallel jobs (people are the unit of work)")
@click.option("--seed", default=0)
@click.option("--utts-per-spk", default=20, help="utterances of each training person")
@click.option("--test-utts-per-spk", default=20, help="utterances of each test person")
@click.option("--test-fraction", default=0.3, help="share of the people (babble pool aside) in the test set")
@click.option("--min-dur", default=2.0, help="shortest utterance (s)")
@click.option("--max-dur", default=8.0, help="longest utterance (s)")
@click.option("--speakers", default="", help="comma-separated speaker ids to use (default: every available one)")
@click.option("--max-speakers", default=0, help="use at most this many speakers (0: all)")
@click.option("--recordings/--no-recordings", default=True, help="add the recorded people (apt-get download)")
@click.option("--package-cache", default="corpus/packages", help="where recorded packages are downloaded and unpacked")
@click.option("--voice-table", default=str(tts.DEFAULT_VOICE_TABLE), type=click.Path(exists=True, dir_okay=False))
@click.option("--recording-table", default=str(rec.DEFAULT_RECORDING_TABLE), type=click.Path(exists=True, dir_okay=False))
@click.option("--text-dir", default=str(tts.DEFAULT_TEXT_DIR), type=click.Path(exists=True, file_okay=False))
def main(out_dir: str, data_dir: str, nj: int, seed: int, utts_per_spk: int, test_utts_per_spk: int,
         test_fraction: float, min_dur: float, max_dur: float, speakers: str, max_speakers: int, recordings: bool,
         package_cache: str, voice_table: str, recording_table: str, text_dir: str) -> None:
    """Build the demo corpus and write Kaldi data dirs DATA_DIR/train and DATA_DIR/test."""
    try:
        make_demo_corpus(out_dir, data_dir, nj=nj, seed=seed, utts_per_spk=utts_per_spk,
                         test_utts_per_spk=test_utts_per_spk, test_fraction=test_fraction, min_dur=min_dur,
                         max_dur=max_dur, speakers=[s for s in speakers.split(",") if s], max_speakers=max_speakers,
                         recordings=recordings, package_cache=package_cache, voice_table=voice_table,
                         recording_table=recording_table, text_dir=text_dir)
    except PipelineError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
