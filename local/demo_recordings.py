"""Real recorded speech of single, identifiable people that Debian packages ship, for the embedded demo corpus.

One row of `local/demo_recordings.tsv` is one person. Their clips come from Debian packages fetched with
`apt-get download` and unpacked with `dpkg -x` into a cache (`fetch_packages`); the row's `select` rule says
which files of those packages are that person (`speaker_clips`). `recorded_speaker_job` turns a person's clips
into utterances of the corpus's length range: short clips (single words, IVR prompts) are joined with short
pauses, long ones (game dialogue) are cut at quiet points, and no second of speech is used twice.

`select` rules, `KIND key=value ...` (paths are those of the Debian packages):
  fillets lang=LL font=FONT          usr/share/games/fillets-ng/sound/**/LL/ID.ogg whose dialog ID has FONT, and no
                                     other font, in script/**/*dialogs_en.lua (font_small: small fish, font_big: big)
  tuxpaint lang=LL [exclude=A,B/C]   usr/share/tuxpaint/stamps/**/*_desc_LL.ogg outside the excluded subfolders
  uqm folders=A[,B]                  3dovoice/A/*.ogg of the unzipped usr/share/games/uqm/content/addons/*.uqm
  asterisk folders=A[,B]             usr/share/asterisk/sounds/A/**/*.g722, except A/silence/
Whatever the rule, empty files are dropped, and of byte-identical files only the first (in package, path order).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import os
import re
import shlex
import shutil
import subprocess
import time
import zipfile
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from local.demo.table import read_table
from pipeline.augment.seeding import rng_for
from pipeline.errors import PipelineError
from pipeline.utils.atomic import swap_in_directory
from pipeline.utils.audio import audio_info, load_audio, resampled, write_audio
from pipeline.utils.log import get_logger

LOCAL_DIR = Path(__file__).resolve().parent
DEFAULT_RECORDING_TABLE = LOCAL_DIR / "demo_recordings.tsv"
TABLE_COLUMNS = ("speaker", "gender", "language", "packages", "select", "licence", "note")
SAMPLE_RATE = 16000

# Overrides of the two commands fetch_packages runs (a command line each), for tests and unusual systems.
APT_GET_ENV = "DEMO_RECORDINGS_APT_GET"
DPKG_ENV = "DEMO_RECORDINGS_DPKG"
EXTRACTED_MARKER = ".extracted"   # written last into a package's tree: its content names the .deb it came from
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")

FILLETS_DIR = "usr/share/games/fillets-ng"
TUX_STAMPS_DIR = "usr/share/tuxpaint/stamps"
UQM_ADDONS_DIR = "usr/share/games/uqm/content/addons"
ASTERISK_SOUNDS_DIR = "usr/share/asterisk/sounds"
DIALOG_ID = re.compile(r'dialogId\(\s*"([^"]+)"\s*,\s*"([^"]*)"')

# Raw G.722 at 64 kbit/s: one byte holds two 16 kHz samples.
G722_RATE = 16000
G722_BYTES_PER_SECOND = 8000

# Utterance making, in frames of 10 ms. A clip's speech is where its energy (over 50 ms) passes a floor 10 dB
# above its quietest tenth of frames (the background), kept between 40 dB (the floor the corpus's pause
# compression uses) and 25 dB under its loudest frame. A clip whose loudest frame is below -60 dBFS is silence.
FRAME = SAMPLE_RATE // 100
SMOOTHING_FRAMES = 5
SPEECH_FLOOR_DB = 40.0
NOISE_MARGIN_DB = 10.0
MAX_FLOOR_DB = 25.0
SILENT_CLIP_DBFS = -60.0
EDGE_MARGIN_S = 0.02          # kept around the speech when trimming, so onsets and releases survive
MIN_PIECE_S = 0.2             # shorter clips, and leftovers of cut ones, are dropped
MIN_UTTERANCE_S = 1.0         # room for the padding and one piece
PAUSE_RANGE_S = (0.1, 0.3)    # between joined clips
PAD_RANGE_S = (0.05, 0.35)    # silence before and after an utterance, as the synthesised utterances have
CUT_DISTANCE_DB_PER_S = 3.0   # a cut point this much quieter is worth one second further from the drawn length
FADE_S = 0.005
PEAK_LIMIT = 0.97
DECODED_CLIPS_KEPT = 8        # decoded clips cached per job (a cut clip's remainder comes back later)


class RecordingError(PipelineError):
    """The recording table or a package tree cannot be used; the message says which file and what to do."""


# ---------------------------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedSpeaker:
    """One recorded person. `language` is their first (or only) language, `languages` all they speak."""
    id: str
    gender: str
    language: str
    packages: tuple[str, ...]
    select: str
    licence: str
    note: str
    languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.languages:
            object.__setattr__(self, "languages", (self.language,))


def parse_select(rule: str) -> tuple[str, dict[str, str]]:
    """`KIND key=value ...` -> (kind, {key: value}); RecordingError for an unknown kind or key, or a missing key."""
    words = rule.split()
    if not words or words[0] not in SELECTORS:
        raise RecordingError(f"select rule {rule!r}: the kind must be one of {', '.join(sorted(SELECTORS))}")
    kind, args = words[0], {}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not value:
            raise RecordingError(f"select rule {rule!r}: {word!r} is not key=value")
        args[key] = value
    required, optional = SELECTOR_KEYS[kind]
    if set(required) - set(args) or set(args) - set(required) - set(optional):
        raise RecordingError(f"select rule {rule!r}: {kind} takes {' '.join(k + '=' for k in required)}"
                             + (f" and optionally {' '.join(k + '=' for k in optional)}" if optional else ""))
    return kind, args


def read_recording_table(path: str | os.PathLike = DEFAULT_RECORDING_TABLE) -> list[RecordedSpeaker]:
    """Parse the recording table (tab-separated, `#` comments, one header line); errors name file:line."""
    speakers, seen = [], {}
    for lineno, row in read_table(path, TABLE_COLUMNS, RecordingError):
        where = f"{path}:{lineno}"
        if row["speaker"] in seen:
            raise RecordingError(f"{where}: speaker {row['speaker']!r} is already on line {seen[row['speaker']]}")
        seen[row["speaker"]] = lineno
        if row["gender"] not in ("m", "f"):
            raise RecordingError(f"{where}: gender must be m or f, got {row['gender']!r}")
        languages = tuple(code.strip() for code in row["language"].split(","))
        if not all(re.fullmatch(r"[a-z]{2}", code) for code in languages):
            raise RecordingError(f"{where}: language must be ISO 639-1 codes, comma-separated, not {row['language']!r}")
        packages = tuple(p.strip() for p in row["packages"].split(",") if p.strip())
        bad = [p for p in packages if not PACKAGE_NAME.fullmatch(p)]
        if not packages or bad:
            raise RecordingError(f"{where}: packages must be Debian package names, got {row['packages']!r}")
        try:
            parse_select(row["select"])
        except RecordingError as err:
            raise RecordingError(f"{where}: {err}") from err
        speakers.append(RecordedSpeaker(row["speaker"], row["gender"], languages[0], packages, row["select"],
                                        row["licence"], row["note"], languages))
    return speakers


# ---------------------------------------------------------------------------------------------------------------
# Packages: apt-get download + dpkg -x into a cache; nothing is ever fetched from anywhere but apt
# ---------------------------------------------------------------------------------------------------------------
class _Unavailable(Exception):
    """A package that cannot be had; the argument says why."""


def _command(given: str | None, env: str, default: str) -> list[str]:
    return shlex.split(given or os.environ.get(env) or default)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, check=False, **kwargs)
    except OSError as err:   # the command itself is missing
        raise _Unavailable(f"cannot run {cmd[0]}: {err}") from err


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit {proc.returncode}"


def _cached_deb(debs_dir: Path, package: str) -> Path | None:
    debs = sorted(debs_dir.glob(f"{package}_*.deb"))   # names never hold "_", so this is that package only
    return debs[-1] if debs else None


def _download(package: str, debs_dir: Path, apt_get: list[str]) -> Path:
    # apt-get writes into its working directory; a private one keeps a half download out of debs/.
    for stale in debs_dir.glob(f".download.{package}.*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = debs_dir / f".download.{package}.{os.getpid()}"
    work.mkdir(parents=True)
    try:
        proc = _run(apt_get + ["download", package], cwd=work)
        found = sorted(work.glob(f"{package}_*.deb"))
        if proc.returncode != 0 or not found:
            raise _Unavailable(f"apt-get download failed: {_last_line(proc)}")
        os.replace(found[-1], debs_dir / found[-1].name)
        return debs_dir / found[-1].name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _unzip_uqm_addons(tree: Path) -> None:
    """The Ur-Quan Masters ships its content as zips named *.uqm: unpack each beside itself (name without .uqm)."""
    for archive in sorted(tree.rglob("*.uqm")):
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(archive.with_suffix(""))   # extractall drops absolute and ".." member paths


def _extract(deb: Path, final: Path, dpkg: list[str]) -> None:
    """Unpack into a private directory, mark it complete, then rename it into place: a crash at any point leaves
    either the old state or a `.partial` directory that nothing trusts and the next run removes (so one cache
    serves one build at a time)."""
    for stale in final.parent.glob(f".{final.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = final.parent / f".{final.name}.partial-{os.getpid()}"
    work.mkdir(parents=True)
    try:
        proc = _run(dpkg + ["-x", str(deb), str(work)])
        if proc.returncode != 0:
            raise _Unavailable(f"dpkg -x {deb.name} failed: {_last_line(proc)} (delete {deb} if it is corrupt)")
        _unzip_uqm_addons(work)
        (work / EXTRACTED_MARKER).write_text(deb.name + "\n")
        swap_in_directory(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _is_extracted(tree: Path, deb: Path) -> bool:
    marker = tree / EXTRACTED_MARKER
    return marker.is_file() and marker.read_text().strip() == deb.name


def fetch_packages(packages: Iterable[str], cache_dir: str | os.PathLike, log: logging.Logger, *,
                   apt_get: str | None = None, dpkg: str | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """Download (`apt-get download`, into `<cache>/debs/`) and unpack (`dpkg -x`, into `<cache>/root/<package>/`)
    each package, reusing what the cache holds. Returns (package -> unpacked root, package -> why it is missing):
    a package apt cannot provide (not in the sources, non-free not enabled, offline) is reported, not raised.
    Needs no root. `apt_get` and `dpkg` (or $DEMO_RECORDINGS_APT_GET, $DEMO_RECORDINGS_DPKG) replace the commands.
    """
    cache_dir = Path(cache_dir)
    debs_dir, roots_dir = cache_dir / "debs", cache_dir / "root"
    debs_dir.mkdir(parents=True, exist_ok=True)
    roots_dir.mkdir(parents=True, exist_ok=True)
    apt_cmd, dpkg_cmd = _command(apt_get, APT_GET_ENV, "apt-get"), _command(dpkg, DPKG_ENV, "dpkg")
    roots: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for package in dict.fromkeys(packages):
        started = time.time()
        try:
            if not PACKAGE_NAME.fullmatch(package):
                raise _Unavailable("not a Debian package name")
            deb = _cached_deb(debs_dir, package)
            if deb is None:
                deb = _download(package, debs_dir, apt_cmd)
                log.info("%s: downloaded %s (%.1f MB) in %.1f s", package, deb.name, deb.stat().st_size / 1e6,
                         time.time() - started)
            tree = roots_dir / package
            if not _is_extracted(tree, deb):
                started = time.time()
                _extract(deb, tree, dpkg_cmd)
                log.info("%s: unpacked into %s in %.1f s", package, tree, time.time() - started)
            roots[package] = tree
        except _Unavailable as err:
            missing[package] = str(err)
            log.warning("%s: not available: %s", package, err)
    return roots, missing


# ---------------------------------------------------------------------------------------------------------------
# Which files are one person
# ---------------------------------------------------------------------------------------------------------------
def _fillets_clips(args: dict[str, str], roots: list[Path]) -> list[Path]:
    fonts: dict[str, set[str]] = defaultdict(set)
    # Levels keep theirs in script/<level>/dialogs_en.lua, the lines shared by levels in script/share/*_dialogs_en.lua.
    scripts = [lua for root in roots for lua in sorted(root.glob(f"{FILLETS_DIR}/script/**/*dialogs_en.lua"))]
    if not scripts:
        raise RecordingError(f"no {FILLETS_DIR}/script/**/*dialogs_en.lua under {', '.join(map(str, roots))}: "
                             f"the fillets rule labels clips by the game's scripts, add fillets-ng-data to packages")
    for lua in scripts:
        for dialog, font in DIALOG_ID.findall(lua.read_text(encoding="utf-8", errors="replace")):
            fonts[dialog].add(font)
    # An id spoken in two fonts (rand-*) is not one character's line.
    wanted = {dialog for dialog, used in fonts.items() if used == {args["font"]}}
    return [p for root in roots for p in root.glob(f"{FILLETS_DIR}/sound/**/{args['lang']}/*.ogg")
            if p.stem in wanted]


def _tuxpaint_clips(args: dict[str, str], roots: list[Path]) -> list[Path]:
    excluded = tuple(e.strip("/") + "/" for e in args.get("exclude", "").split(",") if e.strip("/"))
    found = []
    for root in roots:
        base = root / TUX_STAMPS_DIR
        found += [p for p in base.rglob(f"*_desc_{args['lang']}.ogg")
                  if not p.relative_to(base).as_posix().startswith(excluded)]
    return found


def _uqm_clips(args: dict[str, str], roots: list[Path]) -> list[Path]:
    return [p for root in roots for folder in args["folders"].split(",")
            for p in root.glob(f"{UQM_ADDONS_DIR}/*/3dovoice/{folder}/*.ogg")]


def _asterisk_clips(args: dict[str, str], roots: list[Path]) -> list[Path]:
    found = []
    for root in roots:
        for folder in args["folders"].split(","):
            base = root / ASTERISK_SOUNDS_DIR / folder
            found += [p for p in base.rglob("*.g722") if p.relative_to(base).parts[0] != "silence"]
    return found


SELECTORS: dict[str, Callable[[dict[str, str], list[Path]], list[Path]]] = {
    "fillets": _fillets_clips, "tuxpaint": _tuxpaint_clips, "uqm": _uqm_clips, "asterisk": _asterisk_clips}
SELECTOR_KEYS = {"fillets": (("lang", "font"), ()), "tuxpaint": (("lang",), ("exclude",)), "uqm": (("folders",), ()),
                 "asterisk": (("folders",), ())}


def _package_roots(speaker: RecordedSpeaker, roots: dict[str, Path] | dict[str, str]) -> dict[str, Path]:
    absent = [p for p in speaker.packages if p not in roots]
    if absent:
        raise RecordingError(f"{speaker.id}: package(s) {', '.join(absent)} not fetched; fetch_packages reports why")
    return {p: Path(roots[p]) for p in speaker.packages}


def _relative(path: Path, roots: dict[str, Path]) -> tuple[str, str]:
    """(package, path inside the package) of a clip: its place independent of where the cache is."""
    for package, root in roots.items():
        if path.is_relative_to(root):
            return package, path.relative_to(root).as_posix()
    raise RecordingError(f"{path} lies in none of the package roots")


def _without_duplicates(paths: list[Path]) -> list[Path]:
    """Drop empty files and byte-identical copies (the first one stays); only files of equal size are hashed."""
    by_size: dict[int, list[Path]] = defaultdict(list)
    for p in paths:
        by_size[p.stat().st_size].append(p)
    dropped = set(by_size.pop(0, []))
    for same_size in by_size.values():
        seen = set()
        for p in same_size if len(same_size) > 1 else []:
            digest = hashlib.sha1(p.read_bytes()).digest()
            if digest in seen:
                dropped.add(p)
            seen.add(digest)
    return [p for p in paths if p not in dropped]


def speaker_clips(speaker: RecordedSpeaker, roots: dict[str, Path] | dict[str, str]) -> list[Path]:
    """The clips of this one person per their `select` rule, in (package, path) order, without empty files and
    byte-identical duplicates. RecordingError if one of their packages is not among `roots`, or the rule finds
    nothing."""
    package_roots = _package_roots(speaker, roots)
    kind, args = parse_select(speaker.select)
    found = {p for p in SELECTORS[kind](args, list(package_roots.values())) if p.is_file()}
    clips = _without_duplicates(sorted(found, key=lambda p: _relative(p, package_roots)))
    if not clips:
        raise RecordingError(f"{speaker.id}: select rule {speaker.select!r} finds no clip in "
                             f"{', '.join(map(str, package_roots.values()))}: has the packages' layout changed?")
    return clips


def _header_seconds(path: Path) -> float:
    if path.suffix == ".g722":
        return path.stat().st_size / G722_BYTES_PER_SECOND
    info = audio_info(path)
    return info.frames / info.samplerate


def available_seconds(speaker: RecordedSpeaker, roots: dict[str, Path] | dict[str, str]) -> float:
    """Seconds of audio in the person's clips, from the file headers (silence at the clip edges included)."""
    return float(sum(_header_seconds(p) for p in speaker_clips(speaker, roots)))


