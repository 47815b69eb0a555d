"""Open-set identification by Bayes' rule: who among N enrolled people is speaking, or nobody enrolled.

A verification calibration maps a score of one recording against one recording to an LLR; `identify` scores one
recording against a speaker table, whose rows each average several enrolment recordings, and answers with the best
of N. Both differ from the verification condition, so the LLRs come from a calibration of this condition: on
development people (speakers disjoint from those it is reported on), each enrolled from the first half of their
recordings (`enrolment_split`), every other recording of the development people scored against every enrolled one
(targets: its own speaker), and `Calibration` fitted on those scores.

The decision. With N enrolled people, a prior `p_unknown` that the speaker is none of them and the rest spread
evenly, and each LLR l_k the evidence for person k against a speaker drawn from the population, the posterior of
person k is proportional to (1 - p_unknown) / N * exp(l_k) and that of "unknown" to p_unknown. The best person is
named when their posterior beats "unknown": l_best > log(p_unknown * N / (1 - p_unknown)). The threshold grows with
log N: the more people in the table, the higher the best of N impostor scores reaches.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import Calibration
from .scorer import Scorer

__all__ = ["IdentificationCalibration", "enrolment_scores", "enrolment_split"]


def enrolment_split(utts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(enrolment recordings, test recordings) of one person: the first half (at least one) enrols."""
    utts = list(utts)
    half = max(1, len(utts) // 2)
    return utts[:half], utts[half:]


def enrolment_scores(scorer: Scorer, recordings: Mapping[str, np.ndarray], spk2utt: Mapping[str, Sequence[str]],
                     enrolled: Sequence[str], tested: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores of a table of the `enrolled` people (each from `enrolment_split`'s first half) against the test
    recordings of the `tested` people (their second half, or all of them for a person not enrolled): (scores
    (people, recordings), speaker of each test recording, ids of the test recordings). Recordings absent from
    `recordings` are left out."""
    rows = {u: scorer.rows(v, f"embedding of {u!r}") for u, v in recordings.items()}
    present = {s: [u for u in spk2utt[s] if u in rows] for s in set(enrolled) | set(tested)}
    table = np.stack([scorer.enrol([rows[u] for u in enrolment_split(present[s])[0]]) for s in enrolled])
    test_ids, test_speakers = [], []
    for speaker in tested:
        utts = enrolment_split(present[speaker])[1] if speaker in set(enrolled) else present[speaker]
        test_ids += utts
        test_speakers += [speaker] * len(utts)
    scores = scorer.score_matrix(table, np.stack([rows[u] for u in test_ids]))
    return scores, np.array(test_speakers), test_ids


@dataclass(frozen=True)
class IdentificationCalibration:
    """The calibration of the enrolment condition, what it was fitted on, and the prior `identify` decides at."""
    calibration: Calibration
    p_unknown: float
    speakers: tuple[str, ...]     # the development people it was fitted on
    test_set: str
    enrolment_recordings: float   # median recordings per enrolled person
    test_recordings: int

    @classmethod
    def fit(cls, scorer: Scorer, recordings: Mapping[str, np.ndarray], spk2utt: Mapping[str, Sequence[str]],
            speakers: Sequence[str], test_set: str, p_unknown: float) -> "IdentificationCalibration":
        """Fit on the `speakers` with at least two recordings in `recordings`: each enrolled, each one's other
        recordings tested against every enrolled person."""
        if not 0.0 < p_unknown < 1.0:
            raise ValueError(f"p_unknown must lie strictly between 0 and 1, got {p_unknown}")
        usable = sorted((s for s in speakers if sum(u in recordings for u in spk2utt[s]) >= 2), key=str.encode)
        if len(usable) < 2:
            raise ValueError(f"{len(usable)} development people with two recordings: identification needs at "
                             f"least 2 to calibrate")
        scores, test_speakers, test_ids = enrolment_scores(scorer, recordings, spk2utt, usable, usable)
        labels = np.array(usable)[:, None] == test_speakers[None, :]
        enrolled = [len(enrolment_split([u for u in spk2utt[s] if u in recordings])[0]) for s in usable]
        return cls(Calibration.fit(scores.ravel(), labels.ravel()), float(p_unknown), tuple(usable), test_set,
                   float(np.median(enrolled)), len(test_ids))

    def llr_threshold(self, people: int) -> float:
        """The LLR above which the best of `people` enrolled people is named (module docstring)."""
        if people < 1:
            raise ValueError("no people enrolled")
        return float(np.log(self.p_unknown * people / (1.0 - self.p_unknown)))

    def score_threshold(self, people: int) -> float:
        """The raw score whose calibrated LLR is `llr_threshold(people)`."""
        return self.calibration.score_at(self.llr_threshold(people))

    def describe(self, people: int) -> str:
        return (f"identification calibration on {len(self.speakers)} people of {self.test_set} (enrolled from "
                f"{self.enrolment_recordings:g} recordings), Bayes decision among {people} enrolled at p_unknown "
                f"{self.p_unknown:g}: LLR {self.llr_threshold(people):+.2f}")

    def to_json(self) -> str:
        record = {"kind": "identification calibration", "calibration": json.loads(self.calibration.to_json()),
                  "p_unknown": self.p_unknown, "speakers": list(self.speakers), "test_set": self.test_set,
                  "enrolment_recordings": self.enrolment_recordings, "test_recordings": self.test_recordings}
        return json.dumps(record, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "IdentificationCalibration":
        data = json.loads(text)
        if not isinstance(data, dict) or data.pop("kind", None) != "identification calibration":
            raise ValueError("not an identification calibration record")
        return cls(Calibration.from_json(json.dumps(data.pop("calibration"))), float(data["p_unknown"]),
                   tuple(data["speakers"]), str(data["test_set"]), float(data["enrolment_recordings"]),
                   int(data["test_recordings"]))
