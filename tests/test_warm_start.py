"""Training from a finished model: a model's large-margin phase (`train.large_margin` -> `<model>_lm`) and the
fine-tuning of a trained model on other data (`train.init_from`), on the tiny real recipe; and both through run.sh
on a copy of the shared trained recipe."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from pipeline.experiment import model_checksum, resolve_experiment, training_key
from pipeline.features.gmm import DiagGMM
from pipeline.recipe_layout import recipe_vars, trained_models
from pipeline.stages.fit_gmm import fit_gmms
from pipeline.train.trainer import TrainingError, train_model
from pipeline.train.warm_start import SourceModelError
from pipeline.utils.checkpoint import load_checkpoint
from pipeline.utils.config import ConfigError, save_config
from pipeline.utils.datadir import DataDir
from pipeline.utils.stage import StageError, recorded_key
from recipe_dirs import run_recipe

LARGE_MARGIN = {"epochs": 1, "crop_frames": 80, "margin": 0.5, "avg_last": 1, "optimizer": {"lr": 1.0e-4},
                "scheduler": {"T_0": 1, "T_mult": 1, "eta_min": 2.5e-5}}


def copied_model(trained: Path, exp_root: Path) -> Path:
    """The session's trained gmm_resnext at `exp_root/gmm_resnext` (times kept: it stays complete)."""
    return Path(shutil.copytree(trained, exp_root / "gmm_resnext", ignore=shutil.ignore_patterns("embeddings")))


def final(exp_dir: Path) -> dict:
    return load_checkpoint(exp_dir / "models" / "final.pt")


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def with_large_margin(cfg: dict, settings: dict | None = None) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["train"]["large_margin"] = copy.deepcopy(settings or LARGE_MARGIN)
    return cfg


def fine_tune_config(tiny_recipe, source: Path, **model_changes) -> dict:
    """The tiny config fine-tuning gmm_resnext from `source` on the test set: 4 speakers the source never heard."""
    cfg = copy.deepcopy(tiny_recipe.config)
    cfg["data"]["train"] = "test"
    entry = {**cfg["models"]["gmm_resnext"], **model_changes, "train": {"init_from": str(source), "epochs": 1}}
    cfg["models"] = {"gmm_resnext_ft": entry}
    return cfg


# -- the recipe's names ----------------------------------------------------------------------------------------------

def test_each_model_with_a_large_margin_phase_is_followed_by_it(tiny_recipe):
    cfg = with_large_margin(tiny_recipe.config)
    cfg["models"]["resnet34"]["train"] = {"large_margin": None}   # one model can leave it out
    assert trained_models(cfg) == ["gmm_resnext", "gmm_resnext_lm", "gmm_layer", "gmm_layer_lm", "dgmm_resnext",
                                   "resnet34", "gmm_ubm"]   # dGMM (two steps) and the GMM-UBM have none
    assert recipe_vars(cfg)["models"].split() == trained_models(cfg)
    assert trained_models(tiny_recipe.config) == list(tiny_recipe.config["models"])


def test_an_entry_named_like_a_phase_is_refused(tiny_recipe):
    cfg = with_large_margin(tiny_recipe.config)
    cfg["models"]["gmm_resnext_lm"] = cfg["models"]["gmm_resnext"]
    with pytest.raises(ConfigError, match="gmm_resnext_lm"):
        trained_models(cfg)


def test_an_unknown_large_margin_key_is_refused(tiny_recipe, trained_gmm_resnext, tmp_path):
    copied_model(trained_gmm_resnext, tmp_path / "exp")
    cfg = with_large_margin(tiny_recipe.config, {**LARGE_MARGIN, "margn": 0.5})
    with pytest.raises(ConfigError, match="margn"):
        resolve_experiment(cfg, "gmm_resnext_lm", tiny_recipe.data("train"), tmp_path / "exp")


# -- the large-margin phase ------------------------------------------------------------------------------------------

