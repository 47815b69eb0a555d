"""The synthesised half of the demo corpus: one-person TTS voices that Debian ships, and what each utterance says.

One row of `local/demo_voices.tsv` is one real person and one speaker: the MBROLA diphone databases (driven by
espeak-ng), the flite and Festival voices, RHVoice's voices, SVOX Pico's six women, and Open JTalk's NITech m001.
Each speaker reads random lines of the embedded texts of their language (`local/demo_texts/`) with a random pitch
and rate per utterance; `synthesize_speaker_job` writes the clean 16 kHz utterances that the corpus build then
degrades (room, noise, channel) like the recorded ones.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile

from local.demo.dsp import compress_pauses, cut_at_pauses, fit_duration, normalise_level
from local.demo.table import read_table
from pipeline.augment.seeding import rng_for, stable_hash
from pipeline.errors import PipelineError
from pipeline.utils.audio import load_audio, resampled, write_audio

LOCAL_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16000
DEFAULT_VOICE_TABLE = LOCAL_DIR / "demo_voices.tsv"
VOICE_TABLE_COLUMNS = ("speaker", "gender", "language", "voices", "license")
DEFAULT_TEXT_DIR = LOCAL_DIR / "demo_texts"
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
NATIVE_F0 = {"fl-rms": 102.0, "fl-slt": 170.0, "fe-ona": 182.0, "fe-nsh": 137.0, "fe-krb": 257.0}  # krb: a boy
# Engines that speak in the person's own pitch, shifted per utterance by a relative factor (no habitual F0 drawn).
RELATIVE_PITCH_ENGINES = ("rhvoice", "pico", "openjtalk")
RHVOICE_VOICE_DIR = Path("/usr/share/RHVoice/voices")
PICO_LANG_DIR = Path("/usr/share/pico/lang")
OPENJTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
HTS_VOICE_DIR = Path("/usr/share/hts-voice")
# Phoneme symbols of espeak-ng that a database spells differently (from the databases' READMEs): Hebrew glottal
# stops become a short silence (the diphones around them were not recorded), Maori vowels use the database's SAMPA.
MBROLA_RENAMES = {
    "hb1": {"?": "_", 'Q"': "_", "X": "x"},
    "hb2": {"?": "_", 'Q"': "_"},
    "nz1": {"a": "A", "a:": "AA", "e:": "ee", "i:": "ii", "o:": "oo", "u:": "uu", "O": "o", "R": "r", 'u"': "u",
            "oI": "o", "aU": "A"},
}
# Rough reading rate (characters per second) to choose how many lines make an utterance of the drawn length.
CHARS_PER_SECOND = {"ja": 7.0, "hi": 10.0, "te": 10.0}


class SynthesisError(PipelineError, RuntimeError):
    """A voice that cannot be used or a synthesiser that failed; the message says which and why."""


# ---------------------------------------------------------------------------------------------------------------
# Voice table and texts
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Speaker:
    """One real person: the voices (engine:name) they can be synthesised with, all of the same person, and the
    language each voice speaks (one for all, or one per voice)."""
    id: str
    gender: str
    language: str
    voices: tuple[str, ...]
    license: str
    languages: tuple[str, ...] = ()

    def language_of(self, voice: str) -> str:
        return self.languages[self.voices.index(voice)] if self.languages else self.language


def read_voice_table(path: str | os.PathLike = DEFAULT_VOICE_TABLE) -> list[Speaker]:
    """Parse the voice table (tab-separated, `#` comments, one header line); errors name file:line."""
    speakers = []
    for lineno, row in read_table(path, VOICE_TABLE_COLUMNS, SynthesisError):
        where = f"{path}:{lineno}"
        voices = tuple(v.strip() for v in row["voices"].split(","))
        languages = tuple(lang.strip() for lang in row["language"].split(","))
        if len(languages) not in (1, len(voices)):
            raise SynthesisError(f"{where}: give one language, or one per voice ({len(voices)})")
        if row["gender"] not in ("m", "f"):
            raise SynthesisError(f"{where}: gender must be m or f, got {row['gender']!r}")
        speakers.append(Speaker(row["speaker"], row["gender"], languages[0], voices, row["license"],
                                languages if len(languages) > 1 else ()))
    return speakers


def read_texts(text_dir: str | os.PathLike, language: str) -> list[str]:
    """The embedded lines of one language (comments and blank lines dropped)."""
    path = Path(text_dir) / f"{language}.txt"
    if not path.is_file():
        raise SynthesisError(f"no embedded text for language {language!r}: {path} is missing")
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
    if shutil.which("RHVoice-test") and RHVOICE_VOICE_DIR.is_dir():
        found.update(f"rhvoice:{d.name}" for d in RHVOICE_VOICE_DIR.iterdir() if (d / "voice.info").is_file())
    if shutil.which("pico2wave") and PICO_LANG_DIR.is_dir():  # <lang>_<speaker>_sg.bin, e.g. en-US_lh0_sg.bin
        found.update(f"pico:{f.name.split('_')[0]}" for f in PICO_LANG_DIR.glob("*_sg.bin"))
    if shutil.which("open_jtalk") and OPENJTALK_DICT.is_dir():
        found.update(f"openjtalk:{f.stem}" for f in HTS_VOICE_DIR.glob("*/*.htsvoice"))
    return found


def unavailable_speakers(speakers: list[Speaker], installed: set[str]) -> list[str]:
    """The people none of whose voices is installed (a refused non-free component, a package left out)."""
    return [spk.id for spk in speakers if not any(v in installed for v in spk.voices)]


def available_speakers(speakers: list[Speaker], installed: set[str]) -> list[Speaker]:
    """Speakers with at least one installed voice, each keeping only its installed voices."""
    out = []
    for spk in speakers:
        voices = tuple(v for v in spk.voices if v in installed)
        if voices:
            languages = tuple(spk.language_of(v) for v in voices) if spk.languages else ()
            out.append(Speaker(spk.id, spk.gender, (languages or (spk.language,))[0], voices, spk.license, languages))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Planning: what each utterance says and how. Randomness comes from one independent stream per (seed, speaker,
# utterance, purpose) (pipeline/augment/seeding.py), so results do not depend on --nj.
# ---------------------------------------------------------------------------------------------------------------
def habitual_f0(speaker: Speaker) -> float:
    """A fixed speaking pitch for the person, in their gender's range (diphone databases are monotone)."""
    if speaker.id in NATIVE_F0:
        return NATIVE_F0[speaker.id]
    lo, hi = HABITUAL_F0[speaker.gender]
    return lo + (hi - lo) * (stable_hash("f0:" + speaker.id) % 10007) / 10006


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
    texts = {lang: read_texts(text_dir, lang) for lang in (speaker.languages or (speaker.language,))}
    plans = []
    for index in range(n_utts):
        rng = rng_for(seed, speaker.id, index, "plan")
        voice = speaker.voices[int(rng.integers(len(speaker.voices)))]
        language = speaker.language_of(voice)
        lines, cps = texts[language], CHARS_PER_SECOND.get(language, 13.0)
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
        relative = voice.split(":", 1)[0] in RELATIVE_PITCH_ENGINES
        plans.append(UttPlan(
            utt=f"{speaker.id}-{index + 1:04d}", speaker=speaker.id, voice=voice, language=language,
            text=" ".join(chosen), f0_hz=0.0 if relative else habitual_f0(speaker) * pitch_factor,
            pitch_factor=pitch_factor,
            stretch=stretch, lead_s=float(rng.uniform(0.05, 0.35)), tail_s=float(rng.uniform(0.05, 0.35))))
    return plans


