"""The recorded people of the demo corpus: single, identifiable people whose speech Debian packages ship.

One row of `local/demo/recordings.tsv` is one person. Their clips come from Debian packages that
`debian_packages.fetch_packages` fetches and unpacks; the row's `select` rule says which files of those packages are
that person (`speaker_clips`).

`select` rules, `KIND key=value ...` (paths are those of the Debian packages):
  fillets lang=LL font=FONT          usr/share/games/fillets-ng/sound/**/LL/ID.ogg whose dialog ID has FONT, and no
                                     other font, in script/**/*dialogs_en.lua (font_small: small fish, font_big: big)
  tuxpaint lang=LL [exclude=A,B/C]   usr/share/tuxpaint/stamps/**/*_desc_LL.ogg outside the excluded subfolders
  uqm folders=A[,B]                  3dovoice/A/*.ogg of the unzipped usr/share/games/uqm/content/addons/*.uqm
  asterisk folders=A[,B]             usr/share/asterisk/sounds/A/**/*.g722, except A/silence/
Whatever the rule, empty files are dropped, and of byte-identical files only the first (in package, path order).
"""
from __future__ import annotations

import hashlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from local.demo.debian_packages import PACKAGE_NAME
from local.demo.table import read_table
from pipeline.errors import PipelineError

DEFAULT_RECORDING_TABLE = Path(__file__).resolve().parent / "recordings.tsv"
TABLE_COLUMNS = ("speaker", "gender", "language", "packages", "select", "licence", "note")

FILLETS_DIR = "usr/share/games/fillets-ng"
TUX_STAMPS_DIR = "usr/share/tuxpaint/stamps"
UQM_ADDONS_DIR = "usr/share/games/uqm/content/addons"
ASTERISK_SOUNDS_DIR = "usr/share/asterisk/sounds"
DIALOG_ID = re.compile(r'dialogId\(\s*"([^"]+)"\s*,\s*"([^"]*)"')


class RecordingError(PipelineError):
    """The recording table or a package tree cannot be used; the message says which file and what to do."""


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


def package_roots(speaker: RecordedSpeaker, roots: dict[str, Path] | dict[str, str]) -> dict[str, Path]:
    """The unpacked root of each of the person's packages; RecordingError if one is not among `roots`."""
    absent = [p for p in speaker.packages if p not in roots]
    if absent:
        raise RecordingError(f"{speaker.id}: package(s) {', '.join(absent)} not fetched; fetch_packages reports why")
    return {p: Path(roots[p]) for p in speaker.packages}


def path_in_package(path: Path, roots: dict[str, Path]) -> tuple[str, str]:
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
    by_package = package_roots(speaker, roots)
    kind, args = parse_select(speaker.select)
    found = {p for p in SELECTORS[kind](args, list(by_package.values())) if p.is_file()}
    clips = _without_duplicates(sorted(found, key=lambda p: path_in_package(p, by_package)))
    if not clips:
        raise RecordingError(f"{speaker.id}: select rule {speaker.select!r} finds no clip in "
                             f"{', '.join(map(str, by_package.values()))}: has the packages' layout changed?")
    return clips
