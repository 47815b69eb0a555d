"""One interface for every trial score: how a recording (or an enrolled speaker) is represented, and how two of
them score.

A `Scorer` turns what stage 5 writes for one recording (what `SpeakerModel.embed` returns) into its scoring rows
(`rows`), averages several recordings' rows into one enrolled speaker (`enrol`), and scores rows: paired, trial n
being `enroll[enroll_index[n]]` against `test[test_index[n]]` (`score`, each recording prepared once however many
trials name it), or every enrolment row against every test row (`score_matrix`: a table of people, a cohort).
Stage 6, `SpeakerModel` (verify, score-pairs), the speaker table (enrol, identify) and the identification
calibration all score through it; `scorer_for` builds a system's scorer from the name the systems registry gives
(`pipeline.systems`: `scoring: cosine | linear`), and `with_as_norm`, `PLDAScorer` and `Calibrated` build on it.

  CosineScorer   a network's embeddings: rows (2, dim), the unit full-utterance vector and the mean unit crop vector
                 (zeros without crops), training mean removed; the authors' score (cosine.py's docstring)
  LinearScorer   the GMM-UBM: rows (2, C*d), the enrolment and the test vector; e_a . t_b (`scoring.linear`)
  Symmetric      the mean of a scorer's two directions of a trial (the GMM-UBM's default)
  ASNorm         a scorer's scores normalised against a cohort of speakers' rows (AS-Norm1)
  PLDAScorer     Kaldi's PLDA LLR: rows (1 + d,), the count of recordings averaged and the LDA + length-normalised
                 vector
  Calibrated     a scorer's scores through a `ScoreTransform` (`Calibration`): LLRs

A `ScoreTransform` maps scores to LLRs: `Calibration` (one system) and `Fusion` (several systems' scores of the same
trials) are the two.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from pipeline.systems import system_of

from .cosine import _trial_ids, _unit_rows, group_means, normalised, top_mean_std
from .plda import PLDA

__all__ = ["ASNorm", "Calibrated", "CosineScorer", "LinearScorer", "PLDAScorer", "ScoreTransform", "Scorer",
           "Symmetric", "as_norm", "as_norm_trials", "cosine_scores", "gather_rows", "raw_and_normalised", "score_trials",
           "score_trials_with", "scorer_for", "speaker_rows", "with_as_norm"]

_BLOCK_ELEMENTS = 1 << 22  # floats gathered per block of paired rows (32 MB of float64): bounds memory on big lists


@runtime_checkable
class Scorer(Protocol):
    """Scores of trials between recordings or enrolled speakers (module docstring)."""

    def rows(self, embedding: ArrayLike, name: str = "embedding") -> np.ndarray:
        """The scoring rows of one recording, from what stage 5 writes for it; ValueError naming `name`."""

    def enrol(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        """One speaker's rows from the rows of their enrolment recordings."""

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        """Score n: row `enroll_index[n]` of `enroll` against row `test_index[n]` of `test` (row n of each
        without indices); float64 (n,)."""

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Every row of `enroll` against every row of `test`: float64 (len(enroll), len(test))."""


class ScoreTransform(Protocol):
    """A map from scores to LLRs, trained on labelled trials: `Calibration` (an array of one system's scores) or
    `Fusion` (system name -> scores)."""

    def apply(self, scores: Any) -> np.ndarray: ...

    def to_json(self) -> str: ...


def _indices(n_enroll: int, n_test: int, enroll_index: ArrayLike | None, test_index: ArrayLike | None
             ) -> tuple[np.ndarray, np.ndarray]:
    if enroll_index is None and test_index is None:
        if n_enroll != n_test:
            raise ValueError(f"{n_enroll} enrolment rows and {n_test} test rows must pair up one to one "
                             f"(or give indices)")
        return np.arange(n_enroll), np.arange(n_test)
    ie = np.arange(n_enroll) if enroll_index is None else np.asarray(enroll_index, dtype=np.int64).ravel()
    it = np.arange(n_test) if test_index is None else np.asarray(test_index, dtype=np.int64).ravel()
    if ie.size != it.size:
        raise ValueError(f"{ie.size} enrolment indices but {it.size} test indices: need one of each per trial")
    for what, index, rows in (("enroll", ie, n_enroll), ("test", it, n_test)):
        if index.size and not (0 <= index.min() and index.max() < rows):
            raise ValueError(f"{what}_index out of range 0..{rows - 1}: [{index.min()}, {index.max()}]")
    return ie, it


def _paired_dot(a: np.ndarray, ia: np.ndarray, b: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """out[n] = a[ia[n]] . b[ib[n]] in float64, a block of trials at a time so that the gathered rows stay small."""
    out = np.empty(ia.size, dtype=np.float64)
    block = max(1, _BLOCK_ELEMENTS // max(a.shape[1], 1))
    for start in range(0, ia.size, block):
        stop = start + block
        out[start:stop] = np.einsum("ij,ij->i", a[ia[start:stop]].astype(np.float64, copy=False),
                                    b[ib[start:stop]].astype(np.float64, copy=False))
    return out


class CosineScorer:
    """A network's score: 0.5 * (cos(full_e, full_t) + mean unit crop_e . mean unit crop_t), or the full-utterance
    cosine alone when a side has no crops, after removing `mean` (the cohort set's mean embedding) from every
    vector. An enrolled speaker's rows are the mean of their recordings' rows; its full row is scored after
    normalising it again, as Kaldi's `ivector-mean` averages normalised i-vectors."""

    def __init__(self, mean: ArrayLike | None = None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)

    def rows(self, embedding: ArrayLike, name: str = "embedding") -> np.ndarray:
        value = np.asarray(embedding, dtype=np.float64)
        if value.ndim not in (1, 2) or value.shape[-1] == 0 or (value.ndim == 2 and value.shape[0] == 0):
            raise ValueError(f"{name} has shape {value.shape}; expected (dim,) or (k, dim)")
        if self.mean is not None and value.shape[-1] != self.mean.size:
            raise ValueError(f"{name} has dimension {value.shape[-1]}, the training mean {self.mean.size}")
        units = _unit_rows(np.atleast_2d(value) - (0.0 if self.mean is None else self.mean), name)
        crops = units[1:].mean(axis=0) if units.shape[0] > 1 else np.zeros(units.shape[1])
        return np.stack([units[0], crops])

    def enrol(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return np.mean(np.stack(rows), axis=0)

    @staticmethod
    def _parts(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit full rows, crop rows, has-crops mask) of (U, 2, dim) rows."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 3 or rows.shape[1] != 2:
            raise ValueError(f"cosine scoring rows have shape (n, 2, dim), got {rows.shape}")
        full = rows[:, 0]
        full = full / np.linalg.norm(full, axis=1, keepdims=True).clip(1e-300)
        return full, rows[:, 1], np.any(rows[:, 1] != 0, axis=1)

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        ie, it = _indices(len(enroll), len(test), enroll_index, test_index)
        full_e, crops_e, has_e = self._parts(enroll)
        full_t, crops_t, has_t = self._parts(test)
        scores = _paired_dot(full_e, ie, full_t, it)
        both = has_e[ie] & has_t[it]
        if both.any():
            scores[both] = 0.5 * (scores[both] + _paired_dot(crops_e, ie[both], crops_t, it[both]))
        return scores

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        full_e, crops_e, has_e = self._parts(enroll)
        full_t, crops_t, has_t = self._parts(test)
        scores = full_e @ full_t.T
        both = has_e[:, None] & has_t[None, :]
        if both.any():
            scores = np.where(both, 0.5 * (scores + crops_e @ crops_t.T), scores)
        return scores


class LinearScorer:
    """The GMM-UBM's linear-scoring LLR of one direction, e_a . t_b (`pipeline.models.gmm_ubm`). Rows (2, C*d): the
    enrolment vector and the test vector; a speaker enrolled from several recordings has the mean of each."""

    def rows(self, embedding: ArrayLike, name: str = "embedding") -> np.ndarray:
        value = np.asarray(embedding, dtype=np.float64)
        if value.ndim != 2 or value.shape[0] != 2:
            raise ValueError(f"{name} has shape {value.shape}; a GMM-UBM recording is (2, C*d): its enrolment "
                             f"and test vectors")
        return value

    def enrol(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return np.mean(np.stack(rows), axis=0)

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        from pipeline.models.gmm_ubm import linear_scores   # the GMM-UBM's own: dimension and index checks

        ie, it = _indices(len(enroll), len(test), enroll_index, test_index)
        return linear_scores(np.asarray(enroll)[:, 0], np.asarray(test)[:, 1], ie, it)

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return np.asarray(enroll, dtype=np.float64)[:, 0] @ np.asarray(test, dtype=np.float64)[:, 1].T


class Wrapping:
    """A scorer over `inner`'s rows and enrolment: the wrappers below change only how trials are scored."""

    def __init__(self, inner: Scorer):
        self.inner = inner

    def rows(self, embedding: ArrayLike, name: str = "embedding") -> np.ndarray:
        return self.inner.rows(embedding, name)

    def enrol(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.inner.enrol(rows)


class Symmetric(Wrapping):
    """The mean of `inner`'s two directions of a trial: each recording enrols once and is tested once."""

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        ie, it = _indices(len(enroll), len(test), enroll_index, test_index)
        return 0.5 * (self.inner.score(enroll, test, ie, it) + self.inner.score(test, enroll, it, ie))

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return 0.5 * (self.inner.score_matrix(enroll, test) + self.inner.score_matrix(test, enroll).T)


class ASNorm:
    """Adaptive symmetric normalisation (AS-Norm1, WeSpeaker's `score_norm.py`) of `inner`'s scores against `cohort`
    (cohort speakers' rows): s' = 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t), mu and sd (ddof 0) of the `top_n`
    highest scores of the enrolment side as enrolment against the cohort, and of the test side as test against it.
    A `top_n` at or above the cohort size uses the whole cohort (S-Norm)."""

    def __init__(self, inner: Scorer, cohort: np.ndarray, top_n: int):
        self.inner, self.cohort = inner, np.asarray(cohort)
        if len(self.cohort) < 2 or top_n < 2:
            raise ValueError(f"AS-Norm needs top_n >= 2 and a cohort of at least 2 speakers (got top_n={top_n}, "
                             f"cohort of {len(self.cohort)}): a std of one score is 0")
        self.top_n = min(int(top_n), len(self.cohort))

    def rows(self, embedding: ArrayLike, name: str = "embedding") -> np.ndarray:
        return self.inner.rows(embedding, name)

    def enrol(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        return self.inner.enrol(rows)

    def cohort_statistics(self, rows: np.ndarray, as_enrolment: bool) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of each row's top_n cohort scores, a block of rows at a time (a score block near a million
        floats)."""
        mean, std = np.empty(len(rows)), np.empty(len(rows))
        block = max(1, (1 << 20) // len(self.cohort))
        for start in range(0, len(rows), block):
            part = rows[start:start + block]
            scores = (self.inner.score_matrix(part, self.cohort) if as_enrolment
                      else self.inner.score_matrix(self.cohort, part).T)
            mean[start:start + block], std[start:start + block] = top_mean_std(scores, self.top_n)
        return mean, std

    def normalise(self, scores: np.ndarray, enroll: np.ndarray, test: np.ndarray, enroll_index: np.ndarray,
                  test_index: np.ndarray) -> np.ndarray:
        """AS-Norm of `inner`'s `scores` of these trials."""
        mu_e, sd_e = self.cohort_statistics(enroll, as_enrolment=True)
        mu_t, sd_t = self.cohort_statistics(test, as_enrolment=False)
        return normalised(scores, (mu_e, sd_e), (mu_t, sd_t), enroll_index, test_index)

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        ie, it = _indices(len(enroll), len(test), enroll_index, test_index)
        return self.normalise(self.inner.score(enroll, test, ie, it), enroll, test, ie, it)

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        ie, it = (index.ravel() for index in np.meshgrid(np.arange(len(enroll)), np.arange(len(test)),
                                                          indexing="ij"))
        return self.score(enroll, test, ie, it).reshape(len(enroll), len(test))


class PLDAScorer:
    """Kaldi's PLDA log-likelihood ratio (`scoring.PLDA`) of the full-utterance embeddings. Rows (1 + d,): the count
    of recordings averaged, then their mean LDA + length-normalised vector (what `ivector-mean` gives
    `ivector-plda-scoring` with its `num_utts`)."""

    def __init__(self, plda: PLDA):
        self.plda = plda

    def rows(self, embedding: ArrayLike, name: str = "embedding") -> np.ndarray:
        value = np.atleast_2d(np.asarray(embedding, dtype=np.float64))
        if value.shape[1] != self.plda.mean.size:
            raise ValueError(f"{name} has dimension {value.shape[1]}, the PLDA's {self.plda.mean.size}")
        return np.concatenate([[1.0], self.plda.project(value[0])[0]])

    def enrol(self, rows: Sequence[np.ndarray]) -> np.ndarray:
        rows = np.stack(rows)
        counts = rows[:, 0]
        return np.concatenate([[counts.sum()], counts @ rows[:, 1:] / counts.sum()])

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        ie, it = _indices(len(enroll), len(test), enroll_index, test_index)
        enroll, test = np.atleast_2d(enroll), np.atleast_2d(test)
        u_e = self.plda.to_plda_space(enroll[:, 1:], enroll[:, 0])
        u_t = self.plda.to_plda_space(test[:, 1:], test[:, 0])
        return self.plda.llr(u_e[ie], u_t[it], enroll[ie, 0])

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        ie, it = (index.ravel() for index in np.meshgrid(np.arange(len(enroll)), np.arange(len(test)),
                                                          indexing="ij"))
        return self.score(enroll, test, ie, it).reshape(len(enroll), len(test))


class Calibrated(Wrapping):
    """`inner`'s scores as LLRs through `transform` (a `Calibration`)."""

    def __init__(self, inner: Scorer, transform: ScoreTransform):
        super().__init__(inner)
        self.transform = transform

    def score(self, enroll: np.ndarray, test: np.ndarray, enroll_index: ArrayLike | None = None,
              test_index: ArrayLike | None = None) -> np.ndarray:
        return self.transform.apply(self.inner.score(enroll, test, enroll_index, test_index))

    def score_matrix(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        return self.transform.apply(self.inner.score_matrix(enroll, test))


SCORERS = {"cosine": CosineScorer, "linear": LinearScorer}   # by a system's `scoring` (pipeline.systems)


def scorer_for(model_cfg: dict[str, Any], mean: ArrayLike | None = None) -> Scorer:
    """The scorer of a `models:` entry or frozen `model:` section: the one its system names, with `mean` (the cohort
    set's mean embedding) for an embedding system; a GMM-UBM with `symmetric: true` scores both directions."""
    kind = system_of(model_cfg).scoring
    if kind == "cosine":
        if mean is None:
            raise ValueError(f"{model_cfg.get('arch')}: cosine scoring removes the training mean; none given")
        return CosineScorer(mean)
    scorer = SCORERS[kind]()
    return Symmetric(scorer) if model_cfg.get("symmetric", False) else scorer


def with_as_norm(scorer: Scorer, cohort: np.ndarray, top_n: int) -> Scorer:
    """`scorer` with AS-Norm against `cohort`; a symmetric scorer normalises each direction on its own, then
    averages (each direction's score has its own cohort statistics)."""
    if isinstance(scorer, Symmetric):
        return Symmetric(ASNorm(scorer.inner, cohort, top_n))
    return ASNorm(scorer, cohort, top_n)


def raw_and_normalised(normed: Scorer, enroll: np.ndarray, test: np.ndarray, enroll_index: np.ndarray,
                       test_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the scores without AS-Norm, with it) of a scorer `with_as_norm` built, each direction scored once."""
    if isinstance(normed, Symmetric):
        forward = raw_and_normalised(normed.inner, enroll, test, enroll_index, test_index)
        backward = raw_and_normalised(normed.inner, test, enroll, test_index, enroll_index)
        return 0.5 * (forward[0] + backward[0]), 0.5 * (forward[1] + backward[1])
    if not isinstance(normed, ASNorm):
        raise TypeError(f"not a scorer with AS-Norm: {type(normed).__name__}")
    raw = normed.inner.score(enroll, test, enroll_index, test_index)
    return raw, normed.normalise(raw, enroll, test, enroll_index, test_index)


def gather_rows(scorer: Scorer, embeddings: Mapping[str, ArrayLike], trials: Any
                ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(ids, rows (U, ...), enrolment index, test index) of a trials list (a `Trials` or (enroll, test[, label])
    tuples), each distinct recording prepared once; ValueError naming a trial whose recording has no embedding."""
    enroll, test = _trial_ids(trials)
    if enroll.size == 0:
        raise ValueError("no trials given")
    ids, inverse = np.unique(np.concatenate((enroll, test)), return_inverse=True)
    rows = []
    for utt in ids.tolist():
        if utt not in embeddings:
            where = np.flatnonzero((enroll == utt) | (test == utt))[0]
            raise ValueError(f"trial {int(where) + 1} names utterance {utt!r}, which has no embedding")
        rows.append(scorer.rows(embeddings[utt], f"embedding of {utt!r}"))
    shapes = {r.shape for r in rows}
    if len(shapes) > 1:
        raise ValueError(f"embeddings of different dimensions: {sorted(shapes)[:2]}")
    return ids.tolist(), np.stack(rows), inverse[:enroll.size], inverse[enroll.size:]


def score_trials_with(scorer: Scorer, embeddings: Mapping[str, ArrayLike], trials: Any) -> np.ndarray:
    """`scorer`'s score of every trial, in trials order."""
    _, rows, ie, it = gather_rows(scorer, embeddings, trials)
    return scorer.score(rows, rows, ie, it)


def speaker_rows(scorer: Scorer, embeddings: Mapping[str, ArrayLike], utt2spk: Mapping[str, str]
                 ) -> tuple[list[str], np.ndarray]:
    """(speakers in sorted order, their rows): each speaker's `rows` of the mean of their recordings' arrays, as the
    AS-Norm cohort is built (WeSpeaker's recipe: speaker means of the raw vectors, normalised afterwards)."""
    speakers, means = group_means(embeddings, utt2spk)
    return speakers, np.stack([scorer.rows(m, f"cohort speaker {s!r}") for s, m in zip(speakers, means)])


def cosine_scores(enroll_emb: ArrayLike, test_emb: ArrayLike) -> np.ndarray:
    """Cosine similarity of paired rows: out[n] = cos(enroll_emb[n], test_emb[n]), both (n, dim) (`CosineScorer`
    of vectors without crops or mean)."""
    enroll = np.atleast_2d(np.asarray(enroll_emb, dtype=np.float64))
    test = np.atleast_2d(np.asarray(test_emb, dtype=np.float64))
    if enroll.shape != test.shape:
        raise ValueError(f"enroll embeddings {enroll.shape} and test embeddings {test.shape} must pair row by row")
    scorer = CosineScorer()
    rows = [np.stack([scorer.rows(v, f"{what} embeddings row {k}") for k, v in enumerate(matrix)])
            for what, matrix in (("enroll", enroll), ("test", test))]
    return scorer.score(*rows)


def score_trials(embeddings: Mapping[str, ArrayLike], trials: Any, mean: ArrayLike | None = None) -> np.ndarray:
    """The cosine score of every trial, in trials order (`CosineScorer`; cosine.py's docstring for crops and
    `mean`). `trials`: a `Trials` or (enroll, test[, label]) tuples; a trial naming an utterance absent from
    `embeddings` is a ValueError naming it."""
    return score_trials_with(CosineScorer(mean), embeddings, trials)


def as_norm_trials(scores: ArrayLike, embeddings: Mapping[str, ArrayLike], trials: Any, cohort: ArrayLike,
                   top_n: int, mean: ArrayLike | None = None) -> np.ndarray:
    """AS-Norm of `score_trials` output against `cohort` (raw speaker means, (S, dim)): each utterance's cohort
    statistics come from its full-utterance embedding, `mean`, if given, removed from it and from the cohort."""
    scorer = CosineScorer(mean)
    _, rows, ie, it = gather_rows(scorer, embeddings, trials)
    full_rows = rows.copy()
    full_rows[:, 1] = 0.0   # the cohort statistics of the full-utterance vector alone
    cohort_rows = np.stack([scorer.rows(c, "cohort") for c in np.atleast_2d(np.asarray(cohort, dtype=np.float64))])
    return ASNorm(scorer, cohort_rows, top_n).normalise(np.asarray(scores, dtype=np.float64).ravel(), full_rows,
                                                        full_rows, ie, it)


def as_norm(scores: ArrayLike, enroll_emb: ArrayLike, test_emb: ArrayLike, cohort: ArrayLike, top_n: int,
            enroll_index: ArrayLike | None = None, test_index: ArrayLike | None = None) -> np.ndarray:
    """AS-Norm of cosine `scores` of vectors: score n's sides are rows `enroll_index[n]` of `enroll_emb` and
    `test_index[n]` of `test_emb` (row n of each without indices), each meeting the `cohort` rows by cosine."""
    scorer = CosineScorer()

    def rows(matrix: ArrayLike, what: str) -> np.ndarray:
        return np.stack([scorer.rows(v, f"{what} row {k}") for k, v in
                         enumerate(np.atleast_2d(np.asarray(matrix, dtype=np.float64)))])
    enroll, test, cohort_rows = rows(enroll_emb, "enroll"), rows(test_emb, "test"), rows(cohort, "cohort")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError("no scores given to AS-Norm")
    if not enroll.shape[2] == test.shape[2] == cohort_rows.shape[2]:
        raise ValueError(f"dimensions differ: enroll {enroll.shape[2]}, test {test.shape[2]}, "
                         f"cohort {cohort_rows.shape[2]}")
    ie, it = _indices(len(enroll), len(test), enroll_index if enroll_index is not None else np.arange(scores.size),
                      test_index if test_index is not None else np.arange(scores.size))
    if ie.size != scores.size:
        raise ValueError(f"{scores.size} scores do not pair with {ie.size} trials")
    return ASNorm(scorer, cohort_rows, top_n).normalise(scores, enroll, test, ie, it)
