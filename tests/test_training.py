"""Stage 4 on a tiny real recipe (synthetic speech through the real stages 1-3): learning, exact resume, dGMM's two
steps, checkpoints that are safe to load, the sampler's DDP sharding, and 2-process DDP training with torchrun."""
from __future__ import annotations

import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset
from pipeline.dataset.features import FeatureSource
from pipeline.experiment import build_network, resolve_experiment
from pipeline.train import executor
from pipeline.train.trainer import classification_task, train_model
from pipeline.utils.atomic import write_checksum
from pipeline.utils.checkpoint import (CheckpointError, average_state_dicts, epoch_checkpoints, load_checkpoint,
                                       save_checkpoint)
from pipeline.utils.config import apply_overrides

REPO = Path(__file__).resolve().parents[1]


def epoch_losses(exp_dir: Path, prefix: str = "") -> list[float]:
    return [load_checkpoint(p)["stats"]["loss"] for _, p in epoch_checkpoints(exp_dir / "models", prefix)]


def trained_copy(trained_gmm_resnext: Path, exp: Path) -> Path:
    """What `train_model(tiny_recipe.config, "gmm_resnext", exp)` leaves (training is deterministic), copied from
    the session's model instead of trained again."""
    shutil.copytree(trained_gmm_resnext, exp, ignore=shutil.ignore_patterns("embeddings"))
    return exp


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# -- learning --------------------------------------------------------------------------------------------------------
def test_a_few_epochs_on_a_real_archive_lower_the_loss(tiny_recipe, tmp_path):
    cfg = apply_overrides(tiny_recipe.config, ["train.epochs=4"])
    train_model(cfg, "gmm_resnext", tmp_path / "exp")
    losses = epoch_losses(tmp_path / "exp")
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.5, losses
    assert (tmp_path / "exp" / "config.yaml").is_file() and (tmp_path / "exp" / "train.log").is_file()


def gmm_layer_model(tiny_recipe):
    """The `gmm_layer` experiment's network as training starts it: GMM layer filled from the stage-2 GMM."""
    frozen = resolve_experiment(tiny_recipe.config, "gmm_layer", tiny_recipe.data("train"))
    return build_network(frozen["model"], tiny_recipe.root / "exp" / "gmm")


def test_trainable_gmm_layer_equals_the_stage_3_archive_before_training(tiny_recipe):
    model = gmm_layer_model(tiny_recipe)
    mfcc = FeatureSource(tiny_recipe.data("train"), ["mfcc"])
    lgp = FeatureSource(tiny_recipe.data("train"), ["lgp_gi"])
    for utt in mfcc.utts[:4]:
        frames = mfcc.read(utt)[0]
        with torch.no_grad():
            inside = model.gmm_layer(torch.from_numpy(frames.T[None]))[0].T.numpy()
        np.testing.assert_allclose(inside, lgp.read(utt)[0], rtol=1e-4, atol=1e-3)


def test_the_gmm_layer_model_trains_on_mfcc(tiny_recipe, trained_gmm_layer):
    final = load_checkpoint(trained_gmm_layer / "models" / "final.pt")
    initial = gmm_layer_model(tiny_recipe).state_dict()
    # Trainable: the GMM's parameters moved away from the fitted GMM.
    assert not torch.equal(final["model"]["gmm_layer.mean_inv_var"], initial["gmm_layer.mean_inv_var"])


# -- exact resume ----------------------------------------------------------------------------------------------------
def test_resume_equals_an_uninterrupted_run(tiny_recipe, tmp_path):
    cfg = apply_overrides(tiny_recipe.config, ["train.epochs=3"])
    uninterrupted, interrupted = tmp_path / "a", tmp_path / "b"
    train_model(cfg, "gmm_resnext", uninterrupted)
    train_model(cfg, "gmm_resnext", interrupted)
    # Same seed, same model, epoch by epoch.
    assert_same_state(load_checkpoint(uninterrupted / "models" / "epoch_1.pt")["model"],
                      load_checkpoint(interrupted / "models" / "epoch_1.pt")["model"])
    # Killed after epoch 2: the last epoch, the final average and the done marker never got written.
    for name in ("models/epoch_3.pt", "models/final.pt", ".done.train"):
        (interrupted / name).unlink()
    resumed_cfg = apply_overrides(cfg, ["train.num_workers=2"])  # loader workers do not change the data
    train_model(resumed_cfg, "gmm_resnext", interrupted, resume=True)
    assert "resuming epoch 3 of 3" in (interrupted / "train.log").read_text()
    for name in ("epoch_3.pt", "final.pt"):
        a, b = load_checkpoint(uninterrupted / "models" / name), load_checkpoint(interrupted / "models" / name)
        assert_same_state(a["model"], b["model"])
    a, b = (load_checkpoint(d / "models" / "epoch_3.pt") for d in (uninterrupted, interrupted))
    assert_same_state(a["heads"], b["heads"])
    assert a["stats"]["loss"] == b["stats"]["loss"]


