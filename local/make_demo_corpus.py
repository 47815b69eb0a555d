#!/usr/bin/env python3
"""Build the embedded demo corpus from the recorded human voices that Debian ships, and its Kaldi data dirs.

One row of `local/demo_voices.tsv` is one real person and one speaker. Each speaker reads random lines of the
embedded texts of their language (`local/demo_texts/`) with a random pitch and rate per utterance, through
espeak-ng + MBROLA, flite or Festival. Diphone synthesis alone is too clean (a GMM-UBM is near 0% EER on it), so
every utterance then gets the variability that real recordings have: simulated room reverberation
(pyroomacoustics), additive babble (other speakers of the same split) or coloured noise at 0-20 dB SNR, and a random
channel band limit, so that neither bandwidth, sample rate nor level identifies a voice.

Outputs: `<out-dir>/wav/<spk>/<utt>.wav` (16 kHz mono 16-bit), `<out-dir>/conditions.tsv` (what was done to each
utterance), and `<data-dir>/{train,test}` (wav.scp, utt2spk, spk2utt, spk2gender, utt2dur, utt2lang; test also
trials_O and trials_H). Deterministic for a seed whatever --nj; a second run with the same arguments does nothing;
audio and data dirs appear only when complete.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import click
import numpy as np
import soundfile
from scipy.signal import butter, sosfilt

LOCAL_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LOCAL_DIR.parent))  # the repo root, so that `pipeline` imports without path.sh

from pipeline.augment.noise import babble_noise, coloured_noise, mix_at_snr  # noqa: E402
from pipeline.augment.rir import reverberate, room_impulse_response  # noqa: E402
from pipeline.augment.seeding import rng_for, stable_hash  # noqa: E402
from pipeline.utils.atomic import atomic_file  # noqa: E402
from pipeline.utils.audio import audio_info, load_audio, resampled, write_audio  # noqa: E402
from pipeline.utils.config import fingerprint  # noqa: E402
from pipeline.utils.datadir import DataDir, publish_data_dir  # noqa: E402
from pipeline.utils.log import get_logger  # noqa: E402
from pipeline.utils.trials import random_pairs_trials, same_gender_trials  # noqa: E402
from pipeline.utils.jobs import run_jobs  # noqa: E402
from pipeline.utils.stage import clear_done, file_digest, is_done, mark_done  # noqa: E402

SAMPLE_RATE = 16000
DEFAULT_VOICE_TABLE = LOCAL_DIR / "demo_voices.tsv"
DEFAULT_TEXT_DIR = LOCAL_DIR / "demo_texts"
# The shared signal code the corpus is made with: a change there rebuilds the corpus, as a change here does.
SHARED_CODE = [LOCAL_DIR.parent / "pipeline" / "augment" / f"{name}.py" for name in ("noise", "rir", "seeding")] + [
    LOCAL_DIR.parent / "pipeline" / "utils" / "audio.py"]
DONE_NAME = "demo_corpus"
MBROLA_DIR = Path("/usr/share/mbrola")
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
# Festival voices that need more than their own package to run.
FESTIVAL_VOICE_NEEDS = {"hindi_NSK_diphone": Path("/usr/share/festival/hindi_scm")}
# Festival's Latin-script front ends read 8-bit text; given UTF-8 they spell out the bytes.
FESTIVAL_ENCODING = {"cs": "iso-8859-2", "fi": "latin-1", "it": "latin-1", "es": "latin-1", "ca": "latin-1",
                     "en": "ascii"}
# Habitual F0 range of a speaker, per gender (Hz); each speaker gets a fixed value in it, each utterance varies it.
HABITUAL_F0 = {"m": (100.0, 140.0), "f": (175.0, 235.0)}
# Voices whose engine ignores our pitch (and, for clunits, rate) settings are shifted with sox afterwards; sox also
# shifts formants, so their speakers keep their measured native F0 (median over 6 lines) as habitual F0.
SOX_PITCH_VOICES = {"flite:rms", "festival:cmu_us_slt_arctic_hts", "festival:upc_ca_ona_hts",
                    "festival:msu_ru_nsh_clunits"}
NATIVE_F0 = {"fl-rms": 102.0, "fl-slt": 170.0, "fe-ona": 182.0, "fe-nsh": 137.0}
# Phoneme symbols of espeak-ng that a database spells differently (from the databases' READMEs): Hebrew glottal
# stops become a short silence (the diphones around them were not recorded), Maori vowels use the database's SAMPA.
MBROLA_RENAMES = {
    "hb1": {"?": "_", 'Q"': "_", "X": "x"},
    "hb2": {"?": "_", 'Q"': "_"},
    "nz1": {"a": "A", "a:": "AA", "e:": "ee", "i:": "ii", "o:": "oo", "u:": "uu", "O": "o", "R": "r", 'u"': "u",
            "oI": "o", "aU": "A"},
}
# Within-speaker variability added to every utterance (see degrade_utterance).
REVERB_PROBABILITY = 0.75
RT60_RANGE_S = (0.15, 0.8)
SNR_RANGE_DB = (0.0, 20.0)
BABBLE_PROBABILITY = 0.5          # otherwise coloured noise
BABBLE_TALKERS = (3, 6)
LOWPASS_PROBABILITY = 0.5
LOWPASS_RANGE_HZ = (3400.0, 7200.0)
HIGHPASS_PROBABILITY = 0.3
HIGHPASS_RANGE_HZ = (80.0, 300.0)
# Rough reading rate (characters per second) to choose how many lines make an utterance of the drawn length.
CHARS_PER_SECOND = {"ja": 7.0, "hi": 10.0, "te": 10.0}


class CorpusError(RuntimeError):
    """The corpus cannot be built: missing voices, a synthesiser that failed; the message says which and why."""


# ---------------------------------------------------------------------------------------------------------------
# Voice table and texts
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Speaker:
    """One real person: the voices (engine:name) they can be synthesised with, all of the same person."""
    id: str
    gender: str
    language: str
    voices: tuple[str, ...]
    license: str


def read_voice_table(path: str | os.PathLike = DEFAULT_VOICE_TABLE) -> list[Speaker]:
    """Parse the voice table (tab-separated, `#` comments, one header line)."""
    speakers, header = [], None
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if header is None:
            header = cells
            continue
        row = dict(zip(header, cells))
        try:
            speakers.append(Speaker(row["speaker"], row["gender"], row["language"],
                                    tuple(v.strip() for v in row["voices"].split(",")), row["license"]))
        except KeyError as err:
            raise CorpusError(f"{path}:{lineno}: missing column {err}") from err
        if speakers[-1].gender not in ("m", "f"):
            raise CorpusError(f"{path}:{lineno}: gender must be m or f, got {speakers[-1].gender!r}")
    return speakers


def read_texts(text_dir: str | os.PathLike, language: str) -> list[str]:
    """The embedded lines of one language (comments and blank lines dropped)."""
    path = Path(text_dir) / f"{language}.txt"
    if not path.is_file():
        raise CorpusError(f"no embedded text for language {language!r}: {path} is missing")
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def _run(cmd: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, check=False, **kwargs)


def installed_voices() -> set[str]:
    """The `engine:name` voices that this machine can synthesise now."""
    found: set[str] = set()
    if shutil.which("espeak-ng") and shutil.which("mbrola"):
        listing = _run(["espeak-ng", "--voices=mb"]).stdout.decode(errors="replace")
        for name in re.findall(r"\bmb/mb-([a-z]{2}\d)\b", listing):
            if (MBROLA_DIR / name / name).is_file():
                found.add(f"mbrola:{name}")
    if shutil.which("flite"):
        listing = _run(["flite", "-lv"]).stdout.decode(errors="replace")
        found.update(f"flite:{name}" for name in listing.split(":", 1)[-1].split())
    if shutil.which("festival") and FESTIVAL_VOICE_DIR.is_dir():
        for voice_dir in FESTIVAL_VOICE_DIR.glob("*/*"):
            needs = FESTIVAL_VOICE_NEEDS.get(voice_dir.name)
            if voice_dir.is_dir() and (needs is None or needs.exists()):
                found.add(f"festival:{voice_dir.name}")
    return found


def available_speakers(speakers: list[Speaker], installed: set[str]) -> list[Speaker]:
    """Speakers with at least one installed voice, each keeping only its installed voices."""
    out = []
    for spk in speakers:
        voices = tuple(v for v in spk.voices if v in installed)
        if voices:
            out.append(Speaker(spk.id, spk.gender, spk.language, voices, spk.license))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Randomness: one independent stream per (seed, speaker, utterance, purpose), so results do not depend on --nj
# (rng_for, stable_hash: pipeline/augment/seeding.py)
# ---------------------------------------------------------------------------------------------------------------
def habitual_f0(speaker: Speaker) -> float:
    """A fixed speaking pitch for the person, in their gender's range (diphone databases are monotone)."""
    if speaker.id in NATIVE_F0:
        return NATIVE_F0[speaker.id]
    lo, hi = HABITUAL_F0[speaker.gender]
    return lo + (hi - lo) * (stable_hash("f0:" + speaker.id) % 10007) / 10006


