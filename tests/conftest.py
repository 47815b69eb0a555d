"""Shared fixtures: a tiny real recipe (stages 0-3 run by the real code on synthetic speech), a model trained on it,
and, for the end-to-end tests, one recipe trained through run.sh.

`tiny_recipe`  session-scoped; a directory with data/{train,test}[_lgp_{gi,male,female}], exp/gmm/{gi,male,female},
               and `config` (the demo config with tiny `models:`/`train:`/`extract:` sections; `config_path` is the
               same as YAML). About 5 s to build.
`trained_gmm_resnext`  session-scoped; exp dir of the tiny `gmm_resnext` of that config trained for 2 epochs.
`trained_gmm_layer`  session-scoped; the same for `gmm_layer` (a trainable GMM layer on MFCC).
`trained_recipe`  session-scoped; a recipe directory (tests/recipe_dirs.py) through `run.sh` stages 1-6 once: the
               synthetic train (6 speakers x 5) and test (4 x 3) sets, the test set joined by 4 flite voices x 3
               (where flite is installed), four tiny models. Never changed by a test: one that changes it works on a
               copy.
"""
from __future__ import annotations

import copy
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from recipe_dirs import add_flite_voices, copy_recipe, link_recipe, run_recipe, write_all_pairs  # noqa: E402
from synthetic_corpus import make_corpus  # noqa: E402

TINY_RESNEXT = {"channels": 16, "depths": [1, 1, 1, 1], "pool_bottleneck": 8}


@dataclass
class TinyRecipe:
    root: Path
    config: dict[str, Any]
    config_path: Path

    def data(self, name: str) -> Path:
        return self.root / "data" / name

    def config_with(self, **sections: Any) -> dict[str, Any]:
        """A deep copy of the config with whole top-level sections replaced."""
        cfg = copy.deepcopy(self.config)
        cfg.update(copy.deepcopy(sections))
        return cfg


def tiny_config(root: Path) -> dict[str, Any]:
    from pipeline.utils.config import load_config

    gmm_root = root / "exp" / "gmm"
    cfg = load_config(REPO / "conf" / "demo.yaml")
    cfg["data"] = {"root": str(root / "data"), "train": "train", "test": ["test"]}
    cfg["gmm"].update(num_components=8, max_iter=100, max_frames=20000, root=str(gmm_root),
                      ubm={"num_components": 8, "num_ceps": 10})
    cfg["models"] = {
        "gmm_resnext": {"input": "lgp_gi", "arch": "gmm_resnext", **TINY_RESNEXT, "emb_dim": 32},
        "gmm_layer": {"input": "mfcc", "arch": "gmm_resnext", **TINY_RESNEXT, "emb_dim": 32,
                      "gmm_layer": {"gmm": "gi", "trainable": True}},
        "dgmm_resnext": {"inputs": ["lgp_male", "lgp_female"], "arch": "dgmm_resnext", **TINY_RESNEXT,
                         "emb_dim": 256},
        "resnet34": {"input": "mfcc", "arch": "resnet34", "base_channels": 4, "emb_dim": 32},
        "gmm_ubm": {"input": "mfcc", "arch": "gmm_ubm", "gmm": "ubm", "relevance": 16},
    }
    cfg["train"] = {"epochs": 2, "batch_size": 12, "crop_frames": 50, "num_workers": 0, "avg_last": 2,
                    "optimizer": {"lr": 0.005, "weight_decay": 2e-5},
                    "scheduler": {"T_0": 10, "T_mult": 2, "eta_min": 1e-5},
                    "progress": False, "fusion": {"epochs": 2, "batch_size": 24, "crops_per_utt": 2}}
    cfg["extract"] = {"crop_frames": 60, "num_crops": 3, "batch_size": 8}
    return cfg