def test_resume_under_another_config_trains_afresh_and_replaces_the_model(tiny_recipe, trained_gmm_resnext, tmp_path):
    exp = trained_copy(trained_gmm_resnext, tmp_path / "exp")
    old = load_checkpoint(exp / "models" / "final.pt")
    changed = apply_overrides(tiny_recipe.config, ["models.gmm_resnext.channels=8", "train.epochs=3"])
    train_model(changed, "gmm_resnext", exp, resume=True)
    assert "training afresh" in (exp / "train.log").read_text()
    new = load_checkpoint(exp / "models" / "final.pt")
    assert new["fingerprint"] != old["fingerprint"] and new["config"]["model"]["channels"] == 8
    assert [e for e, _ in epoch_checkpoints(exp / "models")] == [1, 2, 3]
    assert all(load_checkpoint(p)["fingerprint"] == new["fingerprint"] for _, p in epoch_checkpoints(exp / "models"))


def test_a_finished_model_survives_until_its_replacement_is_complete(tiny_recipe, trained_gmm_resnext, tmp_path,
                                                                    monkeypatch):
    exp = trained_copy(trained_gmm_resnext, tmp_path / "exp")
    kept = {p: p.read_bytes() for p in (exp / "models" / "final.pt", exp / "config.yaml", exp / ".done.train")}
    real_save = executor.save_checkpoint

    def crash_after_first_epoch(state, path):
        real_save(state, path)
        raise KeyboardInterrupt("killed half-way")
    monkeypatch.setattr(executor, "save_checkpoint", crash_after_first_epoch)
    changed = apply_overrides(tiny_recipe.config, ["train.epochs=3"])
    with pytest.raises(KeyboardInterrupt):
        train_model(changed, "gmm_resnext", exp, resume=True)
    assert {p: p.read_bytes() for p in kept} == kept  # the old model, its config and its marker, untouched
    load_checkpoint(exp / "models" / "final.pt")  # and still loadable (its hash matches)


def test_a_complete_run_is_not_redone(trained_gmm_resnext, tiny_recipe):
    final = trained_gmm_resnext / "models" / "final.pt"
    before = final.stat().st_mtime_ns
    train_model(tiny_recipe.config, "gmm_resnext", trained_gmm_resnext)
    assert final.stat().st_mtime_ns == before
    assert "nothing to do" in (trained_gmm_resnext / "train.log").read_text()


# -- dGMM-ResNext ----------------------------------------------------------------------------------------------------
def test_dgmm_two_steps_produce_a_256_d_fused_embedding(tiny_recipe, tmp_path):
    from pipeline.embed import load_embedder

    exp_dir = tmp_path / "dgmm"
    train_model(tiny_recipe.config, "dgmm_resnext", exp_dir)
    models = exp_dir / "models"
    assert [e for e, _ in epoch_checkpoints(models)] == [1, 2]
    assert [e for e, _ in epoch_checkpoints(models, "fusion_")] == [1, 2]
    final = load_checkpoint(models / "final.pt")["model"]
    # Step 2 kept the paths frozen at the average of step 1's checkpoints.
    paths = average_state_dicts([load_checkpoint(p)["model"] for _, p in epoch_checkpoints(models)])
    for key, value in paths.items():
        assert torch.equal(final["paths." + key], value), key
    fusion = average_state_dicts([load_checkpoint(p)["model"] for _, p in epoch_checkpoints(models, "fusion_")])
    assert torch.equal(final["fusion.weight"], fusion["weight"]) and final["fusion.weight"].shape == (256, 512)
    embedder = load_embedder(exp_dir)
    assert embedder.input_names == ["lgp_male", "lgp_female"]
    source = FeatureSource(tiny_recipe.data("test"), embedder.input_names)
    full, crops = embedder(source.read(source.utts[0]))
    assert full.shape == (256,) and crops.shape == (3, 256)
    assert np.isfinite(full).all() and np.isfinite(crops).all()


# -- mixed precision -------------------------------------------------------------------------------------------------
def test_stage4_precision_is_float16_with_loss_scaling_on_a_gpu_and_float32_on_a_cpu():
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    amp = executor.stage4_precision({"amp": True}, gpu)
    assert amp == executor.Precision("cuda", torch.float16) and amp.mixed and amp.scaled
    assert not executor.stage4_precision({"amp": False}, gpu).mixed
    assert executor.stage4_precision({"amp": True}, cpu) == executor.Precision("cpu")
    assert not executor.Precision("cpu", torch.bfloat16).scaled   # bfloat16 has float32's range: no scaling


