"""Kaldi data directories: plain sorted text tables keyed by utterance or speaker id.

One reader and one writer for every table (`wav.scp`, `utt2spk`, `spk2utt`, `spk2gender`, `utt2dur`,
`feats.scp`, `vad.scp`, `utt2num_frames`, ...), plus what Kaldi's `utils/` scripts do to whole directories:
validate (`validate_data_dir.sh`), fix (`fix_data_dir.sh`), split per speaker (`split_data.sh`), subset and
combine. Keys are sorted with C collation (plain byte order), as `LC_ALL=C sort` does.
"""
from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping


from pipeline.errors import PipelineError
from pipeline.utils.atomic import atomic_file, swap_in_directory
from pipeline.utils.set_names import derived_data_dirs, derived_from, set_name_problem
from pipeline.utils.trials import Trials, TrialsError, read_trials, trials_files, write_trials

# Tables keyed by utterance id that cover every utterance of utt2spk.
UTT_TABLES = ("wav.scp", "utt2spk", "utt2dur", "text", "utt2lang")
# Tables written by stage 1: they cover the usable utterances, every utterance not in UNUSABLE_TABLE.
FEATURE_TABLES = ("feats.scp", "vad.scp", "utt_cmvn.scp", "utt2num_frames")
# Utterances whose audio stage 1 could not use (unreadable, silent, too short), with the reason; they stay in the
# data dir's other tables, so that a fixed file is picked up again and trials naming them are counted, not lost.
UNUSABLE_TABLE = "unusable_utts"
SPK_TABLES = ("spk2gender",)


class DataDirError(PipelineError, ValueError):
    """A data directory or one of its tables is malformed; the message names the file and line."""


def c_sorted(keys: Iterable[str]) -> list[str]:
    """Sort as `LC_ALL=C sort` does (byte order), the order Kaldi tools require."""
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def read_table(path: str | os.PathLike, *, check_sorted: bool = True) -> dict[str, str]:
    """Read a two-column Kaldi table (`key rest-of-line`), keeping file order.

    Raises DataDirError naming the file and line for a line without a value, a duplicate key or (with
    `check_sorted`) keys that are not in C order.
    """
    path = Path(path)
    table: dict[str, str] = {}
    previous = None
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.rstrip("\n")
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise DataDirError(f"{path}:{lineno}: expected '<key> <value>', got {line!r}")
            key, value = parts[0], parts[1].strip()
            if key in table:
                raise DataDirError(f"{path}:{lineno}: duplicate key {key!r}")
            if check_sorted and previous is not None and key.encode() < previous.encode():
                raise DataDirError(
                    f"{path}:{lineno}: key {key!r} comes after {previous!r}; the file is not sorted "
                    f"(run `python -m pipeline fix-data-dir {path.parent}`)"
                )
            table[key] = value
            previous = key
    return table


def write_table(path: str | os.PathLike, table: Mapping[str, object]) -> None:
    """Write a two-column table in C order, atomically (temp file, then rename)."""
    with atomic_file(path) as handle:
        for key in c_sorted(table):
            value = table[key]
            if isinstance(value, (list, tuple)):
                value = " ".join(str(v) for v in value)
            handle.write(f"{key} {value}\n")