@pytest.fixture(scope="session")
def tiny_recipe(tmp_path_factory: pytest.TempPathFactory) -> TinyRecipe:
    from pipeline.stages.fit_gmm import fit_gmms
    from pipeline.stages.make_lgp import make_lgp
    from pipeline.stages.make_mfcc import make_mfcc
    from pipeline.features.mfcc import MfccOptions
    from pipeline.utils.config import save_config

    root = tmp_path_factory.mktemp("tiny_recipe")
    cfg = tiny_config(root)
    opts = MfccOptions.from_config(cfg["features"])
    sets = {"train": make_corpus(root, "train", 6, 6), "test": make_corpus(root, "test", 4, 3, first_speaker=6)}
    for name, data_dir in sets.items():
        make_mfcc(data_dir, root / "mfcc", root / "exp" / "make_mfcc" / name, opts, nj=1)
    fit_gmms(sets["train"], root / "exp" / "gmm", cfg)
    for name, data_dir in sets.items():
        for gmm in ("gi", "male", "female"):  # the ubm is read as MFCC, never as LGP
            make_lgp(data_dir, root / "exp" / "gmm" / gmm, root / "lgp" / gmm, root / "data" / f"{name}_lgp_{gmm}",
                     root / "exp" / "make_lgp" / f"{name}_{gmm}", nj=1)
    config_path = root / "tiny.yaml"
    save_config(cfg, config_path)
    return TinyRecipe(root=root, config=cfg, config_path=config_path)


@pytest.fixture(scope="session")
def trained_gmm_resnext(tiny_recipe: TinyRecipe) -> Path:
    from pipeline.train.trainer import train_model

    exp_dir = tiny_recipe.root / "exp" / "gmm_resnext"
    train_model(tiny_recipe.config, "gmm_resnext", exp_dir)
    return exp_dir


@pytest.fixture(scope="session")
def trained_gmm_layer(tiny_recipe: TinyRecipe) -> Path:
    from pipeline.train.trainer import train_model

    exp_dir = tiny_recipe.root / "exp" / "gmm_layer"
    train_model(tiny_recipe.config, "gmm_layer", exp_dir)
    return exp_dir


@dataclass
class TrainedRecipe:
    root: Path                # as run.sh left it: read it, or `copy_to` a place of the test's own to change it
    config: dict[str, Any]    # root/tiny.yaml
    log: str                  # run.sh's output (stdout)

    def copy_to(self, dest: Path) -> Path:
        return copy_recipe(self.root, dest)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: the `longest` tests, then the other end-to-end ones, then the rest, each in collection order.
    tests/run.sh spreads them with `--dist worksteal`: a worker that runs out of tests takes half of another's queue,
    so no test of minutes starts last to run alone while the other cores idle."""
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("longest"):
            return 0
        return 1 if item.get_closest_marker("e2e") else 2
    items.sort(key=rank)


TRAINED_MODELS = ("gmm_resnext", "dgmm_resnext", "resnet34", "gmm_ubm")


@pytest.fixture(scope="session")
def trained_recipe(tmp_path_factory: pytest.TempPathFactory) -> TrainedRecipe:
    """Trained once per test run: under pytest-xdist (tests/run.sh) the first worker that asks trains it in the
    run's shared temporary directory while the others wait on a lock, then all read it."""
    from filelock import FileLock

    from pipeline.utils.config import load_config

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root, log = shared / "trained_recipe", shared / "trained_recipe.log"
    with FileLock(str(shared / "trained_recipe.lock")):
        if not log.is_file():   # written last: a recipe whose build failed is built again, never trusted
            run_log = build_trained_recipe(root)
            log.write_text(run_log)
    return TrainedRecipe(root=root, config=load_config(root / "tiny.yaml"), log=log.read_text())


def build_trained_recipe(root: Path) -> str:
    """`root` made a recipe of the synthetic corpus (and the flite voices) with the four TRAINED_MODELS, through
    run.sh stages 1-6; returns run.sh's output."""
    from pipeline.utils.config import save_config

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    link_recipe(root)
    make_corpus(root, "train", 6, 5, relative=True)
    test = make_corpus(root, "test", 4, 3, first_speaker=6, relative=True)
    if shutil.which("flite"):   # test_api's real synthesised speech; without flite, test_api is skipped
        # in the test set, not a set of their own: every set costs each stage and each model a step of its own
        add_flite_voices(test, root)
    write_all_pairs(test)
    cfg = tiny_config(root)
    # threshold_trials: stage 6 calibrates verify's LLRs on it and identify's on its set's people
    cfg["data"] = {"root": "data", "train": "train", "test": ["test"], "threshold_trials": "test/trials_O"}
    cfg["models"] = {name: cfg["models"][name] for name in TRAINED_MODELS}
    cfg["models"]["resnet34"]["input"] = "fbank"
    cfg["gmm"]["root"] = "exp/gmm"
    cfg.pop("augment", None)
    cfg["speed_perturb"] = []
    save_config(cfg, root / "tiny.yaml")
    return run_recipe(root, "--config", "tiny.yaml", "--stage", "1", "--stop-stage", "6", "--nj", "2").stdout