def first_batch(dataset: RandomCropDataset, size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    items = [dataset[(1, i, i)] for i in range(size)]
    return ([torch.stack([item[0][j] for item in items]) for j in range(len(items[0][0]))],
            torch.tensor([item[1] for item in items]))


@pytest.mark.parametrize("name", ["gmm_resnext", "dgmm_resnext"])
def test_a_training_step_under_bfloat16_autocast(tiny_recipe, name):
    """Stage 4's step (`training_step`) under CPU autocast to bfloat16, the path a GPU takes under AMP: convolutions
    run in the low precision, the AAM loss in float32 near the float32 loss, and the float32 weights move."""
    frozen = resolve_experiment(tiny_recipe.config, name, tiny_recipe.data("train"))
    torch.manual_seed(0)
    network = build_network(frozen["model"], tiny_recipe.root / "exp" / "gmm")
    dataset = RandomCropDataset(FeatureSource(tiny_recipe.data("train"), frozen["model"]["inputs"]), crop_frames=50,
                                seed=0)
    task = classification_task(network, frozen, dataset.num_speakers)
    inputs, labels = first_batch(dataset, 8)
    with torch.no_grad():
        float32_loss = task(inputs, labels)[0].item()
    conv_dtypes: set[torch.dtype] = set()
    for module in task.modules():
        if isinstance(module, torch.nn.Conv1d):
            module.register_forward_hook(lambda _module, _inputs, out: conv_dtypes.add(out.dtype))
    before = {k: v.clone() for k, v in task.state_dict().items()}
    precision = executor.Precision("cpu", torch.bfloat16)
    optimizer = torch.optim.Adam([p for p in task.parameters() if p.requires_grad], lr=1e-3)

    loss, correct = executor.training_step(task, inputs, labels, optimizer, precision.grad_scaler(), precision)
    assert conv_dtypes == {torch.bfloat16}
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(float32_loss, rel=0.05)
    assert 0 <= correct.item() <= len(labels)
    after = task.state_dict()
    assert all(after[k].dtype == v.dtype for k, v in before.items())
    moved = [k for k, v in before.items() if v.is_floating_point() and not torch.equal(after[k], v)]
    assert any(k.startswith("embedder.") for k in moved) and any(k.startswith("heads.") for k in moved)


# -- checkpoints -----------------------------------------------------------------------------------------------------
def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match=r"epoch_7\.pt not found"):
        load_checkpoint(tmp_path / "epoch_7.pt")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_checkpoint_is_a_clear_error_naming_the_file(tmp_path, damage):
    path = save_checkpoint({"model": {"w": torch.ones(100, 100)}, "epoch": 1}, tmp_path / "epoch_1.pt")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == "truncated" else b"not a checkpoint" * 50)
    with pytest.raises(CheckpointError, match=r"epoch_1\.pt changed after it was written"):
        load_checkpoint(path)


def test_a_checkpoint_with_flipped_bytes_is_refused(tmp_path):
    """4 KB flipped in the middle still unpickles, into different weights: the recorded hash catches it."""
    path = save_checkpoint({"model": {"w": torch.randn(300, 300)}, "epoch": 1}, tmp_path / "final.pt")
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(b ^ 0xFF for b in data[middle:middle + 4096])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"final\.pt changed after it was written.*sha256"):
        load_checkpoint(path)


def test_a_checkpoint_without_its_hash_is_refused(tmp_path):
    path = tmp_path / "final.pt"
    torch.save({"model": {"w": torch.ones(2)}}, path)
    with pytest.raises(CheckpointError, match=r"final\.pt has no recorded content hash"):
        load_checkpoint(path)