# ---------------------------------------------------------------------------------------------------------------
# Synthesis engines (each returns float samples in [-1, 1] and their rate)
# ---------------------------------------------------------------------------------------------------------------
def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise SynthesisError(f"{what} failed (exit {proc.returncode}): "
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
            raise SynthesisError(f"festival {crashed.voice} failed on {crashed.utt} (exit {proc.returncode}) "
                              f"text {crashed.text!r}: {proc.stderr.decode(errors='replace')[-400:]}")
        remaining = missing[1:]
    result = {}
    for utt, path in outs.items():
        result[utt] = load_audio(path)
        path.unlink()
    return result


def synthesize_rhvoice(plans: list[UttPlan], work_dir: Path) -> dict[str, tuple[np.ndarray, int]]:
    """All utterances of one RHVoice voice in one process (start-up costs as much as 5 s of speech), each in its own
    SSML prosody (relative pitch and rate), cut apart again at the pauses nearest the boundaries expected from
    the text lengths. RHVoice ignores SSML breaks, so the cuts fall on the sentence pauses it makes itself."""
    if not plans:
        return {}
    name = plans[0].voice.split(":", 1)[1]
    parts = [f'<prosody pitch="{100 * (p.pitch_factor - 1):+.0f}%" rate="{100 / p.stretch:.0f}%">'
             f'{_xml_text(p.text)}</prosody>' for p in plans]
    ssml, out = work_dir / f"{plans[0].speaker}.{name}.ssml", work_dir / f"{plans[0].speaker}.{name}.wav"
    ssml.write_text("<speak>" + " ".join(parts) + "</speak>", encoding="utf-8")
    proc = _run(["RHVoice-test", "-p", name, "-s", "-i", str(ssml), "-o", str(out)])
    _check(proc, f"RHVoice-test -p {name}")
    audio, rate = load_audio(out)
    weights = np.array([len(p.text) * p.stretch for p in plans], dtype=np.float64)
    pieces = cut_at_pauses(audio, rate, np.cumsum(weights)[:-1] / weights.sum())
    return {p.utt: (piece, rate) for p, piece in zip(plans, pieces)}


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def synthesize_pico(plan: UttPlan, work_dir: Path) -> tuple[np.ndarray, int]:
    """SVOX Pico: pitch and rate as markup in the text (percent of the voice's own)."""
    lang = plan.voice.split(":", 1)[1]
    out = work_dir / f"{plan.utt}.pico.wav"  # pico2wave insists on the .wav ending
    text = (f'<pitch level="{100 * plan.pitch_factor:.0f}"><speed level="{100 / plan.stretch:.0f}">'
            f'{_xml_text(plan.text)}</speed></pitch>')
    _check(_run(["pico2wave", "-l", lang, "-w", str(out), text]), f"pico2wave -l {lang}")
    audio, rate = load_audio(out)
    out.unlink()
    return audio, rate


def synthesize_openjtalk(plan: UttPlan, work_dir: Path) -> tuple[np.ndarray, int]:
    """Open JTalk with an HTS voice: pitch shift in semitones (-fm), speed (-r)."""
    name = plan.voice.split(":", 1)[1]
    voice = next(HTS_VOICE_DIR.glob(f"*/{name}.htsvoice"))
    out = work_dir / f"{plan.utt}.ojt.wav"
    proc = _run(["open_jtalk", "-x", str(OPENJTALK_DICT), "-m", str(voice), "-fm",
                 f"{12 * np.log2(plan.pitch_factor):.2f}", "-r", f"{1 / plan.stretch:.3f}", "-ow", str(out)],
                input=plan.text.encode())
    _check(proc, f"open_jtalk -m {voice.name}")
    audio, rate = load_audio(out)
    out.unlink()
    return audio, rate



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




def synthesize_speaker_job(plans: list[UttPlan], clean_dir: str, text_dir: str, min_dur: float,
                           max_dur: float) -> list[UttPlan]:
    """Speak every planned utterance of one speaker; write clean 16 kHz level-normalised audio."""
    clean_dir_path = Path(clean_dir)
    work_dir = Path(tempfile.mkdtemp(prefix="synth.", dir=clean_dir_path))
    raw: dict[str, tuple[np.ndarray, int]] = {}
    for voice in sorted({p.voice for p in plans if p.voice.split(":", 1)[0] in ("festival", "rhvoice")}):
        batch = [p for p in plans if p.voice == voice]
        raw.update(synthesize_festival(batch, work_dir) if voice.startswith("festival:")
                   else synthesize_rhvoice(batch, work_dir))
    renames = {voice: mbrola_renames(voice.split(":", 1)[1], read_texts(text_dir, plans[0].language), work_dir)
               for voice in {p.voice for p in plans if p.voice.startswith("mbrola:")}}
    for plan in plans:
        if plan.voice.startswith("mbrola:"):
            raw[plan.utt] = synthesize_mbrola(plan, work_dir, renames[plan.voice])
        elif plan.voice.startswith("flite:"):
            raw[plan.utt] = synthesize_flite(plan, work_dir)
        elif plan.voice.startswith("pico:"):
            raw[plan.utt] = synthesize_pico(plan, work_dir)
        elif plan.voice.startswith("openjtalk:"):
            raw[plan.utt] = synthesize_openjtalk(plan, work_dir)
        elif plan.voice.split(":", 1)[0] not in ("festival", "rhvoice"):
            raise SynthesisError(f"unknown engine in voice {plan.voice!r} (expected mbrola:, flite:, festival:, "
                                 f"rhvoice:, pico: or openjtalk:)")
    for plan in plans:
        audio, rate = raw[plan.utt]
        name = plan.voice.split(":", 1)[1]
        if plan.voice in SOX_PITCH_VOICES:
            tempo = 1.0 / plan.stretch if name.endswith("_clunits") else 1.0
            audio = sox_pitch_and_tempo(audio, rate, 1200 * np.log2(plan.pitch_factor), tempo, work_dir, plan.utt)
        if audio.size == 0 or not np.any(audio):
            raise SynthesisError(f"{plan.voice} produced no audio for {plan.utt}: {plan.text!r}")
        audio = fit_duration(compress_pauses(resampled(audio, rate, SAMPLE_RATE)), plan.lead_s, plan.tail_s, min_dur, max_dur)
        plan.wav = str(clean_dir_path / plan.speaker / f"{plan.utt}.wav")
        write_audio(Path(plan.wav), normalise_level(audio))
    shutil.rmtree(work_dir, ignore_errors=True)
    return plans
