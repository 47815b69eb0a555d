"""The synthesis engines of the demo corpus (each returns float samples in [-1, 1] and their rate), and
`synthesize_speaker_job`, which speaks a speaker's planned utterances (tts_plan) with a random pitch and rate each and
writes the clean 16 kHz audio that the corpus build then degrades (room, noise, channel) like the recorded speech.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

from local.demo.dsp import SAMPLE_RATE, compress_pauses, cut_at_pauses, fit_duration, normalise_level
from local.demo.tts_plan import UttPlan
from local.demo.tts_voices import HTS_VOICE_DIR, MBROLA_DIR, OPENJTALK_DICT, SynthesisError, read_texts, run_captured
from pipeline.utils.audio import load_audio, resampled, write_audio

# Festival's Latin-script front ends read 8-bit text; given UTF-8 they spell out the bytes.
FESTIVAL_ENCODING = {"cs": "iso-8859-2", "fi": "latin-1", "it": "latin-1", "es": "latin-1", "ca": "latin-1",
                     "en": "ascii"}
# Voices whose engine ignores our pitch (and, for clunits, rate) settings are shifted with sox afterwards; sox also
# shifts formants, so their speakers keep their measured native F0 (median over 6 lines) as habitual F0.
SOX_PITCH_VOICES = {"flite:rms", "festival:cmu_us_slt_arctic_hts", "festival:upc_ca_ona_hts",
                    "festival:msu_ru_nsh_clunits"}
# Phoneme symbols of espeak-ng that a database spells differently (from the databases' READMEs): Hebrew glottal
# stops become a short silence (the diphones around them were not recorded), Maori vowels use the database's SAMPA.
MBROLA_RENAMES = {
    "hb1": {"?": "_", 'Q"': "_", "X": "x"},
    "hb2": {"?": "_", 'Q"': "_"},
    "nz1": {"a": "A", "a:": "AA", "e:": "ee", "i:": "ii", "o:": "oo", "u:": "uu", "O": "o", "R": "r", 'u"': "u",
            "oI": "o", "aU": "A"},
}


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise SynthesisError(f"{what} failed (exit {proc.returncode}): "
                          f"{proc.stderr.decode(errors='replace').strip()[-400:]}")


def _read_and_delete(path: Path) -> tuple[np.ndarray, int]:
    """A synthesiser's output file, read, then deleted: the work directory holds only what is being made."""
    audio, rate = load_audio(path)
    path.unlink()
    return audio, rate


def _espeak_pho(name: str, text: str) -> str:
    proc = run_captured(["espeak-ng", "-v", f"mb-{name}", "-q", "--pho", text])
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
    proc = run_captured(["mbrola", "-e", str(MBROLA_DIR / name / name), "-", str(out)], input=pho.encode())
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
    proc = run_captured(["mbrola", "-e", "-f", f"{ratio:.4f}", "-t", f"{plan.stretch:.4f}", database, "-", str(out)],
                        input=pho.encode())
    if proc.returncode != 0 or not out.is_file():
        # Some databases panic on pitches far from their own; their default contour still varies by rate.
        proc = run_captured(["mbrola", "-e", "-t", f"{plan.stretch:.4f}", database, "-", str(out)], input=pho.encode())
        _check(proc, f"mbrola {name}")
    return _read_and_delete(out)


def synthesize_flite(plan: UttPlan, work_dir: Path) -> tuple[np.ndarray, int]:
    name = plan.voice.split(":", 1)[1]
    out = work_dir / f"{plan.utt}.flite.wav"
    proc = run_captured(["flite", "-voice", name, "--setf", f"int_f0_target_mean={plan.f0_hz:.1f}",
                         "--setf", f"duration_stretch={plan.stretch:.4f}", "-t", plan.text, "-o", str(out)])
    _check(proc, f"flite -voice {name}")
    return _read_and_delete(out)


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
    proc = run_captured(["festival", "--batch", str(script)], cwd=work_dir, timeout=600)
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
    return {utt: _read_and_delete(path) for utt, path in outs.items()}


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
    proc = run_captured(["RHVoice-test", "-p", name, "-s", "-i", str(ssml), "-o", str(out)])
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
    _check(run_captured(["pico2wave", "-l", lang, "-w", str(out), text]), f"pico2wave -l {lang}")
    return _read_and_delete(out)


def synthesize_openjtalk(plan: UttPlan, work_dir: Path) -> tuple[np.ndarray, int]:
    """Open JTalk with an HTS voice: pitch shift in semitones (-fm), speed (-r)."""
    name = plan.voice.split(":", 1)[1]
    voice = next(HTS_VOICE_DIR.glob(f"*/{name}.htsvoice"))
    out = work_dir / f"{plan.utt}.ojt.wav"
    proc = run_captured(["open_jtalk", "-x", str(OPENJTALK_DICT), "-m", str(voice), "-fm",
                         f"{12 * np.log2(plan.pitch_factor):.2f}", "-r", f"{1 / plan.stretch:.3f}", "-ow", str(out)],
                        input=plan.text.encode())
    _check(proc, f"open_jtalk -m {voice.name}")
    return _read_and_delete(out)


def sox_pitch_and_tempo(audio: np.ndarray, rate: int, cents: float, tempo: float, work_dir: Path,
                        tag: str) -> np.ndarray:
    """Pitch shift (and tempo change) for voices whose engine has no control of its own."""
    src, dst = work_dir / f"{tag}.sox-in.wav", work_dir / f"{tag}.sox-out.wav"
    soundfile.write(str(src), audio, rate, subtype="FLOAT")
    effects = ["pitch", f"{cents:.1f}"] + (["tempo", "-s", f"{tempo:.4f}"] if abs(tempo - 1) > 1e-3 else [])
    proc = run_captured(["sox", str(src), str(dst)] + effects)
    _check(proc, "sox pitch")
    src.unlink()
    return _read_and_delete(dst)[0]


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
        audio = fit_duration(compress_pauses(resampled(audio, rate, SAMPLE_RATE)), plan.lead_s, plan.tail_s, min_dur,
                             max_dur)
        plan.wav = str(clean_dir_path / plan.speaker / f"{plan.utt}.wav")
        write_audio(Path(plan.wav), normalise_level(audio))
    shutil.rmtree(work_dir, ignore_errors=True)
    return plans