# ---------------------------------------------------------------------------------------------------------------
# Planning: what each utterance says and how
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class UttPlan:
    utt: str
    speaker: str
    voice: str
    language: str
    text: str
    f0_hz: float          # mean F0 asked of the engine
    pitch_factor: float   # this utterance's pitch relative to the speaker's habitual F0
    stretch: float        # duration multiplier (>1 slower)
    lead_s: float         # silence before and after the speech
    tail_s: float
    wav: str = ""         # clean 16 kHz audio, filled by synthesis


def plan_speaker(speaker: Speaker, n_utts: int, seed: int, text_dir: str | os.PathLike,
                 min_dur: float, max_dur: float) -> list[UttPlan]:
    """Draw text, voice, pitch, rate and padding of each utterance of one speaker."""
    lines = read_texts(text_dir, speaker.language)
    cps = CHARS_PER_SECOND.get(speaker.language, 13.0)
    plans = []
    for index in range(n_utts):
        rng = rng_for(seed, speaker.id, index, "plan")
        stretch = float(rng.uniform(0.85, 1.2))
        target = float(rng.uniform(min_dur + 0.3, max_dur - 0.5))
        order = rng.permutation(len(lines))
        chosen, est = [], 0.0
        for i in order:  # add lines until the estimated reading time reaches the drawn duration
            chosen.append(lines[i])
            est += len(lines[i]) / cps * stretch
            if est >= target:
                break
        if len(chosen) > 1 and est > max_dur + 1.0:
            chosen.pop()
        pitch_factor = float(np.exp(rng.uniform(np.log(0.85), np.log(1.18))))
        plans.append(UttPlan(
            utt=f"{speaker.id}-{index + 1:04d}", speaker=speaker.id,
            voice=speaker.voices[int(rng.integers(len(speaker.voices)))], language=speaker.language,
            text=" ".join(chosen), f0_hz=habitual_f0(speaker) * pitch_factor, pitch_factor=pitch_factor,
            stretch=stretch, lead_s=float(rng.uniform(0.05, 0.35)), tail_s=float(rng.uniform(0.05, 0.35))))
    return plans