def spk2utt_from_utt2spk(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert utt2spk; utterance lists are in C order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in c_sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


ALL_UTT_TABLES = UTT_TABLES + FEATURE_TABLES + (UNUSABLE_TABLE,)


class DataDir:
    """An in-memory Kaldi data directory: utterance tables, speaker tables and trials lists."""

    def __init__(self, utt_tables: dict[str, dict[str, str]], spk_tables: dict[str, dict[str, str]] | None = None,
                 trials: dict[str, Trials] | None = None):
        self.utt_tables = utt_tables
        self.spk_tables = spk_tables or {}
        self.trials = trials or {}

    # -- access --------------------------------------------------------------------------------
    @property
    def utt2spk(self) -> dict[str, str]:
        return self.utt_tables["utt2spk"]

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        return spk2utt_from_utt2spk(self.utt2spk)

    @property
    def utts(self) -> list[str]:
        return c_sorted(self.utt2spk)

    @property
    def spks(self) -> list[str]:
        return c_sorted(set(self.utt2spk.values()))

    @property
    def unusable(self) -> dict[str, str]:
        """Utterances stage 1 left out, with the reason (empty before stage 1, or when all were usable)."""
        return self.utt_tables.get(UNUSABLE_TABLE, {})

    @property
    def usable_utts(self) -> list[str]:
        """The utterances with features (after stage 1), or all of them (before)."""
        if "feats.scp" in self.utt_tables:
            return c_sorted(self.utt_tables["feats.scp"])
        return [u for u in self.utts if u not in self.unusable]

    def table(self, name: str) -> dict[str, str]:
        if name in self.utt_tables:
            return self.utt_tables[name]
        if name in self.spk_tables:
            return self.spk_tables[name]
        raise KeyError(name)

    # -- disk ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, *, check_sorted: bool = True) -> "DataDir":
        """Read every known table of a data dir; `utt2spk` is required."""
        path = Path(path)
        if not (path / "utt2spk").is_file():
            raise DataDirError(f"{path}: not a data directory (no utt2spk)")
        utt = {n: read_table(path / n, check_sorted=check_sorted) for n in ALL_UTT_TABLES if (path / n).is_file()}
        spk = {n: read_table(path / n, check_sorted=check_sorted) for n in SPK_TABLES if (path / n).is_file()}
        trials = {p.name: read_trials(p, allow_empty=True) for p in trials_files(path)}
        return cls(utt, spk, trials)

    def save(self, path: str | os.PathLike) -> None:
        """Write all tables (and spk2utt, derived) in C order; tables no longer present are removed."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name in ALL_UTT_TABLES + SPK_TABLES:
            if name in self.utt_tables or name in self.spk_tables:
                write_table(path / name, self.table(name))
            elif (path / name).exists():
                (path / name).unlink()
        write_table(path / "spk2utt", self.spk2utt)
        for name, trials in self.trials.items():
            write_trials(path / name, trials)

    # -- checks --------------------------------------------------------------------------------
    def validate(self, path: str | os.PathLike = "<memory>", *, check_files: bool = True) -> None:
        """Check what `validate_data_dir.sh` checks; raise DataDirError naming the first problem.

        Every utterance table covers exactly the utterances of utt2spk, and stage 1's feature tables exactly those
        not listed as unusable; utterance ids start with their speaker id (so per-speaker order equals utterance
        order); spk2gender covers every speaker with m/f; plain wav.scp paths exist; trials name only known
        utterances.
        """
        path = Path(path)
        utts = set(self.utt2spk)
        if not utts:
            raise DataDirError(f"{path}/utt2spk: no utterances")
        for utt, spk in self.utt2spk.items():
            if not utt.startswith(spk):
                raise DataDirError(f"{path}/utt2spk: utterance id {utt!r} does not start with its speaker id "
                                   f"{spk!r} (Kaldi requires speaker-prefixed ids so that sorting agrees)")
        unusable = set(self.unusable)
        if unusable - utts:
            raise DataDirError(f"{path}/{UNUSABLE_TABLE}: {c_sorted(unusable - utts)[0]!r} is not in utt2spk")
        for name, table in self.utt_tables.items():
            if name in ("utt2spk", UNUSABLE_TABLE):
                continue
            expected = utts - unusable if name in FEATURE_TABLES else utts
            missing, extra = expected - set(table), set(table) - expected
            if missing or extra:
                what = f"{len(missing)} utterances missing (e.g. {c_sorted(missing)[0]})" if missing else \
                    f"{len(extra)} utterances not expected there (e.g. {c_sorted(extra)[0]})"
                raise DataDirError(f"{path}/{name}: {what}; run `python -m pipeline fix-data-dir {path}`")
        if "spk2gender" in self.spk_tables:
            g = self.spk_tables["spk2gender"]
            missing = set(self.spks) - set(g)
            if missing:
                raise DataDirError(f"{path}/spk2gender: no gender for speaker {c_sorted(missing)[0]!r}")
            bad = [s for s, v in g.items() if v not in ("m", "f")]
            if bad:
                raise DataDirError(f"{path}/spk2gender: gender of {bad[0]!r} is {g[bad[0]]!r}, expected m or f")
        if check_files and "wav.scp" in self.utt_tables:
            for utt, entry in self.utt_tables["wav.scp"].items():
                if not entry.endswith("|") and not Path(entry).is_file():
                    raise DataDirError(f"{path}/wav.scp: audio of {utt!r} not found: {entry}")
        for trials in self.trials.values():
            try:
                trials.check_known(utts, f"an utterance of {path}/utt2spk")
            except TrialsError as err:
                raise DataDirError(str(err)) from err

    # -- transforms ----------------------------------------------------------------------------
    def fixed(self) -> tuple["DataDir", int]:
        """Keep only utterances present in every utterance table (as `fix_data_dir.sh`), and in the feature tables
        unless stage 1 listed them as unusable; return (dir, dropped)."""
        keep = set(self.utt2spk)
        for name, table in self.utt_tables.items():
            if name in FEATURE_TABLES:
                keep &= set(table) | set(self.unusable)
            elif name != UNUSABLE_TABLE:
                keep &= set(table)
        dropped = len(self.utt2spk) - len(keep)
        return self.subset(keep), dropped

    def subset(self, utts: Iterable[str]) -> "DataDir":
        """The data dir restricted to `utts`; speaker tables and trials follow."""
        keep = set(utts) & set(self.utt2spk)
        utt_tables = {n: {u: v for u, v in t.items() if u in keep} for n, t in self.utt_tables.items()}
        spks = {self.utt2spk[u] for u in keep}
        spk_tables = {n: {s: v for s, v in t.items() if s in spks} for n, t in self.spk_tables.items()}
        dropped = set(self.utt2spk) - keep
        trials = {n: t.where(~t.naming_any_of(dropped)) for n, t in self.trials.items()}
        return DataDir(utt_tables, spk_tables, trials)

    def subset_speakers(self, spks: Iterable[str]) -> "DataDir":
        spks = set(spks)
        return self.subset(u for u, s in self.utt2spk.items() if s in spks)

    def split(self, nj: int) -> list["DataDir"]:
        """Split into `nj` parts of whole speakers with balanced utterance counts (as `split_data.sh`)."""
        if nj < 1:
            raise ValueError("nj must be >= 1")
        spk2utt = self.spk2utt
        if nj > len(spk2utt):
            raise DataDirError(f"cannot split {len(spk2utt)} speakers into {nj} jobs; use --nj {len(spk2utt)} or less")
        # Contiguous speaker ranges keep each part sorted; cut at equal cumulative utterance counts.
        spks = c_sorted(spk2utt)
        counts = [len(spk2utt[s]) for s in spks]
        total, parts, start, running = sum(counts), [], 0, 0
        for i, c in enumerate(counts):
            running += c
            remaining_parts = nj - len(parts) - 1
            remaining_spks = len(spks) - i - 1
            if remaining_parts > 0 and (running >= total * (len(parts) + 1) / nj or remaining_spks == remaining_parts):
                parts.append(spks[start:i + 1])
                start = i + 1
        parts.append(spks[start:])
        return [self.subset_speakers(p) for p in parts]

    @staticmethod
    def combine(dirs: list["DataDir"]) -> "DataDir":
        """Union of data dirs with disjoint utterances; a table is kept only if every dir has it."""
        utt_names = set.intersection(*(set(d.utt_tables) for d in dirs))
        spk_names = set.intersection(*(set(d.spk_tables) for d in dirs))
        utt_tables: dict[str, dict[str, str]] = {n: {} for n in utt_names}
        spk_tables: dict[str, dict[str, str]] = {n: {} for n in spk_names}
        for d in dirs:
            for n in utt_names:
                dup = set(utt_tables[n]) & set(d.utt_tables[n])
                if dup:
                    raise DataDirError(f"combine: utterance {c_sorted(dup)[0]!r} is in two data dirs")
                utt_tables[n].update(d.utt_tables[n])
            for n in spk_names:
                spk_tables[n].update(d.spk_tables[n])
        return DataDir(utt_tables, spk_tables)

    def summary(self) -> dict[str, object]:
        """Counts a person checks after a stage: utterances, speakers, per gender, hours."""
        out: dict[str, object] = {"utterances": len(self.utt2spk), "speakers": len(self.spks)}
        if "spk2gender" in self.spk_tables:
            genders = Counter(self.spk_tables["spk2gender"].get(s, "?") for s in self.spks)
            out["speakers_per_gender"] = dict(sorted(genders.items()))
        if "utt2dur" in self.utt_tables:
            out["hours"] = round(sum(float(v) for v in self.utt_tables["utt2dur"].values()) / 3600, 3)
        if "utt2num_frames" in self.utt_tables:
            out["frames"] = sum(int(v) for v in self.utt_tables["utt2num_frames"].values())
        if self.unusable:
            out["unusable utterances"] = len(self.unusable)
        for name, trials in self.trials.items():
            out[name] = f"{len(trials)} trials, {trials.num_target} target"
        return out


def copy_data_dir(src: str | os.PathLike, dst: str | os.PathLike, *, tables: Iterable[str] | None = None) -> None:
    """Copy the speaker/utterance bookkeeping of a data dir (not features) and its trials lists to another dir, as
    `copy_data_dir.sh`."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    names = tables if tables is not None else ("utt2spk", "spk2utt", "spk2gender", "utt2dur", "wav.scp", "utt2lang",
                                               UNUSABLE_TABLE)
    for name in names:  # a table the source no longer has must not survive from an earlier copy
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
        else:
            (dst / name).unlink(missing_ok=True)
    sources = {p.name: p for p in trials_files(src)}
    for stale in trials_files(dst):
        if stale.name not in sources:
            stale.unlink()
    for name, trials_path in sources.items():
        shutil.copyfile(trials_path, dst / name)


