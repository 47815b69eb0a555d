"""What the VoxCeleb1 and VoxCeleb2 preparations share: the official meta CSVs, the corpus tree, durations,
the cleaned VoxCeleb1 trial lists, and the Kaldi data dir they all become.

Formats, as distributed by the VoxCeleb authors (and read by Kaldi's egs/voxceleb and WeSpeaker's recipes):
- `vox1_meta.csv`: tab-separated with a header, `VoxCeleb1 ID<TAB>VGGFace1 ID<TAB>Gender<TAB>Nationality<TAB>Set`,
  e.g. `id10001<TAB>A.J._Buckley<TAB>m<TAB>Ireland<TAB>dev` (nationalities may hold spaces: `New Zealand`).
- `vox2_meta.csv`: comma-separated with a space before each comma, `VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set `, e.g.
  `id00012 ,n000012 ,m ,dev ` (copies in circulation drop the spaces or add a UTF-8 byte-order mark).
- trial lists (`veri_test2.txt`, `list_test_all2.txt`, `list_test_hard2.txt`): `1|0 enroll_path test_path`, paths
  like `id10270/x6uYqmx31kE/00001.wav`, i.e. `<speaker>/<youtube-id>/<segment>.wav`.
Utterance ids are `<speaker>-<youtube-id>-<segment>`, as Kaldi's make_voxceleb1_v2.pl and make_voxceleb2.pl make them.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

import soundfile

# The scripts run as `python local/make_voxceleb1.py`; without path.sh the package is not on the path.
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from pipeline.utils.datadir import DataDir, DataDirError, c_sorted  # noqa: E402
from pipeline.utils.trials import Trials, trials_files  # noqa: E402

# Trial set name (data dir file trials_<name>) -> the cleaned list published with VoxCeleb1.
TRIAL_LISTS = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}
META_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/"
FFMPEG_PIPE = "ffmpeg -v 8 -i {path} -f wav -acodec pcm_s16le -ac 1 -ar 16000 - |"


class VoxCelebError(RuntimeError):
    """The corpus, a meta file or a trial list cannot be used; the message names the file (and line)."""


@dataclass(frozen=True)
class Speaker:
    gender: str  # m or f
    subset: str  # the meta file's Set column: dev or test


@dataclass(frozen=True)
class Utterance:
    spk: str
    path: str  # absolute path of the audio file


# ------------------------------------------------------------------------------------------------ meta files

def _column_key(name: str) -> str:
    # "VoxCeleb2 ID " and "VoxCeleb2ID" (both in circulation) are the same column.
    return re.sub(r"\s+", "", name).lower()


def read_meta(path: str | os.PathLike, id_column: str) -> dict[str, Speaker]:
    """Read vox1_meta.csv (`id_column` "VoxCeleb1 ID") or vox2_meta.csv ("VoxCeleb2 ID"): speaker -> gender, set.

    Tabs or commas are accepted as separators (the header decides), blanks around fields are stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise VoxCelebError(f"{path}: meta file not found; it comes with the corpus ({META_URL}), "
                            f"or pass its location with --meta")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines:
        raise VoxCelebError(f"{path}: empty meta file")
    sep = "\t" if "\t" in lines[0] else ","
    header = [_column_key(h) for h in lines[0].split(sep)]
    wanted = {"id": _column_key(id_column), "gender": "gender", "set": "set"}
    if not set(wanted.values()) <= set(header):
        raise VoxCelebError(f"{path}:1: expected a header with columns {id_column!r}, 'Gender' and 'Set', "
                            f"got {lines[0]!r}; is this the meta file of the right corpus?")
    col = {k: header.index(v) for k, v in wanted.items()}
    speakers: dict[str, Speaker] = {}
    for lineno, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(sep)]
        if len(fields) < len(header):
            raise VoxCelebError(f"{path}:{lineno}: expected {len(header)} fields separated by {sep!r}, "
                                f"got {line!r}")
        spk, gender, subset = fields[col["id"]], fields[col["gender"]].lower(), fields[col["set"]].lower()
        if gender not in ("m", "f"):
            raise VoxCelebError(f"{path}:{lineno}: gender of {spk} is {fields[col['gender']]!r}, expected m or f")
        if spk in speakers:
            raise VoxCelebError(f"{path}:{lineno}: speaker {spk} listed twice")
        speakers[spk] = Speaker(gender, subset)
    return speakers


# ------------------------------------------------------------------------------------------------ corpus tree