# ---------------------------------------------------------------------------------------------------------------
# Synthesis engines (each returns float samples in [-1, 1] and their rate)
# ---------------------------------------------------------------------------------------------------------------
def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise CorpusError(f"{what} failed (exit {proc.returncode}): "
                          f"{proc.stderr.decode(errors='replace').strip()[-400:]}")


def _espeak_pho(name: str, text: str) -> str:
    proc = _run(["espeak-ng", "-v", f"mb-{name}", "-q", "--pho", text])
    _check(proc, f"espeak-ng -v mb-{name} --pho")
    return proc.stdout.decode(errors="replace")


def _rename_phonemes(pho: str, renames: dict[str, str]) -> str:
    if not renames:
        return pho
    out = []
    for line in pho.splitlines():
        fields = line.split(None, 1)
        out.append(renames.get(fields[0], fields[0]) + " " + fields[1] if len(fields) == 2 else line)
    return "\n".join(out) + "\n"


def mbrola_renames(name: str, lines: list[str], work_dir: Path) -> dict[str, str]:
    """Phonemes that espeak-ng emits but the database lacks, mapped to their undecorated form where it has that.

    espeak-ng's phoneme tables for several voices use variants (Spanish `e/` `o/`, Italian `i/`, Telugu `t.`) that
    the databases never recorded; mbrola -e replaces each diphone with silence, leaving gaps in the speech.
    Found by reading all the language's lines once and parsing mbrola's "unknown diphone" warnings, on top of
    MBROLA_RENAMES (symbols taken from the databases' READMEs).
    """
    renames = dict(MBROLA_RENAMES.get(name, {}))
    pho = _rename_phonemes(_espeak_pho(name, " ".join(lines)), renames)
    out = work_dir / f"probe.{name}.wav"
    proc = _run(["mbrola", "-e", str(MBROLA_DIR / name / name), "-", str(out)], input=pho.encode())
    out.unlink(missing_ok=True)
    unknown = set(re.findall(r"Warning: (\S+)-(\S+) unknown", proc.stderr.decode(errors="replace")))
    phones = [line.split()[0] for line in pho.splitlines() if line.split()]
    known = set()
    for pair in zip(phones, phones[1:]):
        if pair not in unknown:
            known.update(pair)
    for phone in set(phones) - known:
        plain = phone.rstrip('/"#.^;~:')
        if plain and plain in known:
            renames[phone] = plain
    return renames


def synthesize_mbrola(plan: UttPlan, work_dir: Path, renames: dict[str, str]) -> tuple[np.ndarray, int]:
    """espeak-ng turns the text into MBROLA phonemes; mbrola speaks them at our pitch and rate."""
    name = plan.voice.split(":", 1)[1]
    pho = _rename_phonemes(_espeak_pho(name, plan.text), renames)
    # Pitch targets are the even fields after each phoneme's duration: `ph dur pos1 f1 pos2 f2 ...`.
    pitches = [float(f) for line in pho.splitlines() for f in line.split()[3::2]]
    ratio = plan.f0_hz / float(np.median(pitches)) if pitches else 1.0
    out = work_dir / f"{plan.utt}.mbrola.wav"
    database = str(MBROLA_DIR / name / name)
    proc = _run(["mbrola", "-e", "-f", f"{ratio:.4f}", "-t", f"{plan.stretch:.4f}", database, "-", str(out)],
                input=pho.encode())
    if proc.returncode != 0 or not out.is_file():
        # Some databases panic on pitches far from their own; their default contour still varies by rate.
        proc = _run(["mbrola", "-e", "-t", f"{plan.stretch:.4f}", database, "-", str(out)], input=pho.encode())
        _check(proc, f"mbrola {name}")
    audio, rate = load_audio(out)
    out.unlink()
    return audio, rate