def publish_data_dir(data: DataDir, final: str | os.PathLike, *, check_files: bool = True,
                     extra_files: Mapping[str, str] | None = None) -> None:
    """Write a data dir (and `extra_files`, {name: text}) beside its final place, validate it, then swap it in: a
    half-written or invalid dir never has the final name, and a link at the final name is replaced, never followed."""
    final = Path(final)
    staged = final.with_name(f".{final.name}.staging")
    if staged.exists():
        shutil.rmtree(staged)
    data.save(staged)
    for name, text in (extra_files or {}).items():
        (staged / name).write_text(text, encoding="utf-8")
    data.validate(staged, check_files=check_files)
    swap_in_directory(staged, final)


# The tables a user's evaluation set may bring; stage 1 adds its own beside them.
EVAL_TABLES = ("wav.scp", "utt2spk", "utt2dur", "spk2gender")
IMPORTED_FROM = ".imported_from"  # in an imported set: the directory it was copied from


def evaluation_lists(src: Path) -> list[Path]:
    """The trials lists (`trials*`) of the evaluation set `src`; DataDirError when it lacks wav.scp, utt2spk or a
    trials file."""
    for name in ("wav.scp", "utt2spk"):
        if not (src / name).is_file():
            raise DataDirError(f"{src}/{name} is missing: an evaluation set needs wav.scp, utt2spk and trials")
    lists = trials_files(src)
    if not lists:
        raise DataDirError(f"{src} has no trials file (trials*: `enroll test target|nontarget` a line)")
    return lists


