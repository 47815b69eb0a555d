#!/usr/bin/env python3
"""Identification on the demo's test speakers, as `enroll` and `identify` do it, from stage 5's embeddings.

    python local/eval/identification.py exp/gmm_resnext exp/dgmm_resnext exp/resnet34

Every 4th test speaker (in sorted order) is left out of the table: their recordings must be answered "unknown".
Every other speaker is enrolled from the first half of their utterances (the mean of the normalised vectors, as
`enroll` writes it) and identified from the other half. Reported per model: closed-set top-1 accuracy (the best
enrolled speaker is the right one), and at the model's default threshold (what `identify` uses: the score whose
calibrated LLR is the Bayes threshold at `scoring.p_target`, or stage 6's EER threshold on `data.threshold_trials`
without a calibration): known recordings answered with the right name, and unknown speakers' recordings rejected;
and the same at the open-set equal-error threshold, chosen on these recordings (an oracle that
shows what `identify --threshold` can reach: a verification threshold is calibrated for one recording against one,
not for the best of many enrolled speakers).

A measurement of this recipe's models, not corpus glue, hence local/eval/ and not local/demo/ (which builds the
corpus): as in Kaldi's egs, what one recipe reports lives in its local/, and bench/ times code rather than scoring it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root

from pipeline.embed import load_embeddings  # noqa: E402
from pipeline.speaker_model import SpeakerModel  # noqa: E402
from pipeline.speaker_table import pair_score, scoring_rows  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402
from pipeline.utils.paths import in_recipe, recipe_dir_of  # noqa: E402


def identification(model_dir: Path, test_set: str | None) -> dict[str, float]:
    model = SpeakerModel.load(model_dir)
    if model.train_mean is None:
        raise click.ClickException(f"{model_dir}: the GMM-UBM has no speaker embedding to enrol")
    test_set = test_set or model.config["data"]["test"][0]
    data = DataDir.load(in_recipe(model.config["data"]["root"], recipe_dir_of(model_dir)) / test_set)
    embeddings = load_embeddings(model_dir / "embeddings" / test_set)
    rows = {u: scoring_rows(e, model.train_mean) for u, e in embeddings.items()}
    spk2utt = {s: [u for u in utts if u in rows] for s, utts in data.spk2utt.items()}
    speakers = sorted(spk2utt, key=str.encode)
    unknown = set(speakers[3::4])
    enrolled = [s for s in speakers if s not in unknown]
    table = np.stack([np.mean([rows[u] for u in spk2utt[s][:len(spk2utt[s]) // 2]], axis=0) for s in enrolled])
    threshold, calibration = model.threshold()
    known_best, known_right, unknown_best = [], [], []
    for speaker in speakers:
        utts = spk2utt[speaker] if speaker in unknown else spk2utt[speaker][len(spk2utt[speaker]) // 2:]
        for utt in utts:
            scores = pair_score(table, rows[utt])
            best = int(np.argmax(scores))
            if speaker in unknown:
                unknown_best.append(scores[best])
            else:
                known_best.append(scores[best])
                known_right.append(enrolled[best] == speaker)
    known_best, known_right, unknown_best = map(np.asarray, (known_best, known_right, unknown_best))

    def at(t: float) -> tuple[float, float]:
        """(known recordings answered with the right name, unknown recordings rejected) at threshold t."""
        return float(np.mean(known_right & (known_best >= t))), float(np.mean(unknown_best < t))

    # The open-set equal-error point: as many unknown recordings accepted as known ones not answered right.
    # Chosen on these recordings (an oracle), it shows what `identify --threshold` can reach.
    candidates = np.unique(np.concatenate([known_best, unknown_best]))
    open_set = min(candidates, key=lambda t: abs((1 - at(t)[0]) - (1 - at(t)[1])))
    return {"enrolled": len(enrolled), "unknown": len(unknown), "known_tests": len(known_best),
            "unknown_tests": len(unknown_best), "top1": float(np.mean(known_right)), "at_calibrated": at(threshold),
            "threshold": threshold, "calibration": calibration, "open_set": float(open_set), "at_open_set": at(open_set)}


@click.command()
@click.option("--test-set", help="default: the model's first test set")
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
def main(test_set: str | None, models: tuple[str, ...]) -> None:
    print("| model | speakers enrolled / unknown | top-1 (closed set) | calibrated threshold | right name | unknown "
          "rejected | open-set EER threshold (oracle) | right name | unknown rejected |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model_dir in models:
        r = identification(Path(model_dir), test_set)
        (right, rejected), (right_o, rejected_o) = r["at_calibrated"], r["at_open_set"]
        print(f"| {Path(model_dir).name} | {r['enrolled']} / {r['unknown']} ({r['known_tests']} + "
              f"{r['unknown_tests']} test recordings) | {100 * r['top1']:.1f}% | {r['threshold']:.3f} "
              f"({r['calibration']}) | {100 * right:.1f}% | {100 * rejected:.1f}% | {r['open_set']:.3f} | "
              f"{100 * right_o:.1f}% | {100 * rejected_o:.1f}% |")


if __name__ == "__main__":
    main()
