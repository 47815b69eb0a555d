"""Kaldi trials lists: `enroll_utt test_utt target|nontarget`, one trial a line. The one reader and writer of them,
and the makers of the lists a corpus recipe builds (VoxCeleb1-O style random pairs, H style same-gender pairs,
all pairs).

Blank lines are skipped; every other line must have exactly three whitespace-separated fields. Errors name the file
and the 1-based line number.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.utils.atomic import atomic_file

LABELS = {"target": 1, "nontarget": 0}
TRIALS_PREFIX = "trials"  # a data dir's trials lists are its files named trials*


class TrialsError(PipelineError, ValueError):
    """A trials file that cannot be used as it is; the message names the file and the line."""


@dataclass(frozen=True)
class Trials:
    """Parallel arrays, one entry per trial, in file order; `line` is each trial's line number in `path`."""

    enroll: np.ndarray  # str, enrollment utterance ids
    test: np.ndarray  # str, test utterance ids
    labels: np.ndarray  # int8, 1 target / 0 nontarget
    path: str = "<memory>"  # where the trials came from, for messages
    line: np.ndarray | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str, str]], path: str = "<memory>") -> "Trials":
        """Trials from (enroll, test, 'target'|'nontarget') tuples, in their order."""
        rows = list(pairs)
        bad = next((r for r in rows if r[2] not in LABELS), None)
        if bad is not None:
            raise TrialsError(f"{path}: label must be 'target' or 'nontarget', got {bad[2]!r}")
        return cls(np.array([r[0] for r in rows], dtype=str), np.array([r[1] for r in rows], dtype=str),
                   np.array([LABELS[r[2]] for r in rows], dtype=np.int8), path, np.arange(1, len(rows) + 1))

    def __len__(self) -> int:
        return int(self.labels.size)

    @property
    def num_target(self) -> int:
        return int(np.count_nonzero(self.labels))

    def lines(self) -> list[str]:
        return [f"{e} {t} {'target' if label else 'nontarget'}"
                for e, t, label in zip(self.enroll.tolist(), self.test.tolist(), self.labels.tolist())]

    def where(self, keep: np.ndarray) -> "Trials":
        """The trials where the boolean mask `keep` is true."""
        return Trials(self.enroll[keep], self.test[keep], self.labels[keep], self.path,
                      None if self.line is None else self.line[keep])

    def naming_any_of(self, utts: Collection[str]) -> np.ndarray:
        """Boolean mask of the trials that name an utterance of `utts` on either side."""
        utts = set(utts)
        return np.array([e in utts or t in utts for e, t in zip(self.enroll.tolist(), self.test.tolist())],
                        dtype=bool)

    def check_known(self, known: Collection[str], what: str = "an utterance of the data dir") -> None:
        """TrialsError naming the file, the line and the id of the first trial naming an utterance not in `known`
        (a set or dict, for O(1) lookups), with the count of distinct unknown ids."""
        first, missing = None, set()
        for index, (e, t) in enumerate(zip(self.enroll.tolist(), self.test.tolist())):
            for utt in (e, t):
                if utt not in known:
                    missing.add(utt)
                    first = first or (index, utt)
        if first is not None:
            index, utt = first
            line = self.line[index] if self.line is not None else index + 1
            raise TrialsError(f"{self.path}:{line}: {utt!r} is not {what} ({len(missing)} distinct unknown "
                              f"utterance id(s) in all)")

    def check_speakers(self, utt2spk: Mapping[str, str], utt2spk_path: str | os.PathLike) -> None:
        """TrialsError naming the file, the line and both speakers of the first trial whose label disagrees with
        `utt2spk` (a target across two speakers, a non-target within one), with the count: the trials were made
        from another utt2spk, and no metric of them means anything."""
        labels = np.array([utt2spk[e] == utt2spk[t] for e, t in zip(self.enroll.tolist(), self.test.tolist())],
                          dtype=bool)
        wrong = np.flatnonzero(labels != self.labels.astype(bool))
        if wrong.size:
            index = int(wrong[0])
            line = self.line[index] if self.line is not None else index + 1
            e, t = self.enroll[index], self.test[index]
            raise TrialsError(f"{self.path}:{line}: '{self.lines()[index]}' disagrees with {utt2spk_path} "
                              f"({e} is {utt2spk[e]!r}, {t} is {utt2spk[t]!r}; {wrong.size} of {len(self)} trials "
                              f"disagree): utt2spk changed after the trials were made; restore it, or remake the "
                              f"trials from it")


