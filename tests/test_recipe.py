"""The recipe end to end through run.sh (stages 1-6) on a tiny synthetic corpus, then `verify` and `--eval-data`.

The recipe is a copy of the session's `trained_recipe` (conftest.py; tests/recipe_dirs.py), as run.sh left it: these
tests change it.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.utils.config import save_config
from pipeline.utils.datadir import DataDir
from recipe_dirs import run_recipe as run, write_all_pairs
from synthetic_corpus import make_corpus

pytestmark = pytest.mark.e2e   # the whole recipe, the job engines or the install: not in tests/run.sh --fast

REPO = Path(__file__).resolve().parents[1]
MODELS = ("gmm_resnext", "dgmm_resnext", "gmm_ubm")


def mtimes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in paths}


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, trained_recipe):
    root = trained_recipe.copy_to(tmp_path_factory.mktemp("recipe") / "recipe")
    # The session's recipe also trained resnet34 for test_api: the tests here rerun stages of the three other models,
    # and what they check needs no more.
    cfg = copy.deepcopy(trained_recipe.config)
    cfg["models"] = {k: v for k, v in cfg["models"].items() if k in MODELS}
    save_config(cfg, root / "tiny.yaml")
    # One model on one GMM, for the tests that rerun stages: what they check needs no more, and it halves their time.
    cfg["models"] = {"gmm_resnext": cfg["models"]["gmm_resnext"]}
    cfg["gmm"]["models"] = ["gi"]
    save_config(cfg, root / "one_model.yaml")
    return root, trained_recipe.log


def test_run_sh_produces_results_table(recipe):
    root, log = recipe
    table = (root / "exp" / "results.md").read_text()
    for model in MODELS:
        assert f"| {model} |" in table
        assert (root / "exp" / model / "scores" / "test_trials_O.score").is_file()
    assert "EER" in log and "test/trials_O" in log
    assert (root / "exp" / "det_test_trials_O.png").stat().st_size > 1000


def test_rerun_does_no_work(recipe):
    root, _ = recipe
    watched = [root / "data/test/feats.scp", root / "exp/gmm/gi/gmm.npz", root / "data/test_lgp_gi/feats.scp",
               root / "exp/gmm_resnext/models/final.pt", root / "exp/gmm_resnext/embeddings/test/xvector.scp",
               root / "exp/gmm/ubm/gmm.npz", root / "exp/gmm_ubm/embeddings/test/ubm_test.scp"]
    before = [p.stat().st_mtime_ns for p in watched]
    run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "5")
    assert [p.stat().st_mtime_ns for p in watched] == before


@pytest.mark.parametrize("model", ["gmm_resnext", "gmm_ubm"])
def test_verify_gives_the_recipe_score(recipe, model):
    root, _ = recipe
    enroll, test, recipe_score = (root / f"exp/{model}/scores/test_trials_O.score").read_text().split("\n")[0].split()
    wavs = DataDir.load(root / "data/test").table("wav.scp")
    proc = subprocess.run(["python", "-m", "pipeline", "verify", "--model", f"exp/{model}", wavs[enroll], wavs[test]],
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


def user_set(tmp_path: Path, name: str, **damage: str) -> Path:
    """A user's evaluation set somewhere else: 2 speakers x 3 utterances, all-pairs trials."""
    data = make_corpus(tmp_path, name, 2, 3, first_speaker=20)
    write_all_pairs(data, "trials")
    for table, extra in damage.items():
        (data / table).write_text((data / table).read_text() + extra)
    return data


