"""The synthesised people of the demo corpus: one-person TTS voices that Debian ships, the texts they read, and which
of the voices this machine has.

One row of `local/demo/voices.tsv` is one real person and one speaker: the MBROLA diphone databases (driven by
espeak-ng), the flite and Festival voices, RHVoice's voices, SVOX Pico's six women, and Open JTalk's NITech m001.
Each speaker reads lines of the embedded texts of their language (`local/demo/texts/`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from local.demo.table import read_table
from pipeline.errors import PipelineError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_VOICE_TABLE = PACKAGE_DIR / "voices.tsv"
VOICE_TABLE_COLUMNS = ("speaker", "gender", "language", "voices", "license")
DEFAULT_TEXT_DIR = PACKAGE_DIR / "texts"
MBROLA_DIR = Path("/usr/share/mbrola")
FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")
# Festival voices that need more than their own package to run.
FESTIVAL_VOICE_NEEDS = {"hindi_NSK_diphone": Path("/usr/share/festival/hindi_scm")}
RHVOICE_VOICE_DIR = Path("/usr/share/RHVoice/voices")
PICO_LANG_DIR = Path("/usr/share/pico/lang")
OPENJTALK_DICT = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
HTS_VOICE_DIR = Path("/usr/share/hts-voice")


class SynthesisError(PipelineError, RuntimeError):
    """A voice that cannot be used or a synthesiser that failed; the message says which and why."""


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

def run_captured(cmd: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a synthesiser's command with its output captured; the caller checks the exit status."""
    return subprocess.run(list(cmd), capture_output=True, check=False, **kwargs)


def installed_voices() -> set[str]:
    """The `engine:name` voices that this machine can synthesise now."""
    found: set[str] = set()
    if shutil.which("espeak-ng") and shutil.which("mbrola"):
        listing = run_captured(["espeak-ng", "--voices=mb"]).stdout.decode(errors="replace")
        for name in re.findall(r"\bmb/mb-([a-z]{2}\d)\b", listing):
            if (MBROLA_DIR / name / name).is_file():
                found.add(f"mbrola:{name}")
    if shutil.which("flite"):
        listing = run_captured(["flite", "-lv"]).stdout.decode(errors="replace")
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