def read_trials(path: str | os.PathLike, *, allow_empty: bool = False) -> Trials:
    """Read a Kaldi trials file. TrialsError naming file and line for a malformed line or an unknown label, and
    for a file with no trials at all (unless `allow_empty`)."""
    enroll, test, labels, numbers = [], [], [], []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise TrialsError(f"{path}:{number}: expected 3 fields 'enroll_utt test_utt target|nontarget', "
                                  f"got {len(fields)}: {text.rstrip()!r}")
            if fields[2] not in LABELS:
                raise TrialsError(f"{path}:{number}: label must be 'target' or 'nontarget', got {fields[2]!r}")
            enroll.append(fields[0])
            test.append(fields[1])
            labels.append(LABELS[fields[2]])
            numbers.append(number)
    if not labels and not allow_empty:
        raise TrialsError(f"{path}: no trials in file")
    return Trials(np.array(enroll, dtype=str), np.array(test, dtype=str), np.array(labels, dtype=np.int8), str(path),
                  np.array(numbers, dtype=np.int64))


def write_trials(path: str | os.PathLike, trials: Trials) -> None:
    """Write a trials list (in its order), atomically."""
    with atomic_file(path) as handle:
        handle.writelines(line + "\n" for line in trials.lines())


def trials_files(data_dir: str | os.PathLike) -> list[Path]:
    """The trials lists of a data dir (`trials*`), in name order."""
    return sorted(p for p in Path(data_dir).glob(TRIALS_PREFIX + "*") if p.is_file() and not p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------------------------
# The lists a corpus recipe makes
# ---------------------------------------------------------------------------------------------------------------
def _c_order(pairs: Iterable[tuple[str, str, str]]) -> Trials:
    return Trials.from_pairs(sorted(pairs, key=lambda p: f"{p[0]} {p[1]} {p[2]}".encode()))


def _sample(candidates: list, n: int, rng: np.random.Generator) -> list:
    if n >= len(candidates):
        return list(candidates)
    return [candidates[i] for i in rng.choice(len(candidates), size=n, replace=False)]


def all_pairs_trials(utt2spk: Mapping[str, str]) -> Trials:
    """Every unordered pair of distinct utterances, labelled by speaker."""
    utts = sorted(utt2spk, key=str.encode)
    return _c_order((a, b, "target" if utt2spk[a] == utt2spk[b] else "nontarget")
                    for a, b in itertools.combinations(utts, 2))


def random_pairs_trials(utt2spk: Mapping[str, str], num_trials: int, target_fraction: float,
                        rng: np.random.Generator) -> Trials:
    """VoxCeleb1-O style: random distinct utterance pairs, `target_fraction` of them same-speaker (as many as
    exist), the rest different-speaker."""
    utts = sorted(utt2spk, key=str.encode)
    idx_a, idx_b = np.triu_indices(len(utts), k=1)
    spk_index = {s: i for i, s in enumerate(sorted(set(utt2spk.values())))}
    spk_of = np.array([spk_index[utt2spk[u]] for u in utts])
    same = spk_of[idx_a] == spk_of[idx_b]
    targets = [(utts[a], utts[b], "target") for a, b in zip(idx_a[same], idx_b[same])]
    chosen = _sample(targets, int(round(num_trials * target_fraction)), rng)
    nontargets = np.flatnonzero(~same)
    picked = rng.choice(nontargets, size=min(num_trials - len(chosen), len(nontargets)), replace=False)
    chosen += [(utts[idx_a[i]], utts[idx_b[i]], "nontarget") for i in picked]
    return _c_order(chosen)


def same_gender_trials(utt2spk: Mapping[str, str], spk2gender: Mapping[str, str], num_trials: int,
                       target_fraction: float, rng: np.random.Generator,
                       spk2group: Mapping[str, str] | None = None) -> Trials:
    """VoxCeleb1-H style: non-target pairs share the gender and, where possible, the `spk2group` value (a language,
    say) of the two speakers."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=str.encode):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    spks = sorted(spk2utt, key=str.encode)
    targets = [(u, v, "target") for s in spks for i, u in enumerate(spk2utt[s]) for v in spk2utt[s][i + 1:]]
    pairs = set(_sample(targets, int(round(num_trials * target_fraction)), rng))
    impostors = {}
    for s in spks:
        same_gender = [o for o in spks if o != s and spk2gender[o] == spk2gender[s]]
        same_group = [o for o in same_gender if spk2group and spk2group[o] == spk2group[s]]
        impostors[s] = same_group or same_gender
    enrollable = [s for s in spks if impostors[s]]
    wanted = num_trials - len(pairs)
    nontargets: set[tuple[str, str, str]] = set()
    attempts = 0
    while enrollable and len(nontargets) < wanted and attempts < 20 * num_trials:
        attempts += 1
        s = enrollable[int(rng.integers(len(enrollable)))]
        o = impostors[s][int(rng.integers(len(impostors[s])))]
        a = spk2utt[s][int(rng.integers(len(spk2utt[s])))]
        b = spk2utt[o][int(rng.integers(len(spk2utt[o])))]
        nontargets.add((min(a, b), max(a, b), "nontarget"))
    return _c_order(pairs | nontargets)