def test_eval_data_errors_name_the_users_file_and_line(recipe, tmp_path):
    root, _ = recipe
    unknown = user_set(tmp_path / "a", "unknown_utt", trials="spk020-unknown_utt00 nobody nontarget\n")
    proc = run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6", "--eval-data", str(unknown),
               ok=False)
    assert f"{unknown}/trials:16: 'nobody' is not an utterance" in proc.stderr
    duplicate = user_set(tmp_path / "b", "duplicate")
    first = (duplicate / "wav.scp").read_text().splitlines()[0]
    (duplicate / "wav.scp").write_text((duplicate / "wav.scp").read_text() + first + "\n")
    proc = run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "1", "--eval-data", str(duplicate),
               ok=False)
    assert f"{duplicate}/wav.scp:7: duplicate key" in proc.stderr
    assert not (root / "data" / "unknown_utt" / "feats.scp").exists()


def test_an_eval_set_never_replaces_a_set_of_the_recipe(recipe, tmp_path):
    root, _ = recipe
    kept = sorted(p for p in (root / "data" / "test").iterdir() if p.is_file())
    before = {p: p.read_bytes() for p in kept}
    named_test = user_set(tmp_path, "test")
    proc = run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6", "--eval-data", str(named_test),
               ok=False)
    assert "would replace the recipe's own data/test" in proc.stderr
    assert {p: p.read_bytes() for p in kept} == before


def test_trials_of_unusable_utterances_are_counted_in_the_table(recipe, tmp_path):
    root, _ = recipe
    user = user_set(tmp_path, "damaged")
    wav = DataDir.load(user).table("wav.scp")
    broken = sorted(wav)[0]
    Path(wav[broken]).write_bytes(b"RIFF\x00\x00garbage")
    run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6", "--eval-data", str(user))
    assert broken in (root / "data" / "damaged" / "unusable_utts").read_text()
    table = (root / "exp" / "results.md").read_text()
    for model in ("gmm_resnext", "gmm_ubm"):
        row = next(line for line in table.splitlines() if f"| {model} |" in line and "damaged/trials" in line)
        assert "| 10 of 15 |" in row  # 5 of the 15 pairs name the broken utterance
    assert "left out" in (root / "exp" / "log" / "score.log").read_text()


