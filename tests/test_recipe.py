"""The recipe end to end through run.sh (stages 1-6) on a tiny synthetic corpus, then `verify` and `--eval-data`.

The recipe directory is made Kaldi style: run.sh, path.sh, steps/, local/ and pipeline/ linked into a fresh
directory, so data/, exp/, mfcc/ and lgp/ land there and not in the checkout.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pipeline.utils.config import save_config
from pipeline.utils.datadir import DataDir
from pipeline.utils.trials import all_pairs_trials, write_trials
from synthetic_corpus import make_corpus

REPO = Path(__file__).resolve().parents[1]


def write_all_pairs(data_dir: Path, name: str = "trials_O") -> None:
    write_trials(data_dir / name, all_pairs_trials(DataDir.load(data_dir).utt2spk))


def run(recipe: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, tiny_recipe):
    root = tmp_path_factory.mktemp("recipe")
    for name in ("run.sh", "path.sh", "steps", "local", "pipeline"):
        (root / name).symlink_to(REPO / name)
    make_corpus(root, "train", 6, 5)
    test_dir = make_corpus(root, "test", 4, 3, first_speaker=6)
    write_all_pairs(test_dir)
    cfg = tiny_recipe.config_with(data={"root": "data", "train": "train", "test": ["test"]})
    cfg["models"] = {k: v for k, v in cfg["models"].items() if k in ("gmm_resnext", "dgmm_resnext")}
    cfg["gmm"]["root"] = "exp/gmm"
    cfg.pop("augment", None)
    save_config(cfg, root / "tiny.yaml")
    proc = run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6", "--nj", "2")
    return root, proc


def test_run_sh_produces_results_table(recipe):
    root, proc = recipe
    table = (root / "exp" / "results.md").read_text()
    for model in ("gmm_resnext", "dgmm_resnext"):
        assert f"| {model} |" in table
        assert (root / "exp" / model / "scores" / "test_trials_O.score").is_file()
    assert "EER" in proc.stdout and "test/trials_O" in proc.stdout
    assert (root / "exp" / "det_test_trials_O.png").stat().st_size > 1000


def test_rerun_does_no_work(recipe):
    root, _ = recipe
    watched = [root / "data/test/feats.scp", root / "exp/gmm/gi/gmm.npz", root / "data/test_lgp_gi/feats.scp",
               root / "exp/gmm_resnext/models/final.pt", root / "exp/gmm_resnext/embeddings/test/xvector.scp"]
    before = [p.stat().st_mtime_ns for p in watched]
    run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "5")
    assert [p.stat().st_mtime_ns for p in watched] == before


def test_verify_gives_the_recipe_score(recipe):
    root, _ = recipe
    enroll, test, recipe_score = (root / "exp/gmm_resnext/scores/test_trials_O.score").read_text().split("\n")[0].split()
    wavs = DataDir.load(root / "data/test").table("wav.scp")
    proc = subprocess.run(["python", "-m", "pipeline", "verify", "--model", "exp/gmm_resnext", wavs[enroll], wavs[test]],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    score = float(proc.stdout.split()[1])
    assert score == pytest.approx(float(recipe_score), abs=1e-4)
    assert "speaker" in proc.stdout and "threshold" in proc.stdout


def test_eval_data_scores_another_corpus_without_retraining(recipe, tmp_path):
    root, _ = recipe
    user = make_corpus(tmp_path, "mycorpus", 2, 3, first_speaker=20)
    write_all_pairs(user, "trials")
    model_mtime = (root / "exp/gmm_resnext/models/final.pt").stat().st_mtime_ns
    proc = run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6", "--eval-data", str(user))
    assert "mycorpus/trials" in proc.stdout
    assert (root / "exp/gmm_resnext/scores/mycorpus_trials.score").is_file()
    assert (root / "exp/gmm_resnext/models/final.pt").stat().st_mtime_ns == model_mtime
    assert "test/trials_O" in (root / "exp/results.md").read_text()  # earlier rows stay in the table


def test_trials_naming_unknown_utterance_is_a_clear_error(recipe):
    root, _ = recipe
    trials = root / "data/test/trials_O"
    original = trials.read_text()
    try:
        trials.write_text(original + "spk006-test00 nobody-utt nontarget\n")
        proc = subprocess.run(["./run.sh", "--config", "tiny.yaml", "--stage", "6"], cwd=root, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode != 0
        assert "nobody-utt" in proc.stderr and "trials_O" in proc.stderr
    finally:
        trials.write_text(original)
