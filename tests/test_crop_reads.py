"""The training loader reads only a crop's rows, and they are the frames a whole-utterance read gives; the frozen
GMM layer on MFCC computes stage 3's LGP map (the paper-scale path that skips stage 3's archives)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import pipeline.dataset.features as features_module
from pipeline.dataset.crops import RandomCropDataset
from pipeline.dataset.features import FeatureSource, input_data_dir
from pipeline.experiment import build_network, resolve_experiment
from pipeline.features.mfcc import MfccOptions
from pipeline.stages.fit_gmm import fit_gmms
from pipeline.stages.make_lgp import make_lgp
from pipeline.stages.make_mfcc import make_mfcc
from pipeline.utils.archive import read_scp
from synthetic_corpus import make_corpus

INPUTS = [["mfcc"], ["fbank"], ["lgp_gi"], ["lgp_male", "lgp_female"], ["mfcc", "fbank"]]


@pytest.fixture(scope="module")
def compressed_recipe(tmp_path_factory):
    """Stages 1-3 with Kaldi-compressed MFCC, filterbank and LGP archives."""
    root = tmp_path_factory.mktemp("compressed")
    data = make_corpus(root, "train", 4, 2, seconds=(3.0, 4.0))
    make_mfcc(data, root / "mfcc", root / "log", replace(MfccOptions(), compress=True, fbank=True), nj=1)
    fit_gmms(data, root / "gmm", {"gmm": {"models": ["gi", "male", "female"], "num_components": 4, "max_iter": 20}})
    for gmm in ("gi", "male", "female"):
        make_lgp(data, root / "gmm" / gmm, root / "lgp" / gmm, root / "data" / f"train_lgp_{gmm}",
                 root / "log", nj=1, compress=True)
    return data


def check_crops_equal_whole_reads(set_dir, names):
    source = FeatureSource(set_dir, names)
    for utt in source.utts[:4]:
        whole = source.read(utt)
        frames = source.num_frames(utt)
        assert frames == len(whole[0])
        for start, length in [(0, 50), (frames - 50, 50), (frames // 3, 37), (0, frames)]:
            crops = source.read_crop(utt, start, length)
            for crop, full in zip(crops, whole):
                np.testing.assert_allclose(crop, full[start:start + length], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("names", INPUTS, ids="+".join)
def test_crop_equals_whole_utterance_read(tiny_recipe, names):
    check_crops_equal_whole_reads(tiny_recipe.data("train"), names)


@pytest.mark.parametrize("names", INPUTS, ids="+".join)
def test_crop_equals_whole_utterance_read_compressed(compressed_recipe, names):
    check_crops_equal_whole_reads(compressed_recipe, names)


@pytest.mark.parametrize("names", [["lgp_male", "lgp_female"], ["mfcc"]], ids="+".join)
def test_training_items_read_only_the_crop_rows(tiny_recipe, monkeypatch, names):
    loaded, spans = [], []
    real_load, real_rows = features_module.load, features_module.read_rows
    monkeypatch.setattr(features_module, "load", lambda spec: loaded.append(spec) or real_load(spec))
    monkeypatch.setattr(features_module, "read_rows",
                        lambda spec, a, b, key=None: spans.append((spec, a, b)) or real_rows(spec, a, b, key=key))
    source = FeatureSource(tiny_recipe.data("train"), names)
    dataset = RandomCropDataset(source, crop_frames=50, seed=0)
    feats = {spec for name in names for spec in read_scp(input_data_dir(source.set_dir, name) / "feats.scp").values()}
    for position in range(10):
        crops, _ = dataset[(1, position, position)]
        assert [tuple(c.shape) for c in crops] == [(c.shape[0], 50) for c in crops]
    assert not feats & set(loaded)   # no whole feature matrix is decoded (VAD vectors are)
    feature_spans = [(a, b) for spec, a, b in spans if spec in feats]
    assert feature_spans and all(b - a < 100 for a, b in feature_spans)
    if names[0].startswith("lgp"):   # both maps of dGMM at the same frames
        assert all(feature_spans[i] == feature_spans[i + 1] for i in range(0, len(feature_spans), 2))


def test_frozen_gmm_layer_on_mfcc_equals_stage3_lgp(tiny_recipe):
    cfg = tiny_recipe.config_with(models={"m": {"input": "mfcc", "arch": "gmm_resnext", "channels": 8,
                                                "depths": [1, 1, 1, 1], "emb_dim": 8,
                                                "gmm_layer": {"gmm": "gi", "trainable": False}}})
    frozen = resolve_experiment(cfg, "m", tiny_recipe.data("train"))
    network = build_network(frozen["model"], tiny_recipe.root / "exp" / "gmm")
    mfcc = FeatureSource(tiny_recipe.data("test"), ["mfcc"])
    lgp = FeatureSource(tiny_recipe.data("test"), ["lgp_gi"])
    for utt in mfcc.utts:
        with torch.no_grad():
            on_device = network.gmm_layer(torch.from_numpy(mfcc.read(utt)[0].T[None]))[0].T.numpy()
        np.testing.assert_allclose(on_device, lgp.read(utt)[0], atol=1e-4, rtol=1e-4)
