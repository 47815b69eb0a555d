"""Paired EER differences of two trained models on every trials list of a test set, from the score files stage 6
wrote (`exp/<model>/scores/<set>_<trials>.score`): EER(model) - EER(reference) in points, with the 95% interval of a
bootstrap over test speakers shared by both (`paired_eer_difference`); bold where it excludes 0.

    python bench/paired_models.py --exp exp --set test gmm_resnext_lm gmm_resnext
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.recipe_layout import score_row  # noqa: E402
from pipeline.scoring.bootstrap import paired_eer_difference  # noqa: E402
from pipeline.scoring.metrics import compute_eer  # noqa: E402
from pipeline.scoring.report import read_scores  # noqa: E402
from pipeline.utils.datadir import DataDir  # noqa: E402
from pipeline.utils.trials import read_trials, trials_files  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("reference")
    parser.add_argument("--exp", default="exp")
    parser.add_argument("--data", default="data")
    parser.add_argument("--set", dest="test_set", default="test")
    parser.add_argument("--replicates", type=int, default=1000)
    args = parser.parse_args()
    utt2spk = DataDir.load(Path(args.data) / args.test_set).utt2spk
    print(f"| trials | EER {args.model} | EER {args.reference} | difference [95% CI] |\n|---|---|---|---|")
    for path in trials_files(Path(args.data) / args.test_set):
        trials = read_trials(path)
        scores = [read_scores(score_row(Path(args.exp) / m, args.test_set, path.name).with_suffix(".score"),
                              len(trials)) for m in (args.model, args.reference)]
        d = paired_eer_difference(*scores, trials.labels, [utt2spk[u] for u in trials.enroll.tolist()],
                                  [utt2spk[u] for u in trials.test.tolist()], replicates=args.replicates)
        cell = f"{100 * d.eer:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"
        eers = [100 * compute_eer(s, trials.labels)[0] for s in scores]
        print(f"| {path.name} | {eers[0]:.2f} | {eers[1]:.2f} | "
              f"{f'**{cell}**' if d.low > 0 or d.high < 0 else cell} |")


if __name__ == "__main__":
    main()
