"""Kaldi trials lists (`enroll_utt test_utt target|nontarget`, one trial a line) and score files.

Blank lines are skipped; every other line must have exactly three whitespace-separated fields. Errors name the file
and the 1-based line number.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Trials", "TrialsError", "read_trials", "check_trials_keys", "write_scores"]

_LABELS = {"target": 1, "nontarget": 0}


class TrialsError(ValueError):
    """A trials file that cannot be used as it is; the message names the file and the line."""


class Trials(NamedTuple):
    """Parallel arrays, one entry per trial, in file order."""

    enroll: np.ndarray  # str, enrollment utterance ids
    test: np.ndarray  # str, test utterance ids
    labels: np.ndarray  # int8, 1 target / 0 nontarget
    path: str  # where the trials came from, for error messages


def _parsed_lines(path: str | os.PathLike):
    """Yield (line_number, fields) for the non-blank lines of a trials file, checking the field count."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise TrialsError(f"{path}:{number}: expected 3 fields 'enroll_utt test_utt target|nontarget', "
                                  f"got {len(fields)}: {line.rstrip()!r}")
            yield number, fields


def read_trials(path: str | os.PathLike) -> Trials:
    """Read a Kaldi trials file. Raises TrialsError naming file and line for a malformed line or an unknown label,
    and for a file with no trials at all."""
    enroll, test, labels = [], [], []
    for number, (utt1, utt2, label) in _parsed_lines(path):
        if label not in _LABELS:
            raise TrialsError(f"{path}:{number}: label must be 'target' or 'nontarget', got {label!r}")
        enroll.append(utt1)
        test.append(utt2)
        labels.append(_LABELS[label])
    if not labels:
        raise TrialsError(f"{path}: no trials in file")
    return Trials(np.array(enroll), np.array(test), np.array(labels, dtype=np.int8), str(path))


def check_trials_keys(trials_path: str | os.PathLike, known_keys: Collection[str]) -> None:
    """Raise TrialsError if the trials file names an utterance that is not in `known_keys`.

    The message names the file, the line and the utterance id of the first such trial, and says how many
    distinct ids are missing in all. Pass a set (or dict) so that lookups are O(1).
    """
    first: tuple[int, str] | None = None
    missing: set[str] = set()
    for number, (utt1, utt2, _) in _parsed_lines(trials_path):
        for utt in (utt1, utt2):
            if utt not in known_keys:
                missing.add(utt)
                if first is None:
                    first = (number, utt)
    if first is not None:
        number, utt = first
        raise TrialsError(f"{trials_path}:{number}: trials naming an utterance without an embedding: {utt!r} "
                          f"({len(missing)} distinct utterance ids missing in all). Extract embeddings for this "
                          "set again (stage 5) or use the trials list that belongs to it.")


def write_scores(path: str | os.PathLike, trials: Trials, scores: ArrayLike) -> None:
    """Write a Kaldi score file, `enroll test score` a line in trials order, atomically (temp file, then rename).

    Three columns as Kaldi's `sid/compute_min_dcf.py` reads them; the labels stay in the trials file.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size != trials.labels.size:
        raise ValueError(f"{scores.size} scores for {trials.labels.size} trials in {trials.path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.writelines(f"{e} {t} {s:.6f}\n" for e, t, s in zip(trials.enroll, trials.test, scores))
    os.replace(tmp, path)