def test_verify_names_its_threshold_and_rejects_bad_audio_in_one_line(recipe, tmp_path):
    root, _ = recipe
    wavs = DataDir.load(root / "data/test").table("wav.scp")
    a, b = sorted(wavs)[:2]
    verify = ["python", "-m", "pipeline", "verify", "--model", "exp/gmm_resnext"]
    proc = subprocess.run(verify + [wavs[a], wavs[b]], cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # By default: the score as a calibrated LLR (stage 6's calibration.json of data.threshold_trials), named, and
    # the decision by Bayes' rule at scoring.p_target: same speaker exactly when the LLR reaches log(99).
    assert "(calibrated on test/trials_O, Bayes decision at p_target 0.01)" in proc.stdout
    fields = proc.stdout.split()
    score, llr = float(fields[1]), float(fields[fields.index("LLR") + 1])
    saved = json.loads((root / "exp/gmm_resnext/calibration.json").read_text())
    record = saved["calibration"]
    assert record["p_target"] == saved["p_target"] == 0.01   # trained at the prior it decides at
    assert llr == pytest.approx(record["scale"] * score + record["offset"], abs=2e-3)
    assert ("same speaker" in proc.stdout) == (record["scale"] * score + record["offset"] >= np.log(99))
    # A list given: its EER threshold decides, and the LLR is still shown.
    proc = subprocess.run(verify + [wavs[a], wavs[b], "--trials", "test/trials_O"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert "(EER threshold on test/trials_O)" in proc.stdout and "LLR" in proc.stdout, proc.stderr[-2000:]
    silent = tmp_path / "silent.wav"
    silent.write_bytes((root / wavs[a]).read_bytes()[:44] + bytes(32000))  # the header of a real wav, then zeros
    for bad in (silent, tmp_path / "missing.wav"):
        bad.touch()
        proc = subprocess.run(verify + [wavs[a], str(bad)], cwd=root, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert str(bad) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_archive_changed_after_its_stage_is_refused_then_redone(recipe):
    root, _ = recipe
    ark = sorted((root / "lgp" / "gi").glob("lgp_test.*.ark"))[0]
    os.utime(ark, ns=(ark.stat().st_atime_ns, ark.stat().st_mtime_ns + 10**9))  # rewritten, as far as anyone can tell
    proc = run(root, "--config", "one_model.yaml", "--stage", "5", "--stop-stage", "5", ok=False)
    assert f"lgp/gi/{ark.name} changed after stage 3 (LGP) wrote it" in proc.stderr
    embeddings = root / "exp/gmm_resnext/embeddings/test/xvector.scp"
    before = embeddings.stat().st_mtime_ns
    run(root, "--config", "one_model.yaml", "--stage", "3", "--stop-stage", "5")
    assert embeddings.stat().st_mtime_ns != before


def test_an_archive_whose_bytes_changed_with_its_mtime_kept_is_refused_then_redone(recipe):
    """conf/demo.yaml's `checks.verify_inputs`: a byte flipped and the time put back (`touch -r`) is caught by the
    stage that reads it and by `validate`; deleting the file, as both say, makes the rerun redo it."""
    root, _ = recipe
    ark = sorted((root / "lgp" / "gi").glob("lgp_test.*.ark"))[0]
    before = ark.stat()
    data = bytearray(ark.read_bytes())
    data[-1] ^= 0x01
    ark.write_bytes(bytes(data))
    os.utime(ark, ns=(before.st_atime_ns, before.st_mtime_ns))
    proc = run(root, "--config", "one_model.yaml", "--stage", "5", "--stop-stage", "5", ok=False)
    assert f"lgp/gi/{ark.name} has sha256" in proc.stderr and "delete it and rerun stage 3 (LGP)" in proc.stderr
    check = subprocess.run(["python", "-m", "pipeline", "validate"], cwd=root, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 1 and f"lgp/gi/{ark.name} has sha256" in check.stdout, check.stdout + check.stderr
    ark.unlink()
    run(root, "--config", "one_model.yaml", "--stage", "3", "--stop-stage", "5")
    check = subprocess.run(["python", "-m", "pipeline", "validate"], cwd=root, capture_output=True, text=True,
                           timeout=300)
    assert check.returncode == 0 and ": 0 problems" in check.stdout, check.stdout + check.stderr


def test_lgp_maps_under_another_configs_gmm_are_refused_by_stage_5(recipe):
    """Two configs with different `gmm.root`s write the same data/<set>_lgp_<gmm> names: the maps another config
    left there must not be embedded by this config's model."""
    root, _ = recipe
    # another GMM (another seed), not the same one fitted again elsewhere: that one would be the model's own
    run(root, "--config", "one_model.yaml", "--stage", "2", "--stop-stage", "2", "--override",
        "gmm.root=exp/gmm_other gmm.seed=1")
    step = subprocess.run(["steps/make_lgp.sh", "--config", "one_model.yaml", "--nj", "1", "data/test",
                           "exp/gmm_other/gi", "lgp/gi_other", "data/test_lgp_gi"], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": ""})
    assert step.returncode == 0, step.stderr[-2000:]
    proc = run(root, "--config", "one_model.yaml", "--stage", "5", "--stop-stage", "5", ok=False)
    assert "data/test_lgp_gi holds LGP maps under the GMM" in proc.stderr and "exp/gmm_other/gi" in proc.stderr
    run(root, "--config", "one_model.yaml", "--stage", "3", "--stop-stage", "5")   # the model's GMM again: fine


def written_paths(root: Path) -> list[Path]:
    """The files the recipe writes paths or keys into: tables, done markers, GMM records, frozen configs, rows."""
    patterns = ("*.scp", "gmm_key", ".done.*", "config.yaml", "*.json")
    return [p for pattern in patterns for p in root.glob(f"**/{pattern}") if p.is_file()]


def stage_outputs(root: Path) -> list[Path]:
    """What stages 1-6 wrote (but the results table, written anew from the rows on every run)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".log" and p != root / "exp/results.md")


@pytest.fixture(scope="module")
def moved(recipe, tmp_path_factory):
    """The trained recipe copied elsewhere as a user moves an experiment (`cp -a`), the original out of reach."""
    root, _ = recipe
    run(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6")   # current, after the tests above
    copy = tmp_path_factory.mktemp("moved") / "recipe"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    return copy


def test_a_current_model_skips_stages_4_and_6_without_importing_torch(moved):
    # A rerun that has nothing to do decides so in a blink: torch alone takes ~1.6 s to import, per model and stage.
    probe = ("import runpy, sys\n"
             "try:\n    runpy.run_module('pipeline', run_name='__main__')\n"
             "except SystemExit as end:\n    assert not end.code, end.code\n"
             "print('torch imported:', 'torch' in sys.modules)")
    for args in (["train", "--config", "tiny.yaml", "--model", "gmm_resnext", "--exp-dir", "exp/gmm_resnext",
                  "--resume"],
                 ["score", "--config", "tiny.yaml", "--exp-root", "exp", "--models", " ".join(MODELS), "--sets",
                  "test", "--cohort-set", "train"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=moved, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "nothing to do" in proc.stderr and "torch imported: False" in proc.stdout, (args[0], proc.stdout)


def test_a_copied_checkout_reads_its_own_files_and_redoes_nothing(recipe, moved, trained_recipe):
    root, _ = recipe
    earlier = [root, trained_recipe.root]   # every place the recipe was in: where run.sh trained it, then here
    assert [p for p in written_paths(moved) if any(str(d) in p.read_text(errors="replace") for d in earlier)] == []
    before = mtimes(stage_outputs(moved))
    hidden = [d.with_name(d.name + "_away") for d in earlier]
    for place, away in zip(earlier, hidden):
        place.rename(away)   # whatever the copy needs must be its own
    try:
        proc = run(moved, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6")
    finally:
        for place, away in zip(earlier, hidden):
            away.rename(place)
    assert mtimes(stage_outputs(moved)) == before
    assert "nothing to do" in proc.stdout + proc.stderr
    assert (moved / "exp/results.md").read_text() == (root / "exp/results.md").read_text()
    # a changed input still redoes what depends on it, and only that
    wav = moved / DataDir.load(moved / "data/test").table("wav.scp")["spk006-test00"]
    wav.write_bytes((moved / DataDir.load(moved / "data/test").table("wav.scp")["spk007-test00"]).read_bytes())
    run(moved, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "1")
    after = mtimes(stage_outputs(moved))
    assert after[moved / "data/test/feats.scp"] != before[moved / "data/test/feats.scp"]
    assert after[moved / "data/train/feats.scp"] == before[moved / "data/train/feats.scp"]


def verify(recipe_dir: Path, *args: str) -> subprocess.CompletedProcess:
    wavs = DataDir.load(recipe_dir / "data/test").table("wav.scp")
    return subprocess.run(["python", "-m", "pipeline", "verify", "--model", "exp/gmm_resnext", wavs["spk006-test01"],
                           wavs["spk007-test01"], *args], cwd=recipe_dir, capture_output=True, text=True, timeout=300)


def test_a_model_scores_under_the_gmms_it_was_trained_on(moved):
    before = verify(moved)
    assert before.returncode == 0, before.stderr[-2000:]
    run(moved, "--config", "tiny.yaml", "--stage", "2", "--stop-stage", "2", "--override", "gmm.seed=1")
    after = verify(moved)
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.stdout == before.stdout   # final.pt carries its GMMs: a refitted exp/gmm changes nothing
    # stage 5 does not embed maps made under the refitted GMM with the model trained on the old one
    run(moved, "--config", "tiny.yaml", "--stage", "3", "--stop-stage", "3", "--override", "gmm.seed=1")
    proc = run(moved, "--config", "tiny.yaml", "--stage", "5", "--stop-stage", "5", ok=False)
    assert "run stage 4 (training)" in proc.stderr


def test_a_retrained_model_refuses_the_old_models_threshold_and_cohort(moved):
    run(moved, "--config", "tiny.yaml", "--stage", "2", "--stop-stage", "3")   # the model's own GMMs and maps again
    train = subprocess.run(["steps/train.sh", "--config", "tiny.yaml", "-o", "train.epochs=1", "--model",
                            "gmm_resnext", "--exp-dir", "exp/gmm_resnext", "--resume"], cwd=moved,
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-2000:]
    for args in ((), ("--threshold", "0.5")):
        proc = verify(moved, *args)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert "extracted with another final.pt" in proc.stderr
    # the new model's own cohort embeddings: its cohort mean again (its threshold needs stage 6 on its test set)
    extract = subprocess.run(["steps/extract.sh", "--config", "tiny.yaml", "-o", "train.epochs=1", "--exp-dir",
                              "exp/gmm_resnext", "--data-dir", "data/train", "--out-dir",
                              "exp/gmm_resnext/embeddings/train", "--no-crops"], cwd=moved, capture_output=True,
                             text=True, timeout=300)
    assert extract.returncode == 0, extract.stderr[-2000:]
    assert verify(moved, "--threshold", "0.5").returncode == 0
    proc = verify(moved)   # the calibration stage 6 made belongs to the old model
    assert proc.returncode != 0 and "calibration.json was made with another final.pt" in proc.stderr


def test_features_of_another_config_are_refused_by_the_stages_that_read_them(moved):
    run(moved, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "1", "--override", "features.preemph=0.9")
    proc = run(moved, "--config", "tiny.yaml", "--stage", "3", "--stop-stage", "4", "--override",
               "lgp.compress=true", ok=False)
    assert "under another `features:` config" in proc.stderr and "rerun stage 1" in proc.stderr


# The last tests of the module: they change the recipe's config for good.
def test_a_changed_gmm_setting_keeps_stage_1_and_redoes_2_to_5(recipe):
    root, _ = recipe
    stage1 = [root / "data/train/feats.scp", root / "data/test/vad.scp", *sorted((root / "mfcc").glob("*.ark"))]
    later = [root / "exp/gmm/gi/gmm.npz", root / "data/test_lgp_gi/feats.scp", root / "data/train_lgp_gi/feats.scp",
             root / "exp/gmm_resnext/models/final.pt", root / "exp/gmm_resnext/embeddings/test/xvector.scp",
             root / "exp/gmm_resnext/embeddings/train/xvector.scp"]
    before1, before2 = mtimes(stage1), mtimes(later)
    run(root, "--config", "one_model.yaml", "--stage", "1", "--stop-stage", "5", "--override", "gmm.max_iter=7")
    assert mtimes(stage1) == before1
    after = mtimes(later)
    assert all(after[p] != before2[p] for p in later), [p for p in later if after[p] == before2[p]]


def test_a_changed_vad_threshold_redoes_1_to_5(recipe):
    root, _ = recipe
    watched = [root / "data/train/feats.scp", root / "data/test/vad.scp", root / "exp/gmm/gi/gmm.npz",
               root / "data/test_lgp_gi/feats.scp", root / "exp/gmm_resnext/models/final.pt",
               root / "exp/gmm_resnext/embeddings/test/xvector.scp",
               root / "exp/gmm_resnext/embeddings/train/xvector.scp"]
    before = mtimes(watched)
    overrides = "gmm.max_iter=7 features.vad_energy_threshold=4.5"
    run(root, "--config", "one_model.yaml", "--stage", "1", "--stop-stage", "5", "--override", overrides)
    after = mtimes(watched)
    assert all(after[p] != before[p] for p in watched), [p for p in watched if after[p] == before[p]]
    run(root, "--config", "one_model.yaml", "--stage", "1", "--stop-stage", "5", "--override", overrides)
    assert mtimes(watched) == after  # and the same config again redoes nothing