def synthesize_flite(plan: UttPlan, work_dir: Path) -> tuple[np.ndarray, int]:
    name = plan.voice.split(":", 1)[1]
    out = work_dir / f"{plan.utt}.flite.wav"
    proc = _run(["flite", "-voice", name, "--setf", f"int_f0_target_mean={plan.f0_hz:.1f}",
                 "--setf", f"duration_stretch={plan.stretch:.4f}", "-t", plan.text, "-o", str(out)])
    _check(proc, f"flite -voice {name}")
    audio, rate = load_audio(out)
    out.unlink()
    return audio, rate


FESTIVAL_PRELUDE = """
(defvar hts_engine_params nil)
(set! demo_hts_base hts_engine_params)
(set! demo_f0_target 0)
(set! demo_orig_Wave_Synth Wave_Synth)
(define (demo_scale_targets demo_utt)
  "Scale the F0 targets of a diphone voice so that their mean is demo_f0_target."
  (let ((demo_items (utt.relation.items demo_utt 'Target)) (demo_sum 0) (demo_n 0))
    (mapcar (lambda (demo_t) (set! demo_sum (+ demo_sum (item.feat demo_t "f0"))) (set! demo_n (+ demo_n 1)))
            demo_items)
    (if (> demo_n 0)
        (let ((demo_k (/ demo_f0_target (/ demo_sum demo_n))))
          (mapcar (lambda (demo_t) (item.set_feat demo_t "f0" (* demo_k (item.feat demo_t "f0")))) demo_items)))))
(define (Wave_Synth demo_utt)
  (if (> demo_f0_target 0) (demo_scale_targets demo_utt))
  (demo_orig_Wave_Synth demo_utt))
(define (demo_say demo_text demo_f0 demo_stretch demo_out)
  (set! demo_f0_target demo_f0)
  (Parameter.set 'Duration_Stretch demo_stretch)
  (if demo_hts_base (set! hts_engine_params (append demo_hts_base (list (list "-r" (/ 1.0 demo_stretch))))))
  (utt.save.wave (utt.synth (eval (list 'Utterance 'Text demo_text))) demo_out 'riff))
"""


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(plans: list[UttPlan], work_dir: Path, outs: dict[str, Path]) -> subprocess.CompletedProcess:
    name = plans[0].voice.split(":", 1)[1]
    encoding = FESTIVAL_ENCODING.get(plans[0].language, "utf-8")
    # Diphone voices take our F0 through their targets; HTS and cluster-unit voices make their own (0 = leave it).
    native_pitch = not (name.endswith("_hts") or name.endswith("_clunits"))
    lines = [f"({'voice_' + name})", FESTIVAL_PRELUDE]
    for p in plans:
        f0 = p.f0_hz if native_pitch else 0
        stretch = p.stretch if not name.endswith("_clunits") else 1.0
        lines.append(f"(demo_say {_scheme_string(p.text)} {f0:.1f} {stretch:.4f} {_scheme_string(str(outs[p.utt]))})")
    script = work_dir / f"{plans[0].speaker}.{name}.scm"
    script.write_bytes("\n".join(lines).encode(encoding, errors="replace"))
    proc = _run(["festival", "--batch", str(script)], cwd=work_dir, timeout=600)
    script.unlink()
    return proc


def synthesize_festival(plans: list[UttPlan], work_dir: Path) -> dict[str, tuple[np.ndarray, int]]:
    """All utterances of one Festival voice in one process (a voice takes ~0.3 s to load).

    `Utterance` does not evaluate its arguments, hence the `eval`; our names start with `demo_` so that they
    cannot shadow a voice's own. Some diphone voices crash on F0 targets far above their own (czech_dita near
    260 Hz): the utterance it crashed on is redone with the voice's own intonation (f0_hz set to 0 to say so),
    and the batch goes on after it.
    """
    if not plans:
        return {}
    outs = {p.utt: work_dir / f"{p.utt}.festival.wav" for p in plans}
    remaining = list(plans)
    while remaining:
        proc = _festival_batch(remaining, work_dir, outs)
        missing = [p for p in remaining if not outs[p.utt].is_file()]
        if not missing:
            break
        crashed = missing[0]
        if crashed.f0_hz > 0:
            crashed.f0_hz = 0.0
            proc = _festival_batch([crashed], work_dir, outs)
        if not outs[crashed.utt].is_file():
            raise CorpusError(f"festival {crashed.voice} failed on {crashed.utt} (exit {proc.returncode}) "
                              f"text {crashed.text!r}: {proc.stderr.decode(errors='replace')[-400:]}")
        remaining = missing[1:]
    result = {}
    for utt, path in outs.items():
        result[utt] = load_audio(path)
        path.unlink()
    return result


