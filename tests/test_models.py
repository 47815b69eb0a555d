"""Models, GMM layer and heads: shapes, sizes, agreement with independent computations, and that they train."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.mixture import GaussianMixture

from pipeline.models import (AAMSoftmax, MarginScheduler, TrainableGMMLayer, build_head, build_model,
                             count_parameters)
from pipeline.systems import SYSTEMS
from sklearn_gmm import weighted_log_prob

TINY_RESNEXT = {"channels": 16, "depths": [1, 1, 2, 1], "pool_bottleneck": 8, "emb_dim": 32}
TINY_CONFIGS = {
    "gmm_resnext": {"arch": "gmm_resnext", "in_channels": 24, **TINY_RESNEXT},
    "plain_mfcc": {"arch": "gmm_resnext", "in_channels": 13, **TINY_RESNEXT},
    "dgmm_resnext": {"arch": "dgmm_resnext", "in_channels": 24, **TINY_RESNEXT},
    "resnet34": {"arch": "resnet34", "feat_dim": 20, "base_channels": 4, "emb_dim": 32},
    "ecapa_tdnn": {"arch": "ecapa_tdnn", "feat_dim": 20, "channels": 32, "mfa_channels": 48,
                   "pool_bottleneck": 8, "emb_dim": 32},
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _input(model, batch: int, frames: int):
    x = torch.randn(batch, model.input_dim, frames)
    return (x, torch.randn_like(x)) if "DGMM" in type(model).__name__ else x


@pytest.mark.parametrize("arch", sorted(a for a, s in SYSTEMS.items() if s.network))
def test_every_registered_system_is_what_its_entry_says(arch):
    """The registry is the one place stages learn a system from: its input size key sizes the input, its GMM layer
    paths hold GMM layers, and a two-step system has the paths and fusion stage 4 trains in turn."""
    system = SYSTEMS[arch]
    config = next(c for c in TINY_CONFIGS.values() if c["arch"] == arch)
    size = config[system.input_size_key]
    layered = {key: {"num_components": size, "feat_dim": 5, "trainable": True} for key, _ in system.gmm_layers}
    assert build_model(config).input_dim == size
    if layered:
        model = build_model({**config, **layered})
        for _, path in system.gmm_layers:
            assert isinstance(model.get_submodule(path), TrainableGMMLayer)
    if system.training == "two_step":
        model = build_model(config)
        assert set(model.paths) == {"male", "female"} and model.fusion.in_features == 2 * model.emb_dim
    with pytest.raises(ValueError, match="unknown arch"):
        build_model({**config, "arch": arch + "_typo"})


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_every_arch_embeds_batches_of_any_length(name):
    model = build_model(TINY_CONFIGS[name])
    assert model(_input(model, 2, 50)).shape == (2, 32)  # training mode
    model.eval()
    with torch.no_grad():
        for batch, frames in ((1, 137), (3, 50), (2, 7)):
            embedding = model(_input(model, batch, frames))
            assert embedding.shape == (batch, model.emb_dim)
            assert torch.isfinite(embedding).all()


def test_paper_size_gmm_resnext_has_14_9_million_parameters():
    with torch.device("meta"):  # count without allocating or initialising
        network = build_model({"arch": "gmm_resnext", "in_channels": 512, "channels": 512, "depths": [3, 3, 9, 3]})
        gmm_layer = TrainableGMMLayer(512, 80)
    assert abs(count_parameters(network) - 14.9e6) / 14.9e6 < 0.02
    assert abs(count_parameters(network) + count_parameters(gmm_layer) - 14.9e6) / 14.9e6 < 0.02


def test_baseline_sizes_match_their_published_figures():
    with torch.device("meta"):
        resnet = build_model({"arch": "resnet34", "feat_dim": 80, "emb_dim": 256})
        ecapa_512 = build_model({"arch": "ecapa_tdnn", "channels": 512, "emb_dim": 192})
        ecapa_1024 = build_model({"arch": "ecapa_tdnn", "channels": 1024, "emb_dim": 192})
    assert count_parameters(resnet) == pytest.approx(6.63e6, rel=0.01)  # WeSpeaker ResNet34
    assert count_parameters(ecapa_512) == pytest.approx(6.2e6, rel=0.02)  # ECAPA-TDNN paper, table 1
    assert count_parameters(ecapa_1024) == pytest.approx(14.7e6, rel=0.02)


def test_without_mfa_only_the_last_stage_is_pooled():
    with_mfa = build_model(TINY_CONFIGS["gmm_resnext"])
    without = build_model({**TINY_CONFIGS["gmm_resnext"], "mfa": False})
    x = torch.randn(2, 24, 30)
    assert with_mfa.frame_features(x).shape == (2, 4 * 16, 30)
    assert without.frame_features(x).shape == (2, 16, 30)
    assert without.embedding.in_features == 2 * 16 and with_mfa.embedding.in_features == 2 * 4 * 16
    assert without(x).shape == (2, 32)


def _fitted_gmm(num_components: int = 6, feat_dim: int = 5):
    rng = np.random.default_rng(0)
    frames = np.concatenate([rng.normal(loc, scale, size=(100, feat_dim))
                             for loc, scale in ((-2.0, 0.5), (0.0, 1.0), (3.0, 2.0))])
    gmm = GaussianMixture(num_components, covariance_type="diag", random_state=0).fit(frames)
    lgp = weighted_log_prob(gmm, frames)  # (T, N), float64
    params = {"weights": gmm.weights_, "means": gmm.means_, "variances": gmm.covariances_,
              "lgp_mean": lgp.mean(axis=0), "lgp_std": lgp.std(axis=0)}
    return frames, lgp, params


def test_gmm_layer_equals_sklearn_weighted_log_prob():
    frames, lgp, params = _fitted_gmm()
    expected = (lgp - params["lgp_mean"]) / params["lgp_std"]
    layer = TrainableGMMLayer.from_params(**params)
    mfcc = torch.from_numpy(frames.T.astype(np.float32))[None]  # (1, D, T)
    with torch.no_grad():
        got = layer(mfcc)[0].T.numpy()
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_gmm_layer_filled_from_a_gmm_trains_inside_gmm_resnext():
    _, _, params = _fitted_gmm()
    size = {"num_components": 6, "feat_dim": 5}
    model = build_model({"arch": "gmm_resnext", "gmm_layer": {**size, "trainable": True}, **TINY_RESNEXT})
    model.gmm_layer.set_gmm(**params)
    assert model.input_dim == 5 and model.stem[0].in_channels == 6
    model(torch.randn(2, 5, 40)).pow(2).sum().backward()
    for parameter in (model.gmm_layer.log_inv_var, model.gmm_layer.mean_inv_var, model.gmm_layer.log_weights):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0

    frozen = build_model({"arch": "gmm_resnext", "gmm_layer": {**size, "trainable": False}, **TINY_RESNEXT})
    assert count_parameters(frozen.gmm_layer, trainable_only=True) == 0


def test_gmm_layer_rejects_bad_inputs():
    _, _, params = _fitted_gmm()
    with pytest.raises(ValueError, match="does not fit a layer of 4 x 5"):
        TrainableGMMLayer(4, 5).set_gmm(**params)
    with pytest.raises(ValueError, match="num_components"):
        build_model({"arch": "gmm_resnext", "gmm_layer": {"npz": "gmm.npz"}, **TINY_RESNEXT})
    with pytest.raises(ValueError, match="positive"):
        TrainableGMMLayer.from_params(**{**params, "variances": -params["variances"]})
    with pytest.raises(ValueError, match="5-dim"):
        TrainableGMMLayer.from_params(**params)(torch.randn(1, 7, 10))


def test_factory_names_bad_configs():
    with pytest.raises(ValueError, match="unknown arch 'resnext9000'"):
        build_model({"arch": "resnext9000"})
    with pytest.raises(ValueError, match="chanels"):
        build_model({"arch": "resnet34", "chanels": 8})
    with pytest.raises(ValueError, match="no 'arch'"):
        build_model({"channels": 8})


def test_adam_steps_lower_the_aam_loss():
    model = build_model(TINY_CONFIGS["gmm_resnext"])
    head = build_head({"type": "aam_softmax", "margin": 0.2, "scale": 30}, model.emb_dim, num_classes=4)
    optimizer = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
    x, labels = torch.randn(8, 24, 40), torch.arange(8) % 4
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(head(model(x), labels), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dgmm_two_step_api():
    model = build_model(TINY_CONFIGS["dgmm_resnext"])
    x_pair = (torch.randn(3, 24, 45), torch.randn(3, 24, 45))
    e_male, e_female = model.path_embeddings(x_pair)
    assert e_male.shape == e_female.shape == (3, 32)
    assert model.fuse(e_male, e_female).shape == (3, 32)
    assert model(x_pair).shape == (3, 32)
    assert type(model.paths["male"]).__name__ == "GMMResNext"

    model.freeze_paths()
    model.train()
    assert count_parameters(model.paths, trainable_only=True) == 0
    assert not any(module.training for module in model.paths.modules())
    assert count_parameters(model, trainable_only=True) == 2 * 32 * 32 + 32  # the fusion layer only


def test_aam_target_logit_is_scaled_cosine_of_angle_plus_margin():
    head = AAMSoftmax(emb_dim=8, num_classes=5, margin=0.2, scale=30.0)
    emb, labels = torch.randn(4, 8), torch.tensor([0, 3, 3, 1])
    logits = head(emb, labels).detach().double().numpy()

    e = emb.double().numpy()
    w = head.weight.detach().double().numpy()
    cosine = (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
    expected = 30.0 * cosine
    rows = np.arange(4)
    expected[rows, labels.numpy()] = 30.0 * np.cos(np.arccos(cosine[rows, labels.numpy()]) + 0.2)
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    assert (logits[rows, labels.numpy()] < 30.0 * cosine[rows, labels.numpy()]).all()

    np.testing.assert_allclose(head(emb).detach().numpy(), 30.0 * cosine, atol=1e-4)  # no labels, no margin
    head.set_margin(0.0)
    np.testing.assert_allclose(head(emb, labels).detach().numpy(), 30.0 * cosine, atol=1e-4)


def test_margin_scheduler_ramps_linearly():
    head = AAMSoftmax(8, 5, margin=0.2)
    scheduler = MarginScheduler(head, final_margin=0.2, increase_start_epoch=2, fix_start_epoch=6)
    assert [scheduler.margin_at(e) for e in (0, 2, 3, 4, 6, 10)] == pytest.approx([0, 0, 0.05, 0.1, 0.2, 0.2])
    assert scheduler.step(5.0) == pytest.approx(0.15) and head.margin == pytest.approx(0.15)
    emb, labels = torch.randn(3, 8), torch.tensor([0, 4, 2])   # and the logits carry the new margin
    with torch.no_grad():
        theta = torch.arccos(head.cosine(emb)[torch.arange(3), labels]).double()
        target = head(emb, labels)[torch.arange(3), labels].double()
    np.testing.assert_allclose(target.numpy(), (head.scale * torch.cos(theta + 0.15)).numpy(), atol=1e-4)


def test_softmax_head_and_bad_head_names():
    head = build_head({"type": "softmax"}, emb_dim=8, num_classes=3)
    assert head(torch.randn(2, 8), torch.tensor([0, 1])).shape == (2, 3)
    with pytest.raises(ValueError, match="unknown head"):
        build_head({"type": "arcface++"}, 8, 3)


def test_dgmm_paths_with_gmm_layers_share_one_mfcc_input():
    layer = {"num_components": 6, "feat_dim": 5, "trainable": False}
    model = build_model({"arch": "dgmm_resnext", "male_gmm_layer": layer, "female_gmm_layer": layer, **TINY_RESNEXT})
    assert model.input_dim == 5
    assert model(torch.randn(2, 5, 33)).shape == (2, 32)