def _subdirs(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as entries:
        return [e for e in entries if not e.name.startswith(".") and e.is_dir()]


def find_utterances(audio_dir: Path, extensions: Iterable[str]) -> dict[str, Utterance]:
    """Walk `<audio_dir>/<speaker>/<youtube-id>/<segment>.<ext>` with os.scandir (no audio is opened).

    Returns utterance id `<speaker>-<youtube-id>-<segment>` -> Utterance. When a segment exists with several of
    `extensions` (an m4a converted in place), the earlier extension in `extensions` wins.
    """
    rank = {ext: i for i, ext in enumerate(extensions)}
    utts: dict[str, Utterance] = {}
    chosen: dict[str, int] = {}
    root = os.path.abspath(audio_dir)
    for spk in _subdirs(root):
        for rec in _subdirs(spk.path):
            with os.scandir(rec.path) as files:
                for f in files:
                    stem, ext = os.path.splitext(f.name)
                    if ext not in rank or not f.is_file():
                        continue
                    utt = f"{spk.name}-{rec.name}-{stem}"
                    if any(c.isspace() for c in utt):
                        raise VoxCelebError(f"{f.path}: whitespace in the path cannot go into a Kaldi utterance id")
                    if utt not in utts or rank[ext] < chosen[utt]:
                        utts[utt], chosen[utt] = Utterance(spk.name, f.path), rank[ext]
    return utts


def merge_utterances(parts: Iterable[dict[str, Utterance]]) -> dict[str, Utterance]:
    """Union of the trees of several audio folders (VoxCeleb1's dev/wav and test/wav); an utterance in two is
    an error, since nothing says which copy is right."""
    merged: dict[str, Utterance] = {}
    for part in parts:
        for utt, u in part.items():
            if utt in merged:
                raise VoxCelebError(f"utterance {utt} is in two places: {merged[utt].path} and {u.path}")
            merged[utt] = u
    return merged


def wav_scp_entry(path: str) -> str:
    """A wav.scp value: wav files as they are, anything else decoded on the fly by ffmpeg (as Kaldi's recipes do)."""
    if path.endswith(".wav"):
        return path
    return FFMPEG_PIPE.format(path=shlex.quote(path))


# ------------------------------------------------------------------------------------------------ durations

def wav_duration(path: str) -> float:
    """Seconds of a wav file, from its header only."""
    return soundfile.info(path).duration


def ffprobe_duration(path: str) -> float:
    """Seconds of a compressed file (m4a), from its container through ffprobe (no decoding)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def duration_reader(paths: Iterable[str], logger) -> Callable[[str], float] | None:
    """The reader for these files, or None (and a warning) when m4a files are present and ffprobe is not."""
    if all(p.endswith(".wav") for p in paths):
        return wav_duration
    if shutil.which("ffprobe") is None:
        logger.warning("ffprobe not found: utt2dur is not written and hours are not counted "
                       "(later stages do not need it; install ffmpeg to get it)")
        return None
    logger.info("reading m4a durations with ffprobe, one process a file (--no-utt2dur skips this)")
    return lambda p: wav_duration(p) if p.endswith(".wav") else ffprobe_duration(p)


def utterance_durations(utts: Mapping[str, Utterance], reader: Callable[[str], float], nj: int,
                        logger) -> dict[str, float]:
    """utterance -> seconds, reading `nj` files at a time (headers on network storage are latency bound).

    Unreadable files are dropped from the result and reported, as fix_data_dir.sh drops incomplete entries.
    """
    def probe(utt: str) -> float | None:
        try:
            return reader(utts[utt].path)
        except Exception:  # soundfile and ffprobe raise several types for a corrupt file
            return None

    keys = c_sorted(utts)
    durations: dict[str, float] = {}
    bad: list[str] = []
    step = max(len(keys) // 10, 100000)
    with ThreadPoolExecutor(max(nj, 1)) as pool:
        for i, (utt, seconds) in enumerate(zip(keys, pool.map(probe, keys)), 1):
            if seconds is None or seconds <= 0:
                bad.append(utts[utt].path)
            else:
                durations[utt] = round(seconds, 3)
            if i % step == 0:
                logger.info(f"durations: {i}/{len(keys)} files")
    if bad:
        logger.warning(f"{len(bad)} unreadable or empty audio files left out, e.g. {', '.join(bad[:3])}")
    return durations


# ------------------------------------------------------------------------------------------------ trials

def trial_path_to_utt(path: str) -> str | None:
    """`id10270/x6uYqmx31kE/00001.wav` -> `id10270-x6uYqmx31kE-00001`; None if not three path components."""
    parts = path.split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return "-".join((parts[0], parts[1], os.path.splitext(parts[2])[0]))


def convert_trials(path: str | os.PathLike, known_utts: Iterable[str],
                   skip_missing: bool = False) -> tuple[Trials, int]:
    """Read a VoxCeleb trial list (`1|0 enroll_path test_path`) as Kaldi trials (`enroll test target|nontarget`).

    Returns the trials, in file order, and how many trials were skipped because they name an utterance that is not
    in `known_utts` (only with `skip_missing`; otherwise that is an error naming the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise VoxCelebError(f"{path}: trial list not found; it is published with VoxCeleb1 ({META_URL}meta/), "
                            f"or pass the folder that holds it with --trials-dir")
    known = known_utts if isinstance(known_utts, set) else set(known_utts)
    pairs: list[tuple[str, str, str]] = []
    skipped = 0
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise VoxCelebError(f"{path}:{lineno}: expected '1|0 <speaker>/<youtube-id>/<segment>.wav "
                                    f"<speaker>/<youtube-id>/<segment>.wav', got {line.rstrip()!r}")
            utts = [trial_path_to_utt(p) for p in fields[1:]]
            for p, utt in zip(fields[1:], utts):
                if utt is None:
                    raise VoxCelebError(f"{path}:{lineno}: {p!r} is not <speaker>/<youtube-id>/<segment>.wav")
            missing = [p for p, utt in zip(fields[1:], utts) if utt not in known]
            if missing:
                if skip_missing:
                    skipped += 1
                    continue
                raise VoxCelebError(f"{path}:{lineno}: {missing[0]} is not in the corpus on disk (incomplete "
                                    f"download or another corpus version?); --skip-missing drops such trials")
            pairs.append((utts[0], utts[1], "target" if fields[0] == "1" else "nontarget"))
    if not pairs:
        why = f" ({skipped} name utterances not on disk)" if skipped else ""
        raise VoxCelebError(f"{path}: no trials left{why}")
    return Trials.from_pairs(pairs, str(path)), skipped


# ------------------------------------------------------------------------------------------------ data dirs

def build_data_dir(utts: Mapping[str, Utterance], speakers: Mapping[str, Speaker], meta_path: str | os.PathLike,
                   durations: Mapping[str, float] | None) -> DataDir:
    """The Kaldi data dir of these utterances, with spk2gender from the meta file (and utt2dur when given).

    A speaker on disk that the meta file does not know is an error: the gender GMMs need every gender.
    """
    if durations is not None:
        utts = {u: v for u, v in utts.items() if u in durations}
    spks = {u.spk for u in utts.values()}
    unknown = c_sorted(spks - set(speakers))
    if unknown:
        raise VoxCelebError(f"{meta_path}: no gender for {len(unknown)} speaker(s) found on disk "
                            f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); "
                            f"is it the meta file of this corpus?")
    utt_tables = {"wav.scp": {u: wav_scp_entry(v.path) for u, v in utts.items()},
                  "utt2spk": {u: v.spk for u, v in utts.items()}}
    if durations is not None:
        utt_tables["utt2dur"] = {u: f"{durations[u]:g}" for u in utts}
    return DataDir(utt_tables, {"spk2gender": {s: speakers[s].gender for s in spks}})


def describe(data: DataDir) -> str:
    """One log line: speakers, utterances and hours, per gender."""
    gender_of = data.spk_tables["spk2gender"]
    spk_count = Counter(gender_of[s] for s in data.spks)
    text = (f"{len(data.spks)} speakers (m {spk_count['m']}, f {spk_count['f']}), "
            f"{len(data.utt2spk)} utterances")
    if "utt2dur" in data.utt_tables:
        hours: Counter = Counter()
        for utt, seconds in data.utt_tables["utt2dur"].items():
            hours[gender_of[data.utt2spk[utt]]] += float(seconds) / 3600
        text += f", {sum(hours.values()):.1f} hours (m {hours['m']:.1f}, f {hours['f']:.1f})"
    else:
        text += ", hours not counted (no utt2dur)"
    for name, trials in sorted(data.trials.items()):
        text += f"; {name}: {len(trials)} trials, {trials.num_target} target"
    return text


def write_data_dir(data: DataDir, path: Path, logger) -> None:
    """Validate, then write (each table atomically); trials lists of an earlier run that are not in `data` go."""
    try:
        # The walk has just seen every file: checking them again would only cost a stat per utterance.
        data.validate(path, check_files=False)
    except DataDirError as err:
        raise VoxCelebError(str(err)) from err
    data.save(path)
    for old in trials_files(path):
        if old.name not in data.trials:
            old.unlink()
    logger.info(f"{path}: {describe(data)}")
