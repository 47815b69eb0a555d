"""On-the-fly augmentation (`augment.mode: online`, pipeline/dataset/online.py) on the tiny real recipe: without an
augmentation the crops computed from audio are the archives' crops for every input kind; draws are a function of
(seed, epoch, position), whatever the worker or a resume; an augmentation changes the input; bad audio is named;
the recipe trains on the clean set and no stage depends on an offline copy."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from pipeline.augment import AugmentOptions
from pipeline.dataset.crops import EpochBatchSampler, RandomCropDataset, make_loader
from pipeline.dataset.features import FeatureSource
from pipeline.dataset.online import AudioCropSource, OnlineAudioError
from pipeline.experiment import load_gmm, resolve_experiment, training_key
from pipeline.features.lgp import LGPExtractor
from pipeline.features.mfcc import MfccOptions
from pipeline.recipe_layout import recipe_vars, training_dir
from pipeline.train.trainer import train_model
from pipeline.utils.checkpoint import load_checkpoint
from pipeline.utils.config import apply_overrides
from pipeline.utils.datadir import read_table, write_table

ONLINE = ["augment.mode=online"]
KINDS = ("reverb", "noise", "babble", "codec")


def online_source(recipe, names: list[str], probability: float = 0.0, set_dir: Path | None = None,
                  **augment) -> AudioCropSource:
    cfg = recipe.config
    gmms = {g: LGPExtractor(load_gmm(recipe.root / "exp" / "gmm", g)) for g in ("gi", "male", "female")}
    opts = AugmentOptions.from_config({**cfg["augment"], "mode": "online", **augment})
    return AudioCropSource(set_dir or recipe.data("train"), names, MfccOptions.from_config(cfg["features"]), gmms,
                           augment=opts, probability=probability)


@pytest.mark.parametrize("names", [["lgp_gi"], ["mfcc"], ["fbank"], ["lgp_male", "lgp_female"]])
@pytest.mark.parametrize("crop", [50, 4000])   # 4000: longer than every utterance, the repeated path
def test_without_augmentation_the_crops_are_the_archives_crops(tiny_recipe, names, crop):
    archives = RandomCropDataset(FeatureSource(tiny_recipe.data("train"), names), crop_frames=crop, seed=3)
    online = RandomCropDataset(online_source(tiny_recipe, names), crop_frames=crop, seed=3)
    assert online.utts == archives.utts and online.labels == archives.labels
    for index in range(len(archives)):
        (a, label_a), (b, label_b) = archives[(2, index, index)], online[(2, index, index)]
        assert label_a == label_b
        for x, y in zip(a, b):
            assert x.shape == y.shape
            # MFCC and fbank come out bit-exact; LGP differs by the GEMM's rounding only
            torch.testing.assert_close(y, x, rtol=0, atol=2e-5 * (1 + float(x.abs().max())))


def test_draws_depend_on_seed_epoch_and_position_only(tiny_recipe):
    names = ["lgp_gi"]
    first, second = (RandomCropDataset(online_source(tiny_recipe, names, 1.0), crop_frames=50, seed=0)
                     for _ in range(2))
    key = (4, 7, 3)
    assert torch.equal(first[key][0][0], second[key][0][0])   # another instance (a resumed run's) draws the same
    assert not torch.equal(first[key][0][0], first[(5, 7, 3)][0][0])   # another epoch draws anew
    # Batches through 2 loader workers are those of the main process.
    sampler = EpochBatchSampler(len(first), 6, seed=0)
    sampler.set_epoch(2)
    batches = [b for b in make_loader(first, sampler, num_workers=2)]
    direct = [[first[k] for k in keys] for keys in sampler]
    for (inputs, labels), items in zip(batches, direct):
        assert labels.tolist() == [label for _, label in items]
        torch.testing.assert_close(inputs[0], torch.stack([x[0] for x, _ in items]), rtol=0, atol=0)


def test_each_kind_changes_the_input_and_the_mean_is_the_augmented_utterances(tiny_recipe):
    clean = online_source(tiny_recipe, ["mfcc"])
    utt = clean.utts[0]
    reference = clean.read_crop(utt, 5, 40)[0]
    for kind in KINDS:
        source = online_source(tiny_recipe, ["mfcc"], 1.0, types={k: float(k == kind) for k in KINDS})
        changed = [source.read_crop(utt, 5, 40, sample=(1, position))[0] for position in range(3)]
        for crop in changed:
            assert crop.shape == reference.shape and np.isfinite(crop).all()
            assert np.abs(crop - reference).mean() > 0.05 * np.abs(reference).mean(), kind
            # The augmentation's shift of the mean is removed: the crop's mean is the clean crop's.
            np.testing.assert_allclose(crop.mean(axis=0), reference.mean(axis=0), atol=1e-3)
        assert not np.array_equal(changed[0], changed[1]), kind   # each sample draws its own condition


def test_a_share_of_crops_is_augmented(tiny_recipe):
    source = online_source(tiny_recipe, ["mfcc"], 0.5)
    utt = source.utts[1]
    clean = source.read_crop(utt, 0, 30)[0]
    augmented = [not np.array_equal(source.read_crop(utt, 0, 30, sample=(1, p))[0], clean) for p in range(40)]
    assert 10 <= sum(augmented) <= 30


def copied_set(tiny_recipe, tmp_path: Path) -> Path:
    set_dir = tmp_path / "train"
    shutil.copytree(tiny_recipe.data("train"), set_dir)
    shutil.copytree(tiny_recipe.data("train_fbank"), tmp_path / "train_fbank")
    return set_dir


def test_unreadable_audio_names_the_utterance_and_the_file(tiny_recipe, tmp_path):
    set_dir = copied_set(tiny_recipe, tmp_path)
    wavs = read_table(set_dir / "wav.scp")
    utt = sorted(wavs)[0]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not a wave file")
    write_table(set_dir / "wav.scp", {**wavs, utt: str(broken)})
    source = online_source(tiny_recipe, ["mfcc"], set_dir=set_dir)
    with pytest.raises(OnlineAudioError, match=f"{utt}.*broken.wav"):
        source.read_crop(utt, 0, 20)


def test_audio_shorter_than_its_features_is_refused(tiny_recipe, tmp_path):
    set_dir = copied_set(tiny_recipe, tmp_path)
    wavs = read_table(set_dir / "wav.scp")
    utt = sorted(wavs)[1]
    samples, rate = soundfile.read(wavs[utt], dtype="int16")
    short = tmp_path / "short.wav"
    soundfile.write(short, samples[:len(samples) // 2], rate)
    write_table(set_dir / "wav.scp", {**wavs, utt: str(short)})
    source = online_source(tiny_recipe, ["mfcc"], set_dir=set_dir)
    frames = source.num_frames(utt)
    with pytest.raises(OnlineAudioError, match=f"{utt}.*short.wav.*changed since stage 1"):
        source.read_crop(utt, 0, frames)   # read in part
    with pytest.raises(OnlineAudioError, match=f"{utt}.*short.wav.*no samples from .* shorter than"):
        source.read_crop(utt, frames - 20, 20)   # nothing of it there


def test_online_mode_trains_on_the_clean_set_without_a_copy(tiny_recipe):
    offline = dict(tiny_recipe.config, data={**tiny_recipe.config["data"], "train": "train_combined"})
    online = apply_overrides(offline, ONLINE)
    assert recipe_vars(offline)["augment"] == "true" and recipe_vars(offline)["train_set"] == "train_combined"
    assert recipe_vars(online)["augment"] == "false"   # stage 0 writes no copy
    assert recipe_vars(online)["train_set"] == "train"  # stages 1 and 3 process the clean set only
    assert training_dir(online) == tiny_recipe.data("train")


def test_the_training_key_follows_the_mode_and_the_augmentation(tiny_recipe, monkeypatch):
    def key(overrides: list[str]) -> str:
        cfg = apply_overrides(tiny_recipe.config, overrides)
        return training_key(resolve_experiment(cfg, "gmm_resnext", training_dir(cfg)), training_dir(cfg))

    offline, online = key([]), key(ONLINE)
    assert offline != online
    assert online != key(ONLINE + ["augment.probability=0.3"])
    assert online != key(ONLINE + ["augment.snr_db.noise=[5,10]"])
    assert key(ONLINE + ["augment.probability=0.5"]) == online   # copies 1: half the crops, the default
    assert offline == key(["augment.probability=0.3"])   # offline, the online keys change nothing
    # nor what this machine offers: stage 5 on a node whose sox makes no codec checks the key the trainer wrote
    monkeypatch.setattr("pipeline.augment.augmenter.codec_problem", lambda name, sample_rate=16000: "no codec here")
    assert key(ONLINE) == online
    # nor the offline copy's key: switching back reuses stage 0's copy
    base = AugmentOptions.from_config(tiny_recipe.config["augment"])
    assert AugmentOptions.from_config({**tiny_recipe.config["augment"], "mode": "online", "probability": 0.2,
                                       "room_pool": 3}).fingerprint_fields() == base.fingerprint_fields()


def test_online_resume_equals_an_uninterrupted_run(tiny_recipe, tmp_path):
    cfg = apply_overrides(tiny_recipe.config, ONLINE + ["train.epochs=2"])
    uninterrupted, interrupted = tmp_path / "a", tmp_path / "b"
    train_model(cfg, "gmm_resnext", uninterrupted)
    shutil.copytree(uninterrupted, interrupted)
    for name in ("models/epoch_2.pt", "models/final.pt", ".done.train"):
        (interrupted / name).unlink()
    train_model(apply_overrides(cfg, ["train.num_workers=2"]), "gmm_resnext", interrupted, resume=True)
    assert "resuming epoch 2 of 2" in (interrupted / "train.log").read_text()
    a, b = (load_checkpoint(d / "models" / "final.pt")["model"] for d in (uninterrupted, interrupted))
    # what the augmenter found on this machine travels with the model (the training key leaves it out)
    found = load_checkpoint(uninterrupted / "models" / "final.pt")["online augmentation"]
    assert set(found["kinds"]) <= set(KINDS) and found["kinds"] and "left out" in found
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