# ---------------------------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp")
    if name is None:
        raise RecordingError("libspandsp is not installed, and the Asterisk prompts are G.722, which it decodes: "
                             "install the Debian package libspandsp2 (apt-get install libspandsp2)")
    lib = ctypes.CDLL(name)
    lib.g722_decode_init.restype = ctypes.c_void_p
    lib.g722_decode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_decode.restype = ctypes.c_int
    lib.g722_decode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_char_p, ctypes.c_int]
    lib.g722_decode_free.argtypes = [ctypes.c_void_p]
    return lib


def _decode_g722(path: Path) -> np.ndarray:
    lib = _spandsp()
    data = path.read_bytes()
    out = np.zeros(2 * len(data) + 16, dtype=np.int16)
    state = lib.g722_decode_init(None, 64000, 0)
    if not state:
        raise RecordingError(f"libspandsp could not start a G.722 decoder for {path}")
    try:
        n = lib.g722_decode(state, out.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), data, len(data))
    finally:
        lib.g722_decode_free(state)
    return out[:n] / 32768.0


def decode_clip(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float64 samples in [-1, 1] and their rate: raw G.722 (*.g722, 64 kbit/s, 16 kHz) through libspandsp,
    anything else (Ogg Vorbis, wav) through soundfile; channels are averaged."""
    path = Path(path)
    if path.suffix == ".g722":
        return _decode_g722(path), G722_RATE
    return load_audio(path)


# ---------------------------------------------------------------------------------------------------------------
# Utterances
# ---------------------------------------------------------------------------------------------------------------
def _frame_energy(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // FRAME
    return np.mean(audio[:n * FRAME].reshape(n, FRAME) ** 2, axis=1)


def _smoothed_energy(audio: np.ndarray) -> np.ndarray:
    """Frame energy averaged over 50 ms: single 10 ms frames of background noise vary by +-5 dB."""
    energy = _frame_energy(audio)
    if len(energy) < SMOOTHING_FRAMES:
        return energy
    return np.convolve(energy, np.ones(SMOOTHING_FRAMES) / SMOOTHING_FRAMES, mode="same")


@dataclass
class _Speech:
    """One decoded clip at 16 kHz, DC removed, leading and trailing silence trimmed."""
    samples: np.ndarray
    floor: float    # smoothed frame energy under which the clip is pause or background


def _speech_span(samples: np.ndarray, floor: float) -> tuple[int, int]:
    """First and last sample of the frames above `floor`, widened by EDGE_MARGIN_S; (0, 0) if there are none."""
    loud = np.flatnonzero(_smoothed_energy(samples) > floor)
    if loud.size == 0:
        return 0, 0
    margin = int(EDGE_MARGIN_S * SAMPLE_RATE)
    return max(0, loud[0] * FRAME - margin), min(len(samples), (loud[-1] + 1) * FRAME + margin)


def _clip_speech(path: Path) -> _Speech:
    audio, rate = decode_clip(path)
    audio = resampled(audio, rate, SAMPLE_RATE)
    audio = audio - audio.mean() if audio.size else audio
    energy_db = 10 * np.log10(_smoothed_energy(audio) + 1e-20)
    if energy_db.size == 0 or energy_db.max() <= SILENT_CLIP_DBFS:
        return _Speech(np.zeros(0), 0.0)
    # Above the clip's background noise (a clip with a noise floor 30 dB down has no frame 40 dB down), but never
    # so high that the quieter speech sounds go.
    top = float(energy_db.max())
    floor_db = np.clip(np.percentile(energy_db, 10) + NOISE_MARGIN_DB, top - SPEECH_FLOOR_DB, top - MAX_FLOOR_DB)
    floor = 10 ** (floor_db / 10)
    start, end = _speech_span(audio, floor)
    return _Speech(audio[start:end], floor)


def _quiet_cut(samples: np.ndarray, lo: int, hi: int, want: int) -> int:
    """A cut point in [lo, hi] samples: the quietest 50 ms, traded against distance from `want`."""
    energy_db = 10 * np.log10(_smoothed_energy(samples) + 1e-12)
    first, last = -(-lo // FRAME), min(hi // FRAME, len(energy_db) - 1)
    if last < first:
        return hi
    frames = np.arange(first, last + 1)
    cost = energy_db[frames] + CUT_DISTANCE_DB_PER_S * np.abs(frames * FRAME - want) / SAMPLE_RATE
    return int(frames[np.argmin(cost)] * FRAME)


def _fade(piece: np.ndarray) -> np.ndarray:
    n = min(int(FADE_S * SAMPLE_RATE), len(piece) // 2)
    if n == 0:
        return piece
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    out = piece.copy()
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


class _ClipQueue:
    """A person's clips (of one language) in a random order. A clip cut for one utterance goes to the back with
    its remainder, so every sample is handed out once at most. Decoding is lazy: a request for 60 utterances
    decodes only the clips they need."""

    def __init__(self, clips: list[Path], names: list[str], order: np.ndarray):
        self.clips, self.names = clips, names
        self.entries: deque[tuple[int, int]] = deque((int(i), 0) for i in order)   # (clip, first unused sample)
        self._decoded: dict[int, _Speech] = {}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _speech(self, clip: int) -> _Speech:
        if clip not in self._decoded:
            if len(self._decoded) >= DECODED_CLIPS_KEPT:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[clip] = _clip_speech(self.clips[clip])
        return self._decoded[clip]

    def head(self) -> tuple[int, np.ndarray]:
        """The next unused speech, its silent edges trimmed (silent clips and leftovers shorter than MIN_PIECE_S
        are dropped); (-1, empty) when nothing is left."""
        while self.entries:
            clip, start = self.entries[0]
            speech = self._speech(clip)
            begin, end = _speech_span(speech.samples[start:], speech.floor)
            if end - begin >= MIN_PIECE_S * SAMPLE_RATE:
                self.entries[0] = (clip, start + begin)
                return clip, speech.samples[start + begin:start + end]
            self.entries.popleft()
        return -1, np.zeros(0)

    def take(self, length: int | None = None) -> None:
        """Use up the head whole, or only its first `length` samples (the rest goes to the back)."""
        clip, start = self.entries.popleft()
        if length is not None:
            self.entries.append((clip, start + length))


def _next_utterance(queue: _ClipQueue, rng: np.random.Generator, min_len: int,
                    max_len: int) -> tuple[np.ndarray, list[int]] | None:
    """Join whole clips with short pauses up to a drawn length in [min_len, max_len] samples. A clip too long for
    the room left, when the utterance is still too short, is cut at a quiet point and ends it. None if the clips
    ran out first (what was taken is not used again either)."""
    lead, tail = (int(s * SAMPLE_RATE) for s in rng.uniform(*PAD_RANGE_S, size=2))
    shortest_piece = int(MIN_PIECE_S * SAMPLE_RATE)
    hi = max_len - lead - tail
    lo = max(min_len - lead - tail, shortest_piece)
    want = int(rng.uniform(min_len, max_len)) - lead - tail
    parts: list[np.ndarray] = [np.zeros(lead)]
    used: list[int] = []
    total = 0
    while total < want:
        clip, speech = queue.head()
        if clip < 0:
            break
        gap = int(rng.uniform(*PAUSE_RANGE_S) * SAMPLE_RATE) if used else 0
        room = hi - total - gap
        cut = None
        if len(speech) > room:
            need = max(lo - total - gap, shortest_piece)
            if total >= lo or need > room:
                break
            cut = _quiet_cut(speech, need, room, want - total - gap)
            speech = speech[:cut]
        queue.take(cut)
        parts += [np.zeros(gap), _fade(speech)]
        used.append(clip)
        total += gap + len(speech)
        if cut is not None:   # its remainder is at the back: an utterance never holds a clip twice
            break
    if total < lo:
        return None
    parts.append(np.zeros(tail + max(0, min_len - lead - tail - total)))
    return np.concatenate(parts), used


def _by_language(speaker: RecordedSpeaker, names: list[str]) -> dict[str, list[int]]:
    """Clip indices per language: all in the person's language, or, for a person with several, the language that
    a folder of the clip's path starts with (Asterisk's en_US_f_Allison/ and es_MX_f_Allison/)."""
    if len(speaker.languages) <= 1:
        return {speaker.language: list(range(len(names)))}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        folders = name.split("/")[:-1]
        matches = [lang for lang in speaker.languages if any(f == lang or f.startswith(lang + "_") for f in folders)]
        if len(matches) != 1:
            raise RecordingError(f"{speaker.id}: cannot tell which of {', '.join(speaker.languages)} the clip "
                                 f"{name} is in (no folder named LL or LL_*)")
        groups[matches[0]].append(i)
    return dict(groups)


def recorded_speaker_job(speaker: RecordedSpeaker, roots: dict[str, str], n_utts: int, seed: int, min_dur: float,
                         max_dur: float, clean_dir: str) -> list[dict]:
    """Up to `n_utts` utterances of `min_dur`..`max_dur` s of one person, written as 16 kHz 16-bit mono wavs to
    `<clean_dir>/<speaker>/<utt>.wav` (peak-limited, not level-normalised). No second of speech is used twice:
    a person with too little speech gets fewer utterances (logged as a warning). An utterance holds one language
    (a person who speaks two has their clips kept apart). Deterministic for (seed, speaker) in any process.

    Returns one dict per utterance: utt, speaker, wav, seconds, language, and clips (its source clips, as paths
    inside their packages, comma-separated).
    """
    if not MIN_UTTERANCE_S <= min_dur <= max_dur:
        raise ValueError(f"need {MIN_UTTERANCE_S} <= min_dur <= max_dur, got {min_dur} and {max_dur}")
    package_roots = _package_roots(speaker, roots)
    clips = speaker_clips(speaker, package_roots)
    names = [_relative(p, package_roots)[1] for p in clips]
    queues = {}
    for language, members in _by_language(speaker, names).items():
        order = rng_for(seed, speaker.id, "order", language).permutation(len(members))
        queues[language] = _ClipQueue([clips[i] for i in members], [names[i] for i in members], order)
    min_len, max_len = int(np.ceil(min_dur * SAMPLE_RATE)), int(max_dur * SAMPLE_RATE)
    out_dir = Path(clean_dir) / speaker.id
    results: list[dict] = []
    attempt = 0
    while len(results) < n_utts and any(queues.values()):
        rng = rng_for(seed, speaker.id, attempt, "utterance")
        attempt += 1
        languages = [lang for lang in sorted(queues) if queues[lang]]
        left = np.array([len(queues[lang].entries) for lang in languages], dtype=float)
        language = languages[int(rng.choice(len(languages), p=left / left.sum()))]
        made = _next_utterance(queues[language], rng, min_len, max_len)
        if made is None:
            continue
        audio, used = made
        peak = float(np.max(np.abs(audio)))
        if peak > PEAK_LIMIT:   # resampling a clipped recording overshoots full scale
            audio = audio * (PEAK_LIMIT / peak)
        utt = f"{speaker.id}-{len(results) + 1:04d}"
        wav = out_dir / f"{utt}.wav"
        write_audio(wav, audio, SAMPLE_RATE)
        results.append(dict(utt=utt, speaker=speaker.id, wav=str(wav), seconds=len(audio) / SAMPLE_RATE,
                            language=language, clips=",".join(queues[language].names[i] for i in used)))
    if len(results) < n_utts:
        get_logger("demo_recordings").warning(
            "%s: only %d of %d utterances: its %d clips hold too little speech for more without using any of "
            "it twice", speaker.id, len(results), n_utts, len(clips))
    return results
