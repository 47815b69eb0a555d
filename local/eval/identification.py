#!/usr/bin/env python3
"""Identification on the demo's test speakers, as `enroll` and `identify` do it, from stage 5's embeddings.

    python local/eval/identification.py exp/gmm_resnext exp/dgmm_resnext exp/resnet34

The test people are split into stage 6's two speaker-disjoint halves (`stages.backend.speaker_halves`). Each half is
evaluated with the identification calibration fitted on the other half (`scoring.identification`; stage 6 saves
the one fitted on half 0 as `identification_calibration.json`), so no person is named or rejected by a calibration
that saw them. Within a half, every 4th person (in sorted order) is left out of the table: their recordings must be
answered "unknown"; every other person is enrolled from the first half of their recordings and identified from the
rest. Reported per model, pooled over both halves: closed-set top-1 accuracy (the best enrolled person is the right
one); known recordings answered with the right name and unknown people's recordings rejected, at three thresholds:
the verification calibration's Bayes threshold (what `identify` used before: one recording against one, at
`scoring.p_target`), the identification calibration's Bayes decision among the table's N people and "unknown" at
`scoring.identify_p_unknown` (what `identify` uses now), and the open-set equal-error point chosen on these very
recordings (an oracle: what the best single threshold could reach); and, as an oracle too, the most known recordings
any threshold names right while rejecting 80% of the unknown ones.

A measurement of this recipe's models, not corpus glue, hence local/eval/ and not local/demo/ (which builds the
corpus): as in Kaldi's egs, what one recipe reports lives in its local/, and bench/ times code rather than scoring it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from pipeline.embedding_files import load_embeddings  # noqa: E402
from pipeline.scoring.identification import IdentificationCalibration, enrolment_scores  # noqa: E402
from pipeline.speaker_model import SpeakerModel  # noqa: E402
from pipeline.stages.backend import BackendSettings, speaker_halves  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402
from pipeline.utils.paths import in_recipe, recipe_dir_of  # noqa: E402


def identification(model_dir: Path, test_set: str | None) -> dict:
    model = SpeakerModel.load(model_dir)
    if model.train_mean is None:
        raise click.ClickException(f"{model_dir}: the GMM-UBM has no speaker embedding to enrol")
    test_set = test_set or model.config["data"]["test"][0]
    data = DataDir.load(in_recipe(model.config["data"]["root"], recipe_dir_of(model_dir)) / test_set)
    recordings = load_embeddings(model_dir / "embeddings" / test_set)
    spk2utt = {s: [u for u in utts if u in recordings] for s, utts in data.spk2utt.items()}
    halves = speaker_halves(data.spk_tables.get("spk2gender", {}), set(spk2utt))
    p_unknown = BackendSettings.from_config(model.config.get("scoring") or {}).p_unknown
    verification_threshold, verification = model.threshold()
    known_best, known_right, unknown_best, known_threshold, unknown_threshold, tables = [], [], [], [], [], []
    for half in (0, 1):
        dev = sorted((s for s in spk2utt if halves[s] != half), key=str.encode)
        calibration = IdentificationCalibration.fit(model.scorer, recordings, spk2utt, dev, test_set, p_unknown)
        people = sorted((s for s in spk2utt if halves[s] == half and len(spk2utt[s]) >= 2), key=str.encode)
        unknown = set(people[3::4])
        enrolled = [s for s in people if s not in unknown]
        scores, speakers, _ = enrolment_scores(model.scorer, recordings, spk2utt, enrolled, people)
        best = np.argmax(scores, axis=0)
        best_scores = scores[best, np.arange(len(speakers))]
        is_unknown = np.isin(speakers, list(unknown))
        known_best.append(best_scores[~is_unknown])
        known_right.append(np.array(enrolled)[best][~is_unknown] == speakers[~is_unknown])
        unknown_best.append(best_scores[is_unknown])
        threshold = calibration.score_threshold(len(enrolled))   # Bayes' rule among this half's table
        known_threshold.append(np.full(int((~is_unknown).sum()), threshold))
        unknown_threshold.append(np.full(int(is_unknown.sum()), threshold))
        tables.append((len(enrolled), len(unknown)))
    known_best, known_right, unknown_best = map(np.concatenate, (known_best, known_right, unknown_best))

    def at(t_known: np.ndarray | float, t_unknown: np.ndarray | float) -> tuple[float, float]:
        """(known recordings answered with the right name, unknown recordings rejected) at the thresholds."""
        return float(np.mean(known_right & (known_best >= t_known))), float(np.mean(unknown_best < t_unknown))

    calibrated = at(np.concatenate(known_threshold), np.concatenate(unknown_threshold))
    # The open-set equal-error point: as many unknown recordings accepted as known ones not answered right.
    candidates = np.unique(np.concatenate([known_best, unknown_best]))
    open_set = min(candidates, key=lambda t: abs((1 - at(t, t)[0]) - (1 - at(t, t)[1])))
    # The target as an oracle: the most known recordings named right by any threshold rejecting 80% of the
    # unknown ones.
    at_80 = max((at(t, t)[0] for t in candidates if at(t, t)[1] >= 0.8), default=0.0)
    return {"tables": tables, "known_tests": len(known_best), "unknown_tests": len(unknown_best),
            "top1": float(np.mean(known_right)), "p_unknown": p_unknown,
            "at_verification": at(verification_threshold, verification_threshold), "verification": verification,
            "at_calibrated": calibrated, "at_open_set": at(open_set, open_set), "open_set": float(open_set),
            "right_at_80": at_80}


@click.command()
@click.option("--test-set", help="default: the model's first test set")
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
def main(test_set: str | None, models: tuple[str, ...]) -> None:
    print("| model | people enrolled / unknown per half | test recordings known + unknown | top-1 (closed set) | "
          "verification threshold: right name | unknown rejected | identification calibration: right name | "
          "unknown rejected | open-set EER point (oracle): right name | unknown rejected | right name at 80% "
          "rejected (oracle) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model_dir in models:
        r = identification(Path(model_dir), test_set)
        tables = " and ".join(f"{n} / {u}" for n, u in r["tables"])
        cells = [f"{100 * x:.1f}%" for pair in (r["at_verification"], r["at_calibrated"], r["at_open_set"])
                 for x in pair]
        print(f"| {Path(model_dir).name} | {tables} | {r['known_tests']} + {r['unknown_tests']} | "
              f"{100 * r['top1']:.1f}% | " + " | ".join(cells) + f" | {100 * r['right_at_80']:.1f}% |")
    print(f"\nidentification calibration: each half's fitted on the other half's people, Bayes decision at "
          f"p_unknown {r['p_unknown']:g}; verification threshold: {r['verification']}")


if __name__ == "__main__":
    main()