def test_large_margin_phase_continues_the_model_and_leaves_it_alone(tiny_recipe, trained_gmm_resnext, tmp_path):
    base = copied_model(trained_gmm_resnext, tmp_path / "exp")
    train_dir = tiny_recipe.data("train")
    base_key, base_sum = recorded_key(base, "train"), model_checksum(base)
    cfg = with_large_margin(tiny_recipe.config)
    # The section changes nothing of the model it follows: stage 4 keeps it, trained.
    assert training_key(resolve_experiment(cfg, "gmm_resnext", train_dir), train_dir) == base_key
    train_model(cfg, "gmm_resnext", base)
    assert model_checksum(base) == base_sum

    lm_dir = train_model(cfg, "gmm_resnext_lm", tmp_path / "exp" / "gmm_resnext_lm").parents[1]
    lm, source = final(lm_dir), final(base)
    assert lm["config"]["model"]["head"]["margin"] == 0.5 and lm["config"]["train"]["margin_warmup"] is None
    assert lm["config"]["train"]["crop_frames"] == 80
    assert lm["config"]["init_from"] == {"model": str(base), "checksum": base_sum, "kind": "large_margin"}
    assert model_checksum(base) == base_sum and recorded_key(base, "train") == base_key
    # Started from the model and its head (same speakers): one epoch at lr 1e-4 stays close to both.
    assert "its weights and classification head (6 speakers)" in (lm_dir / "train.log").read_text()
    for name, weight in source["model"].items():
        if weight.is_floating_point() and weight.numel() > 100:
            assert cosine(lm["model"][name], weight) > 0.95, name
    assert cosine(lm["heads"]["main.weight"], source["heads"]["main.weight"]) > 0.95
    assert lm["speakers"] == sorted(set(DataDir.load(train_dir).utt2spk.values()))

    # Resumable and keyed: the same config does nothing; another margin redoes only the phase.
    lm_key = recorded_key(lm_dir, "train")
    train_model(cfg, "gmm_resnext_lm", lm_dir)
    assert recorded_key(lm_dir, "train") == lm_key
    other = with_large_margin(tiny_recipe.config, {**LARGE_MARGIN, "margin": 0.4})
    assert training_key(resolve_experiment(other, "gmm_resnext", train_dir), train_dir) == base_key
    assert training_key(resolve_experiment(other, "gmm_resnext_lm", train_dir, tmp_path / "exp"), train_dir) != lm_key
    # A retrained model redoes its phase: the phase's key holds the model's checksum.
    frozen = resolve_experiment(cfg, "gmm_resnext_lm", train_dir, tmp_path / "exp")
    assert training_key(frozen, train_dir) == lm_key
    frozen["init_from"]["checksum"] = "0" * 64
    assert training_key(frozen, train_dir) != lm_key


def test_large_margin_phase_of_a_model_not_trained_under_the_config_is_refused(tiny_recipe, trained_gmm_resnext,
                                                                                tmp_path):
    copied_model(trained_gmm_resnext, tmp_path / "exp")
    cfg = with_large_margin(tiny_recipe.config)
    cfg["models"]["gmm_resnext"]["emb_dim"] = 16   # the model on disk is of another config now
    with pytest.raises(TrainingError, match="run stage 4 .training. for gmm_resnext first"):
        train_model(cfg, "gmm_resnext_lm", tmp_path / "exp" / "gmm_resnext_lm")


# -- fine-tuning on other data ---------------------------------------------------------------------------------------

def test_fine_tuning_on_other_speakers_gets_a_new_head(tiny_recipe, trained_gmm_resnext, tmp_path):
    source = copied_model(trained_gmm_resnext, tmp_path / "source")
    cfg = fine_tune_config(tiny_recipe, source)
    exp_dir = train_model(cfg, "gmm_resnext_ft", tmp_path / "exp" / "gmm_resnext_ft").parents[1]
    tuned, original = final(exp_dir), final(source)
    assert tuned["num_speakers"] == 4 and tuned["heads"]["main.weight"].shape[0] == 4
    assert "a new classification head for 4 speakers" in (exp_dir / "train.log").read_text()
    stem = "stem.0.weight" if "stem.0.weight" in original["model"] else next(iter(original["model"]))
    assert cosine(tuned["model"][stem], original["model"][stem]) > 0.9   # started from the source's weights
    assert tuned["gmms"]["gi"]["means"].equal(original["gmms"]["gi"]["means"])   # the source's front end
    assert tuned["config"]["init_from"]["checksum"] == model_checksum(source)


def test_a_source_of_another_network_is_refused_naming_both(tiny_recipe, trained_gmm_resnext, tmp_path):
    source = copied_model(trained_gmm_resnext, tmp_path / "source")
    cfg = fine_tune_config(tiny_recipe, source, channels=8)
    with pytest.raises(SourceModelError) as err:
        train_model(cfg, "gmm_resnext_ft", tmp_path / "exp" / "gmm_resnext_ft")
    message = str(err.value)
    assert str(source) in message and "gmm_resnext_ft" in message and "channels 16" in message \
        and "channels 8" in message
    assert not (tmp_path / "exp" / "gmm_resnext_ft" / "models").exists()


def test_a_model_is_not_fine_tuned_into_its_own_directory(tiny_recipe, trained_gmm_resnext, tmp_path):
    source = copied_model(trained_gmm_resnext, tmp_path / "exp")
    cfg = fine_tune_config(tiny_recipe, source)
    with pytest.raises(SourceModelError, match="its own directory"):
        train_model(cfg, "gmm_resnext_ft", source)