def sox_pitch_and_tempo(audio: np.ndarray, rate: int, cents: float, tempo: float, work_dir: Path,
                        tag: str) -> np.ndarray:
    """Pitch shift (and tempo change) for voices whose engine has no control of its own."""
    src, dst = work_dir / f"{tag}.sox-in.wav", work_dir / f"{tag}.sox-out.wav"
    soundfile.write(str(src), audio, rate, subtype="FLOAT")
    effects = ["pitch", f"{cents:.1f}"] + (["tempo", "-s", f"{tempo:.4f}"] if abs(tempo - 1) > 1e-3 else [])
    proc = _run(["sox", str(src), str(dst)] + effects)
    _check(proc, "sox pitch")
    out, _ = load_audio(dst)
    src.unlink()
    dst.unlink()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Signal processing (vectorised; no loops over samples)
# ---------------------------------------------------------------------------------------------------------------
def active_rms(audio: np.ndarray, frame: int = 320) -> float:
    """RMS over the louder half of 20 ms frames: a level that pauses and silence padding do not dilute."""
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio ** 2)) + 1e-12)
    energies = np.sort(np.mean(audio[:n * frame].reshape(n, frame) ** 2, axis=1))
    return float(np.sqrt(np.mean(energies[n // 2:])) + 1e-12)


def normalise_level(audio: np.ndarray, target_rms: float = 0.05, peak: float = 0.95) -> np.ndarray:
    """Scale to a fixed active level (about -26 dBFS), backing off only where that would clip."""
    out = audio * (target_rms / active_rms(audio))
    top = np.max(np.abs(out))
    return out * (peak / top) if top > peak else out


def compress_pauses(audio: np.ndarray, max_pause_s: float = 0.25, floor_db: float = 40.0) -> np.ndarray:
    """Shorten every silence (10 ms frames more than floor_db below the loudest) to at most max_pause_s.

    Diphone databases lacking a few diphones leave gaps where they fall (mbrola -e), and engines pad differently;
    this keeps the share of speech alike across voices.
    """
    frame = SAMPLE_RATE // 100
    n = len(audio) // frame
    if n == 0:
        return audio
    energy_db = 10 * np.log10(np.mean(audio[:n * frame].reshape(n, frame) ** 2, axis=1) + 1e-20)
    silent = energy_db < energy_db.max() - floor_db
    starts_run = np.concatenate([[True], silent[1:] != silent[:-1]])
    run_start = np.flatnonzero(starts_run)
    run_id = np.cumsum(starts_run) - 1
    position_in_run = np.arange(n) - run_start[run_id]
    keep = ~silent | (position_in_run < int(max_pause_s * 100))
    return np.concatenate([audio[:n * frame][np.repeat(keep, frame)], audio[n * frame:]])


def fit_duration(audio: np.ndarray, lead_s: float, tail_s: float, min_dur: float, max_dur: float) -> np.ndarray:
    """Pad silence around the speech, cut at max_dur (with a 20 ms fade), pad up to min_dur."""
    out = np.concatenate([np.zeros(int(lead_s * SAMPLE_RATE)), audio, np.zeros(int(tail_s * SAMPLE_RATE))])
    max_len, min_len = int(max_dur * SAMPLE_RATE), int(np.ceil(min_dur * SAMPLE_RATE))
    if len(out) > max_len:
        out = out[:max_len].copy()
        fade = int(0.02 * SAMPLE_RATE)
        out[-fade:] *= np.linspace(1.0, 0.0, fade)
    if len(out) < min_len:
        out = np.concatenate([out, np.zeros(min_len - len(out))])
    return out


def band_limit(audio: np.ndarray, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    """A channel: optional high-pass (4th-order) and low-pass (6th-order Butterworth)."""
    if low_hz is not None:
        audio = sosfilt(butter(4, low_hz, "highpass", fs=SAMPLE_RATE, output="sos"), audio)
    if high_hz is not None:
        audio = sosfilt(butter(6, high_hz, "lowpass", fs=SAMPLE_RATE, output="sos"), audio)
    return audio


# ---------------------------------------------------------------------------------------------------------------
# Jobs (module level, keyword arguments: run_jobs ships them to worker processes)
# ---------------------------------------------------------------------------------------------------------------
def synthesize_speaker_job(plans: list[UttPlan], clean_dir: str, text_dir: str, min_dur: float,
                           max_dur: float) -> list[UttPlan]:
    """Speak every planned utterance of one speaker; write clean 16 kHz level-normalised audio."""
    clean_dir_path = Path(clean_dir)
    work_dir = Path(tempfile.mkdtemp(prefix="synth.", dir=clean_dir_path))
    raw: dict[str, tuple[np.ndarray, int]] = {}
    for voice in sorted({p.voice for p in plans if p.voice.startswith("festival:")}):
        raw.update(synthesize_festival([p for p in plans if p.voice == voice], work_dir))
    renames = {voice: mbrola_renames(voice.split(":", 1)[1], read_texts(text_dir, plans[0].language), work_dir)
               for voice in {p.voice for p in plans if p.voice.startswith("mbrola:")}}
    for plan in plans:
        if plan.voice.startswith("mbrola:"):
            raw[plan.utt] = synthesize_mbrola(plan, work_dir, renames[plan.voice])
        elif plan.voice.startswith("flite:"):
            raw[plan.utt] = synthesize_flite(plan, work_dir)
        elif not plan.voice.startswith("festival:"):
            raise CorpusError(f"unknown engine in voice {plan.voice!r} (expected mbrola:, flite: or festival:)")
    for plan in plans:
        audio, rate = raw[plan.utt]
        name = plan.voice.split(":", 1)[1]
        if plan.voice in SOX_PITCH_VOICES:
            tempo = 1.0 / plan.stretch if name.endswith("_clunits") else 1.0
            audio = sox_pitch_and_tempo(audio, rate, 1200 * np.log2(plan.pitch_factor), tempo, work_dir, plan.utt)
        if audio.size == 0 or not np.any(audio):
            raise CorpusError(f"{plan.voice} produced no audio for {plan.utt}: {plan.text!r}")
        audio = fit_duration(compress_pauses(resampled(audio, rate, SAMPLE_RATE)), plan.lead_s, plan.tail_s, min_dur, max_dur)
        plan.wav = str(clean_dir_path / plan.speaker / f"{plan.utt}.wav")
        write_audio(Path(plan.wav), normalise_level(audio))
    shutil.rmtree(work_dir, ignore_errors=True)
    return plans


@dataclass
class Condition:
    """What was done to one utterance (written to conditions.tsv for people and analyses)."""
    utt: str
    rt60: float = 0.0
    noise: str = "none"
    snr_db: float = float("nan")
    highpass_hz: float = 0.0
    lowpass_hz: float = 0.0


def degrade_utterance(speech: np.ndarray, pool: list[str], rng: np.random.Generator,
                      utt: str) -> tuple[np.ndarray, Condition]:
    """Room, noise and channel for one utterance; `pool` holds clean audio of other talkers of the same split."""
    cond = Condition(utt)
    if rng.random() < REVERB_PROBABILITY:
        rir, cond.rt60 = room_impulse_response(rng, RT60_RANGE_S)
        speech = reverberate(speech, rir)
    cond.snr_db = float(rng.uniform(*SNR_RANGE_DB))
    if pool and rng.random() < BABBLE_PROBABILITY:
        n_talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
        talkers = rng.choice(len(pool), size=n_talkers, replace=len(pool) < n_talkers)
        noise = babble_noise([load_audio(pool[i])[0] for i in talkers], len(speech), rng)
        cond.noise = f"babble{len(talkers)}"
    else:
        exponent = float(rng.uniform(0.0, 2.0))
        noise = coloured_noise(len(speech), exponent, rng)
        cond.noise = f"coloured{exponent:.2f}"
    audio = mix_at_snr(speech, noise, cond.snr_db)
    # Channel: band limits that every voice gets at random, so that a voice's native bandwidth is no clue.
    if rng.random() < LOWPASS_PROBABILITY:
        cond.lowpass_hz = float(rng.uniform(*LOWPASS_RANGE_HZ))
    if rng.random() < HIGHPASS_PROBABILITY:
        cond.highpass_hz = float(rng.uniform(*HIGHPASS_RANGE_HZ))
    audio = band_limit(audio, cond.highpass_hz or None, cond.lowpass_hz or None)
    return normalise_level(audio), cond


def degrade_speaker_job(plans: list[UttPlan], pool: list[tuple[str, str]], wav_dir: str,
                        seed: int) -> list[tuple[UttPlan, Condition]]:
    """Reverberate, add noise and a channel to every utterance of one speaker; write the final 16-bit wavs."""
    out = []
    for plan in plans:
        others = [path for spk, path in pool if spk != plan.speaker]
        speech, _ = load_audio(plan.wav)
        audio, cond = degrade_utterance(speech, others, rng_for(seed, plan.speaker, plan.utt, "degrade"), plan.utt)
        write_audio(Path(wav_dir) / plan.speaker / f"{plan.utt}.wav", audio)
        out.append((plan, cond))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Splits and trials
# ---------------------------------------------------------------------------------------------------------------
def split_speakers(speakers: list[Speaker], test_fraction: float, seed: int) -> tuple[list[Speaker], list[Speaker]]:
    """Evenly spaced picks from speakers ordered by gender, then language: test gets ~test_fraction of each
    gender and language groups spread over both sets."""
    rng = rng_for(seed, "split")
    keys = rng.random(len(speakers))
    order = sorted(range(len(speakers)), key=lambda i: (speakers[i].gender, speakers[i].language, keys[i]))
    n_test = max(1, int(round(len(speakers) * test_fraction))) if len(speakers) > 1 else 0
    picks = {order[int((k + rng.random()) * len(speakers) / n_test)] for k in range(n_test)} if n_test else set()
    train = [s for i, s in enumerate(speakers) if i not in picks]
    test = [s for i, s in enumerate(speakers) if i in picks]
    return train, test


# ---------------------------------------------------------------------------------------------------------------
# The whole build
# ---------------------------------------------------------------------------------------------------------------
def build_data_dir(results: list[tuple[UttPlan, Condition]], speakers: list[Speaker], wav_dir: Path) -> DataDir:
    wav_scp, utt2spk, utt2dur, utt2lang = {}, {}, {}, {}
    for plan, _ in results:
        path = wav_dir / plan.speaker / f"{plan.utt}.wav"
        wav_scp[plan.utt] = str(path)
        utt2spk[plan.utt] = plan.speaker
        utt2dur[plan.utt] = f"{audio_info(path).frames / SAMPLE_RATE:.4f}"
        utt2lang[plan.utt] = plan.language
    spk2gender = {s.id: s.gender for s in speakers}
    return DataDir({"wav.scp": wav_scp, "utt2spk": utt2spk, "utt2dur": utt2dur, "utt2lang": utt2lang},
                   {"spk2gender": spk2gender})


def write_conditions(path: Path, results: list[tuple[UttPlan, Condition]], split_of: dict[str, str]) -> None:
    with atomic_file(path) as handle:
        handle.write("utt\tsplit\tvoice\tf0_hz\tstretch\trt60_s\tnoise\tsnr_db\thighpass_hz\tlowpass_hz\ttext\n")
        for plan, cond in sorted(results, key=lambda r: r[0].utt.encode()):
            handle.write(f"{plan.utt}\t{split_of[plan.speaker]}\t{plan.voice}\t{plan.f0_hz:.1f}\t{plan.stretch:.3f}\t"
                         f"{cond.rt60:.2f}\t{cond.noise}\t{cond.snr_db:.1f}\t{cond.highpass_hz:.0f}\t"
                         f"{cond.lowpass_hz:.0f}\t{plan.text}\n")


def make_demo_corpus(out_dir: str | os.PathLike, data_dir: str | os.PathLike, *, nj: int = 2, seed: int = 0,
                     utts_per_spk: int = 20, test_fraction: float = 0.25, num_trials: int = 6000,
                     target_fraction: float = 0.1, min_dur: float = 2.0, max_dur: float = 8.0,
                     speakers: Sequence[str] = (), max_speakers: int = 0,
                     voice_table: str | os.PathLike = DEFAULT_VOICE_TABLE,
                     text_dir: str | os.PathLike = DEFAULT_TEXT_DIR) -> bool:
    """Build the corpus and data dirs; return False when an identical build is already complete (nothing done)."""
    out_dir, data_dir = Path(out_dir).resolve(), Path(data_dir)
    log = get_logger("make_demo_corpus", out_dir / "log" / "make_demo_corpus.log")
    started = time.time()

    table = read_voice_table(voice_table)
    chosen = available_speakers(table, installed_voices())
    if speakers:
        unknown = set(speakers) - {s.id for s in table}
        if unknown:
            raise CorpusError(f"speakers not in {voice_table}: {', '.join(sorted(unknown))}")
        chosen = [s for s in chosen if s.id in set(speakers)]
    if max_speakers:
        chosen = chosen[:max_speakers]
    if len({s.gender for s in chosen}) < 2 or len(chosen) < 4:
        raise CorpusError(f"only {len(chosen)} speakers with installed voices ({', '.join(s.id for s in chosen)}); "
                          f"need 4 or more of both genders: run local/install_demo_voices.sh as root")
    if not speakers and len(chosen) < 60:
        log.warning("only %d of the %d speakers of %s have their voices installed (MBROLA voices missing?); "
                    "the corpus will be small: see local/install_demo_voices.sh", len(chosen), len(table), voice_table)

    texts_digest = fingerprint(sorted((p.name, file_digest(p)) for p in Path(text_dir).glob("*.txt")))
    key = fingerprint(dict(seed=seed, utts_per_spk=utts_per_spk, test_fraction=test_fraction, num_trials=num_trials,
                           target_fraction=target_fraction, min_dur=min_dur, max_dur=max_dur, out_dir=str(out_dir)),
                      [(s.id, s.gender, s.language, s.voices) for s in chosen], texts_digest,
                      file_digest(voice_table), file_digest(__file__), [file_digest(p) for p in SHARED_CODE])
    outputs = [data_dir / name / table for name in ("train", "test") for table in ("wav.scp", "utt2spk", "spk2gender")]
    outputs += [data_dir / "test" / "trials_O", data_dir / "test" / "trials_H", out_dir / "conditions.tsv", out_dir / "wav"]
    if is_done(data_dir, DONE_NAME, key):
        log.info("demo corpus already complete in %s and %s (same arguments and voices): nothing to do",
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
    log.info("building the demo corpus: %d speakers (%s), %d utterances each, seed %d, %d jobs",
             len(chosen), ", ".join(f"{g}: {sum(s.gender == g for s in chosen)}" for g in "mf"),
             utts_per_spk, seed, nj)

    # 1. Clean speech, per speaker in parallel.
    t0 = time.time()
    jobs = [dict(plans=plan_speaker(s, utts_per_spk, seed, text_dir, min_dur, max_dur),
                 clean_dir=str(staging / "clean"), text_dir=str(text_dir), min_dur=min_dur, max_dur=max_dur)
            for s in chosen]
    planned = [p for plans in run_jobs(synthesize_speaker_job, jobs, nj=nj) for p in plans]
    log.info("synthesised %d clean utterances in %.1f s", len(planned), time.time() - t0)

    # 2. Speaker-disjoint split; babble comes only from the same split, so test never hears train voices.
    train, test = split_speakers(chosen, test_fraction, seed)
    split_of = {s.id: "train" for s in train} | {s.id: "test" for s in test}
    t0 = time.time()
    jobs = []
    for group in (train, test):
        ids = {s.id for s in group}
        pool = [(p.speaker, p.wav) for p in planned if p.speaker in ids]
        for s in group:
            jobs.append(dict(plans=[p for p in planned if p.speaker == s.id], pool=pool,
                             wav_dir=str(staging / "wav"), seed=seed))
    results = [r for rs in run_jobs(degrade_speaker_job, jobs, nj=nj) for r in rs]
    log.info("added room, noise and channel to %d utterances in %.1f s", len(results), time.time() - t0)

    # 3. The audio moved into place, then the data dirs (each validated, then swapped in); the marker last.
    wav_dir = out_dir / "wav"
    write_conditions(staging / "conditions.tsv", results, split_of)
    if wav_dir.exists():
        shutil.rmtree(wav_dir)
    os.replace(staging / "wav", wav_dir)
    os.replace(staging / "conditions.tsv", out_dir / "conditions.tsv")
    shutil.rmtree(staging)
    for name, group in (("train", train), ("test", test)):
        ids = {s.id for s in group}
        data = build_data_dir([r for r in results if r[0].speaker in ids], group, wav_dir)
        if name == "test":
            data.trials = {
                "trials_O": random_pairs_trials(data.utt2spk, num_trials, target_fraction, rng_for(seed, "trials_O")),
                "trials_H": same_gender_trials(data.utt2spk, data.spk_tables["spk2gender"], num_trials,
                                               target_fraction, rng_for(seed, "trials_H"),
                                               spk2group={s.id: s.language for s in group})}
        publish_data_dir(data, data_dir / name)
        log.info("%s/%s: %s", data_dir, name, data.summary())
    mark_done(data_dir, DONE_NAME, key, outputs)
    log.info("demo corpus done in %.1f s", time.time() - started)
    return True


@click.command(context_settings={"show_default": True})
@click.option("--out-dir", default="corpus/demo", help="where the audio goes (wav/<spk>/<utt>.wav)")
@click.option("--data-dir", default="data", help="where data dirs train/ and test/ go")
@click.option("--nj", default=2, help="parallel jobs (speakers are the unit of work)")
@click.option("--seed", default=0)
@click.option("--utts-per-spk", default=20)
@click.option("--test-fraction", default=0.25, help="share of speakers in the test set")
@click.option("--num-trials", default=6000, help="trials in each of trials_O and trials_H")
@click.option("--target-fraction", default=0.1, help="share of target trials")
@click.option("--min-dur", default=2.0, help="shortest utterance (s)")
@click.option("--max-dur", default=8.0, help="longest utterance (s)")
@click.option("--speakers", default="", help="comma-separated speaker ids to use (default: every installed one)")
@click.option("--max-speakers", default=0, help="use at most this many speakers (0: all)")
@click.option("--voice-table", default=str(DEFAULT_VOICE_TABLE), type=click.Path(exists=True, dir_okay=False))
@click.option("--text-dir", default=str(DEFAULT_TEXT_DIR), type=click.Path(exists=True, file_okay=False))
def main(out_dir: str, data_dir: str, nj: int, seed: int, utts_per_spk: int, test_fraction: float, num_trials: int,
         target_fraction: float, min_dur: float, max_dur: float, speakers: str, max_speakers: int, voice_table: str,
         text_dir: str) -> None:
    """Synthesise the demo corpus and write Kaldi data dirs DATA_DIR/train and DATA_DIR/test."""
    try:
        make_demo_corpus(out_dir, data_dir, nj=nj, seed=seed, utts_per_spk=utts_per_spk, test_fraction=test_fraction,
                         num_trials=num_trials, target_fraction=target_fraction, min_dur=min_dur, max_dur=max_dur,
                         speakers=[s for s in speakers.split(",") if s], max_speakers=max_speakers,
                         voice_table=voice_table, text_dir=text_dir)
    except CorpusError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