class PlantsAFile:
    """An object whose unpickling would run code: what a malicious checkpoint carries."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_the_loader_never_unpickles_arbitrary_objects(tmp_path):
    planted = tmp_path / "planted"
    path = tmp_path / "epoch_1.pt"
    torch.save({"model": {"w": torch.ones(2)}, "payload": PlantsAFile(planted)}, path)
    write_checksum(path)  # even a file whose hash matches is never unpickled beyond plain data
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_checkpoint(path)
    assert not planted.exists()
    with open(tmp_path / "plain.pt", "wb") as handle:  # a bare pickle, not torch's zip format
        pickle.dump(PlantsAFile(planted), handle, protocol=2)
    write_checksum(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "plain.pt")
    assert not planted.exists()


def test_resume_from_a_corrupt_checkpoint_names_it(tiny_recipe, trained_gmm_resnext, tmp_path):
    trained_copy(trained_gmm_resnext, tmp_path / "exp")
    (tmp_path / "exp" / ".done.train").unlink()
    (tmp_path / "exp" / "models" / "epoch_2.pt").write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"epoch_2\.pt changed after it was written"):
        train_model(tiny_recipe.config, "gmm_resnext", tmp_path / "exp", resume=True)


# -- data: crops and the sampler ------------------------------------------------------------------------------------
def test_crops_depend_only_on_seed_epoch_and_position(tiny_recipe):
    source = FeatureSource(tiny_recipe.data("train"), ["lgp_male", "lgp_female"])
    dataset = RandomCropDataset(source, crop_frames=50, seed=3)
    (male, female), label = dataset[(2, 5, 7)]
    assert male.shape == female.shape == (8, 50) and label == dataset.labels[7]
    again, _ = dataset[(2, 5, 7)]
    assert torch.equal(again[0], male)
    other_epoch, _ = dataset[(3, 5, 7)]
    assert not torch.equal(other_epoch[0], male)
    # Both inputs are cut at the same frames.
    full_male, full_female = source.read(dataset.utts[7])
    start = next(s for s in range(len(full_male) - 49) if np.array_equal(full_male[s:s + 50].T, male.numpy()))
    np.testing.assert_array_equal(full_female[start:start + 50].T, female.numpy())


def test_short_utterances_are_repeated_to_the_crop_length(tiny_recipe):
    source = FeatureSource(tiny_recipe.data("train"), ["lgp_gi"])
    longest = max(len(source.read(u)[0]) for u in source.utts)
    dataset = RandomCropDataset(source, crop_frames=longest * 2 + 1)
    (crop,), _ = dataset[(1, 0, 0)]
    assert crop.shape == (8, longest * 2 + 1)


def test_ddp_shards_are_the_single_process_batches(tiny_recipe):
    single = list(EpochBatchSampler(36, 12, seed=1))
    sampler_rank = [EpochBatchSampler(36, 12, seed=1, rank=r, world_size=2) for r in range(2)]
    shards = [list(s) for s in sampler_rank]
    assert len(single) == 3 and all(len(s) == 3 for s in shards)
    for step, batch in enumerate(single):
        assert shards[0][step] + shards[1][step] == batch
    for s in sampler_rank:
        s.set_epoch(2)
    assert [list(s) for s in sampler_rank] != shards  # a new order every epoch
    with pytest.raises(ValueError, match="divisible"):
        EpochBatchSampler(36, 12, world_size=5)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_two_process_ddp_training_matches_single_process_semantics_and_resumes(tiny_recipe, tmp_path):
    exp_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "pipeline", "train", "--config", str(tiny_recipe.config_path), "--model", "gmm_resnext",
               "--exp-dir", str(exp_dir)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def launch(*extra: str) -> None:
        done = subprocess.run(command + list(extra), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]

    launch()
    log = (exp_dir / "train.log").read_text()
    # One log (rank 0): each epoch once, with the single-process number of samples (36 utterances, batch 12).
    assert log.count("epoch 1/2:") == 1 and log.count("epoch 2/2:") == 1
    assert log.count("2 processes") == 1 and log.count(" 36 samples,") == 2
    assert [e for e, _ in epoch_checkpoints(exp_dir / "models")] == [1, 2]
    assert not list((exp_dir / "models").glob("*.tmp"))
    for name in ("models/epoch_2.pt", "models/final.pt", ".done.train"):
        (exp_dir / name).unlink()
    launch("--resume")
    assert "resuming epoch 2 of 2" in (exp_dir / "train.log").read_text()
    assert (exp_dir / "models" / "final.pt").is_file()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
def test_two_nodes_through_steps_train_sh(tiny_recipe, tmp_path):
    """`./run.sh --nnodes 2 --node-rank R --rdzv HOST:PORT` as two 'nodes' of one process each, on loopback."""
    with socket.socket() as probe:  # a free port for node 0's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    exp_dir = tmp_path / "two_nodes"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([str(REPO / "steps" / "train.sh"), "--gpus", "1", "--nnodes", "2", "--node-rank",
                               str(rank), "--rdzv", f"127.0.0.1:{port}", "--config", str(tiny_recipe.config_path),
                               "--model", "gmm_resnext", "--exp-dir", str(exp_dir), "--resume"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=180)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    log = (exp_dir / "train.log").read_text()
    assert log.count("2 processes") == 1 and log.count(" 36 samples,") == 2
    assert (exp_dir / "models" / "final.pt").is_file()


def test_several_nodes_need_a_rendezvous_address(tiny_recipe, tmp_path):
    done = subprocess.run([str(REPO / "steps" / "train.sh"), "--nnodes", "2", "--config",
                           str(tiny_recipe.config_path), "--model", "gmm_resnext"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--rdzv HOST:PORT" in done.stderr