def test_stage_2_keeps_the_sources_gmm(tiny_recipe, trained_gmm_resnext, tmp_path):
    source = copied_model(trained_gmm_resnext, tmp_path / "source")
    carried = DiagGMM.from_arrays({k: v.numpy() for k, v in final(source)["gmms"]["gi"].items()})
    cfg = fine_tune_config(tiny_recipe, source)
    cfg["gmm"]["models"] = ["gi"]
    # A GMM root of its own: the source's GMM is written there, not fitted on the new data.
    cfg["gmm"]["root"] = str(tmp_path / "gmm_ft")
    fit_gmms(tiny_recipe.data("test"), tmp_path / "gmm_ft", cfg)
    assert DiagGMM.load_npz(tmp_path / "gmm_ft" / "gi" / "gmm.npz").fingerprint() == carried.fingerprint()
    assert "from_model" in yaml.safe_load((tmp_path / "gmm_ft" / "gi" / "info.yaml").read_text())
    # The recipe's own stage-2 GMM, the one the source was trained under: kept as it is, so nothing is redone.
    shutil.copytree(tiny_recipe.root / "exp" / "gmm" / "gi", tmp_path / "gmm" / "gi")
    key = recorded_key(tmp_path / "gmm" / "gi", "gmm")
    fit_gmms(tiny_recipe.data("test"), tmp_path / "gmm", cfg)
    assert recorded_key(tmp_path / "gmm" / "gi", "gmm") == key
    # Another GMM fitted by stage 2 is never replaced by the source's...
    other = copy.deepcopy(tiny_recipe.config)
    other["gmm"].update(models=["gi"], seed=7)
    fit_gmms(tiny_recipe.data("train"), tmp_path / "gmm_other", other)
    with pytest.raises(StageError, match="stage 2 fitted"):
        fit_gmms(tiny_recipe.data("test"), tmp_path / "gmm_other", cfg)
    # ... and stage 4 refuses LGP maps under it, naming the GMM.
    cfg["gmm"]["root"] = str(tmp_path / "gmm_other")
    with pytest.raises(SourceModelError, match="is not the GMM 'gi'"):
        train_model(cfg, "gmm_resnext_ft", tmp_path / "exp" / "gmm_resnext_ft")


# -- through run.sh ----------------------------------------------------------------------------------------------------

@pytest.mark.e2e
def test_run_sh_large_margin_and_fine_tuning(trained_recipe, tmp_path):
    root = trained_recipe.copy_to(tmp_path / "recipe")
    base_final = root / "exp" / "gmm_resnext" / "models" / "final.pt"
    base_time = base_final.stat().st_mtime_ns
    cfg = copy.deepcopy(trained_recipe.config)
    cfg["models"] = {k: cfg["models"][k] for k in ("gmm_resnext", "gmm_ubm")}
    save_config(with_large_margin(cfg), root / "lm.yaml")
    proc = run_recipe(root, "--config", "lm.yaml", "--stage", "4", "--stop-stage", "6")
    assert "exp/gmm_resnext: training is complete and current, nothing to do" in proc.stdout + proc.stderr
    assert base_final.stat().st_mtime_ns == base_time
    results = (root / "exp" / "results.md").read_text()
    assert "| gmm_resnext_lm |" in results and "| gmm_resnext |" in results

    # Fine-tuning on 3 of the 6 training people, under the source's GMM (stage 2 fits nothing new).
    data = DataDir.load(root / "data" / "train")
    people = sorted(set(data.utt2spk.values()))[:3]
    sub = data.subset_speakers(people)
    sub.utt_tables = {k: v for k, v in sub.utt_tables.items() if k in ("utt2spk", "wav.scp")}
    sub.save(root / "data" / "train_few")
    gmm_key = recorded_key(root / "exp" / "gmm" / "gi", "gmm")
    ft = copy.deepcopy(cfg)
    ft["data"]["train"] = "train_few"
    ft["gmm"]["models"] = ["gi"]
    ft["models"] = {"gmm_resnext_few": cfg["models"]["gmm_resnext"]}
    ft["train"]["epochs"] = 1
    save_config(ft, root / "ft.yaml")
    run_recipe(root, "--config", "ft.yaml", "--stage", "1", "--stop-stage", "6", "--init-from", "exp/gmm_resnext")
    assert recorded_key(root / "exp" / "gmm" / "gi", "gmm") == gmm_key
    tuned = final(root / "exp" / "gmm_resnext_few")
    assert tuned["num_speakers"] == 3 and tuned["config"]["init_from"]["model"] == "exp/gmm_resnext"
    assert "| gmm_resnext_few |" in (root / "exp" / "results.md").read_text()
    # Another network under --init-from: refused in one line naming both.
    ft["models"] = {"gmm_resnext_few": {**cfg["models"]["gmm_resnext"], "emb_dim": 16}}
    save_config(ft, root / "ft.yaml")
    proc = run_recipe(root, "--config", "ft.yaml", "--stage", "4", "--stop-stage", "4", "--init-from",
                      "exp/gmm_resnext", ok=False)
    assert "emb_dim" in proc.stderr and "exp/gmm_resnext" in proc.stderr