def import_data_dir(src: str | os.PathLike, data_root: str | os.PathLike, reserved: Iterable[str]) -> Path:
    """Copy a user's evaluation set (wav.scp, utt2spk, trials*; spk2gender, utt2dur if present) to
    `<data_root>/<its name>` and return that path.

    Nothing is dropped or guessed: duplicate ids, utterances missing from a table and trials naming unknown
    utterances are DataDirErrors naming the user's file and line (only the order is fixed). Refused, so that an
    evaluation set never replaces the recipe's data nor breaks a run: a name in `reserved` (the recipe's own sets),
    of a directory there that was not imported from `src`, that a derived data dir could take (`set_names`), or
    that is not a plain word; and a set whose derived data dirs would land on another set.

    Importing the same directory again with the same tables redoes nothing (stages key on the tables' content; a
    changed trials list alone is updated in place). With other tables it replaces the set: the new one is built
    beside it and swapped in, and what stages wrote from the old one (stage 1's tables, done markers, derived
    data dirs) goes with it.
    """
    src = Path(src).resolve()
    dst = Path(data_root) / src.name
    problem = set_name_problem(src.name)
    if problem:
        raise DataDirError(f"{src}: {problem}")
    reserved = set(reserved)
    if src.name in reserved:
        raise DataDirError(f"{src}: an evaluation set named {src.name!r} would replace the recipe's own {dst}; "
                           f"copy your data dir under another name")
    mark = dst / IMPORTED_FROM
    if dst.exists() and dst.resolve() != src and not (mark.is_file() and mark.read_text().strip() == str(src)):
        raise DataDirError(f"{dst} exists and was not imported from {src}: an evaluation set must not replace it; "
                           f"copy your data dir under another name")
    _check_derived_dirs_free(src, dst, reserved)
    lists = evaluation_lists(src)
    tables = {n: read_table(src / n, check_sorted=False) for n in EVAL_TABLES if (src / n).is_file()}
    data = DataDir({n: t for n, t in tables.items() if n in UTT_TABLES},
                   {n: t for n, t in tables.items() if n in SPK_TABLES},
                   {p.name: read_trials(p) for p in lists})
    data.validate(src)
    if dst.is_dir() and tables == {n: read_table(dst / n, check_sorted=False) for n in EVAL_TABLES
                                   if (dst / n).is_file()}:
        _rewrite_imported_tables(data, dst)
    else:
        # derived dirs first: a run cut short leaves the old set, whose stages redo them, or no set at all
        for derived in derived_data_dirs(dst):
            shutil.rmtree(derived)
        publish_data_dir(data, dst, extra_files={IMPORTED_FROM: f"{src}\n"})
    DataDir.load(dst).validate(dst)
    return dst


