"""A trained system as a Python object: embed recordings, score pairs, decide, as the recipe would.

    >>> from pipeline import SpeakerModel
    >>> model = SpeakerModel.load("exp/gmm_resnext")                    # doctest: +SKIP
    >>> model.score("a.wav", "b.wav")                                   # doctest: +SKIP
    0.4123
    >>> model.verify("a.wav", "b.wav")                                  # doctest: +SKIP
    Decision(score=0.4123, threshold=0.3912, calibration='calibrated on test/trials_O, ...', same=True, llr=0.61)

`load` reads what stage 4 froze (the final checkpoint, hash checked, with its config and the GMMs an LGP model was
trained on), and the training mean that stage 6 removes (refused when another final.pt made it); `embed` runs the
whole front end (MFCC + VAD with the frozen config, resampling any rate, LGP under the model's GMMs) and returns
what stage 5 writes for one utterance; `score` is stage 6's score of the pair, by the model's scorer (`pipeline.scoring.scorer_for`, as
stage 6, the speaker table and `score-pairs` score). The classical GMM-UBM loads the same way: its "embedding" is
the pair of enrolment and test vectors, and its score the linear-scoring LLR (both directions when its config says
`symmetric`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from pipeline.dataset.features import inputs_from_samples
from pipeline.embed import Embedder, GMMUBMEmbedder, embedder_of, load_final_model, model_gmms
from pipeline.embedding_files import load_mean_embedding
from pipeline.experiment import check_made_with, model_checksum
from pipeline.features.gmm import DiagGMM
from pipeline.features.lgp import LGPExtractor
from pipeline.features.mfcc import MfccOptions
from pipeline.recipe_layout import (CALIBRATION_FILE, FINAL_MODEL, IDENTIFICATION_CALIBRATION_FILE, cohort_set,
                                    embeddings_dir, score_row)
from pipeline.scoring import Calibration, Scorer, bayes_threshold, score_trials_with, scorer_for
from pipeline.scoring.identification import IdentificationCalibration
from pipeline.systems import system_of
from pipeline.utils.audio import checked_samples, read_audio_file, read_wav_scp_entry, samples_from_array
from pipeline.utils.paths import in_recipe, recipe_dir_of
from pipeline.utils.stage import StageError
from pipeline.utils.trials import trials_files

# A recording: the path of an audio file (opened as a file, never run as a command, even if it ends in `|`), or
# (samples, rate) read by `samples_from_array`'s rule: 1-D mono, or 2-D with the shorter axis (at most 8) as channels,
# averaged; int16 / 32768, int32 / 2**31, uint8 centred at 128, other integers refused; floats within [-1, 1];
# the rate a positive whole number of Hz. A data dir's wav.scp entry (which may be a pipe) goes to
# `embed_wav_scp_entry`.
Audio = Union[str, os.PathLike, tuple[np.ndarray, int]]


@dataclass(frozen=True)
class Decision:
    """A verification: the score, the threshold it was compared with and where that came from, the answer; with a
    calibration (stage 6's `calibration.json`), the score as a log-likelihood ratio too."""
    score: float
    threshold: float
    calibration: str
    same: bool
    llr: float | None = None

    def __str__(self) -> str:
        llr = f"  LLR {self.llr:+.3f}" if self.llr is not None else ""
        return (f"score {self.score:.4f}{llr}  threshold {self.threshold:.4f} ({self.calibration})  ->  "
                f"{'same speaker' if self.same else 'different speakers'}")


class SpeakerModel:
    """A trained experiment (`exp/<model>`) as an embedder and scorer of recordings."""

    def __init__(self, exp_dir: Path, embedder: Embedder | GMMUBMEmbedder, frozen: dict, gmms: dict[str, DiagGMM],
                 train_mean: np.ndarray | None, checksum: str):
        self.exp_dir = exp_dir
        self.embedder = embedder
        self.config = frozen
        self.gmms = gmms
        self.train_mean = train_mean
        self.checksum = checksum   # of final.pt: what the threshold and the cohort mean must have been made with
        self.scorer: Scorer = scorer_for(frozen["model"], train_mean)   # stage 6's, without AS-Norm
        self._lgp = {name: LGPExtractor(gmm) for name, gmm in gmms.items()}
        self.options = MfccOptions.from_config({**(frozen.get("features") or {}), "resample": True})

    @classmethod
    def load(cls, exp_dir: str | os.PathLike, *, device: str | None = None) -> "SpeakerModel":
        """The model of a trained experiment, with the GMMs it was trained on (final.pt carries them)."""
        exp_dir = Path(exp_dir)
        if not exp_dir.is_dir():
            raise StageError(f"{exp_dir} is not a trained experiment directory (exp/<model>)")
        checkpoint = load_final_model(exp_dir)
        frozen = checkpoint["config"]
        train_mean = None
        if system_of(frozen["model"]).speaker_embedding:  # stage 6 removes the mean of the cohort set's embeddings
            cohort_dir = embeddings_dir(exp_dir, cohort_set(frozen))
            check_made_with(cohort_dir, exp_dir)
            train_mean = load_mean_embedding(cohort_dir)
        return cls(exp_dir, embedder_of(checkpoint, device), frozen, model_gmms(checkpoint, exp_dir), train_mean,
                   model_checksum(exp_dir))

    @property
    def name(self) -> str:
        return str(self.config["model_name"])

    def embed(self, audio: Audio) -> np.ndarray:
        """What stage 5 writes for one recording: (1 + crops, dim), row 0 the full utterance; for a GMM-UBM (2, C*d),
        the enrolment and the test vector. The path of an audio file in any format and rate `--eval-data` accepts
        (never run as a command), or (samples, rate) as `Audio` says; AudioError or FeatureError (unreadable,
        silent, too short, an array it cannot read) naming it."""
        if isinstance(audio, tuple):
            name = "<samples>"
            samples, _ = checked_samples(*samples_from_array(audio[0], audio[1], name), name,
                                         self.options.sample_rate, resample=True)
        else:
            name = str(audio)
            samples, _ = read_audio_file(name, self.options.sample_rate, resample=True)
        return self._embed_samples(samples, name)

    def embed_wav_scp_entry(self, entry: str) -> np.ndarray:
        """`embed` of a line of a data dir's wav.scp: a path, or a Kaldi pipe `cmd |` that the shell runs. Only for
        data dirs the user prepared; a path from anywhere else goes to `embed`."""
        return self._embed_samples(read_wav_scp_entry(entry, self.options.sample_rate, resample=True)[0], entry)

    def _embed_samples(self, samples: np.ndarray, name: str) -> np.ndarray:
        inputs = inputs_from_samples(samples, self.options, self.embedder.input_names, self._lgp,
                                     voiced_only=self.embedder.voiced_only, name=name)
        first, second = self.embedder(inputs)
        return np.concatenate([first[None, :], np.atleast_2d(second)], axis=0)

    def score(self, enroll: Audio | np.ndarray, test: Audio | np.ndarray) -> float:
        """Stage 6's score of the pair: recordings, or what `embed` returned for them."""
        a = enroll if isinstance(enroll, np.ndarray) else self.embed(enroll)
        b = test if isinstance(test, np.ndarray) else self.embed(test)
        return float(self.score_embedded({"a": a, "b": b}, [("a", "b")])[0])

    def score_embedded(self, embedded: dict[str, np.ndarray], pairs: list[tuple[str, str]]) -> np.ndarray:
        """Stage 6's scores of many pairs of what `embed` returned (id -> value), each recording prepared once."""
        return score_trials_with(self.scorer, embedded, pairs)

    def _record(self, name: str) -> dict | None:
        """A calibration record stage 6 wrote beside the model, None when there is none; StageError when it was made
        with another final.pt."""
        path = self.exp_dir / name
        if not path.is_file():
            return None
        record = json.loads(path.read_text())
        if record.get("model checksum") != self.checksum:
            raise StageError(f"{path} was made with another {FINAL_MODEL.name} than {self.exp_dir}'s current one "
                             f"(retrained since?): rerun stages 5 and 6, or give a threshold")
        return record

    def calibration(self) -> tuple[Calibration, float, str] | None:
        """Stage 6's calibration of this model's scores (`calibration.json`: the map to LLRs, the prior it decides
        at, the list it was trained on), or None when stage 6 made none (no `data.threshold_trials`)."""
        record = self._record(CALIBRATION_FILE)
        if record is None:
            return None
        p_target = float(record["p_target"])
        return (Calibration.from_json(json.dumps(record["calibration"])), p_target,
                f"calibrated on {record['trials']}, Bayes decision at p_target {p_target:g}")

    def identification_calibration(self) -> IdentificationCalibration | None:
        """Stage 6's calibration of the enrolment condition (`identification_calibration.json`), or None."""
        record = self._record(IDENTIFICATION_CALIBRATION_FILE)
        if record is None:
            return None
        record.pop("model checksum")
        return IdentificationCalibration.from_json(json.dumps(record))

    def identification_threshold(self, people: int, trials: str | None = None, given: float | None = None
                                 ) -> tuple[float, str, IdentificationCalibration | None]:
        """The score the best of `people` enrolled people must reach to be named, where it came from, and the
        identification calibration when the threshold is its: `given`; else the EER threshold of `trials`; else
        the identification calibration's Bayes decision among `people` (`scoring.identification`); else
        `threshold`'s verification threshold."""
        if given is None and trials is None:
            calibration = self.identification_calibration()
            if calibration is not None:
                return calibration.score_threshold(people), calibration.describe(people), calibration
        return (*self.threshold(trials, given), None)

    def threshold(self, trials: str | None = None, given: float | None = None) -> tuple[float, str]:
        """The score threshold of a decision, and where it came from: `given`; else the EER threshold stage 6 found
        on `trials` (`<set>/<trials file>`); else the score whose calibrated LLR is the Bayes threshold at the
        calibration's prior; else the EER threshold on the config's `data.threshold_trials` or the first list of
        its first test set."""
        if given is not None:
            return float(given), "given"
        calibrated = self.calibration() if trials is None else None
        if calibrated is not None:
            calibration, p_target, description = calibrated
            return calibration.score_at(bayes_threshold(p_target)), description
        trials = trials or self.config["data"].get("threshold_trials")
        if trials is None:
            test_set = self.config["data"]["test"][0]
            lists = trials_files(in_recipe(self.config["data"]["root"], recipe_dir_of(self.exp_dir)) / test_set)
            if not lists:
                raise StageError(f"test set {test_set!r} has no trials list: give a trials list or a threshold")
            trials = f"{test_set}/{lists[0].name}"
        row = score_row(self.exp_dir, *trials.split("/", 1))
        if not row.is_file():
            raise StageError(f"{row} not found: {self.exp_dir} has not been scored on {trials} (run stage 6), or "
                             f"give another trials list or a threshold")
        scored = json.loads(row.read_text())
        if scored.get("model checksum") != self.checksum:
            raise StageError(f"{row} was scored with another {FINAL_MODEL.name} than {self.exp_dir}'s current one "
                             f"(retrained since?): its threshold belongs to that model; rerun stages 5 and 6, or give "
                             f"a threshold")
        return float(scored["EER threshold"]), f"EER threshold on {trials}"

    def verify(self, enroll: Audio | np.ndarray, test: Audio | np.ndarray, *, threshold: float | None = None,
               trials: str | None = None) -> Decision:
        """Same speaker or not: the score against `threshold`, the EER threshold of `trials`, or by default the
        calibrated LLR against the Bayes threshold (`threshold`'s rule); the LLR is given whenever stage 6 made a
        calibration (read once)."""
        score = self.score(enroll, test)
        try:
            calibrated = self.calibration()
        except StageError:   # made for another final.pt: no LLR, while a threshold the caller chose still decides
            if threshold is None and trials is None:
                raise
            calibrated = None
        if threshold is None and trials is None and calibrated is not None:
            calibration, p_target, description = calibrated
            threshold = calibration.score_at(bayes_threshold(p_target))
        else:
            threshold, description = self.threshold(trials, threshold)
        llr = float(calibrated[0].apply(score)) if calibrated is not None else None
        return Decision(score, threshold, description, score >= threshold, llr)