def _check_derived_dirs_free(src: Path, dst: Path, reserved: set[str]) -> None:
    """Refuse a set whose derived data dirs would land on a set of the recipe or an imported one, or on a dir that
    cannot have been derived from it (no set of its name was imported yet)."""
    taken = [dst.with_name(n) for n in c_sorted(reserved) if derived_from(n) == dst.name]
    taken += [d for d in derived_data_dirs(dst) if (d / IMPORTED_FROM).exists() or not dst.exists()]
    if taken:
        raise DataDirError(f"{src}: the recipe derives data dirs named {dst.name}_<input> from a set {dst.name!r}, "
                           f"and {taken[0]} is not derived from it: rename your data dir (or remove {taken[0]} if "
                           f"it is left over from a set you deleted)")


def _rewrite_imported_tables(data: DataDir, dst: Path) -> None:
    """Write an import's tables over a set with the same contents (sorted, its trials lists as they are now): every
    key computed from the tables stays the same, so what stage 1 wrote beside them stays current."""
    for name in EVAL_TABLES:
        if name in data.utt_tables or name in data.spk_tables:
            write_table(dst / name, data.table(name))
    write_table(dst / "spk2utt", data.spk2utt)
    for stale in trials_files(dst):
        if stale.name not in data.trials:
            stale.unlink()
    for name, trials in data.trials.items():
        write_trials(dst / name, trials)
