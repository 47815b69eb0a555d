"""An experiment: one entry of a config's `models:` section, resolved into the frozen config that stage 4 trains
with and writes to `exp/<model>/config.yaml` (and into the final checkpoint), and what follows from it: the network
it builds, the inputs it reads, whether it reads voiced frames only, and the key of a finished training run.

A `models:` entry holds the network's constructor arguments (`arch` and its kwargs, see `pipeline/models/`) plus
`input:` (or `inputs:`), and optionally `head:`, `train:` and `extract:`, which override the config's sections of
those names for this model. A GMM layer is named by the stage-2 GMM it starts from:
`gmm_layer: {gmm: gi, trainable: true}` (dGMM: `male_gmm_layer`, `female_gmm_layer`); the frozen config adds its
size, so that a trained model is rebuilt from its checkpoint alone.

What each `arch` is (network or not, how it trains, what stage 5 writes) comes from `pipeline/systems.py`. The
classical system is an entry too: `{arch: gmm_ubm, input: mfcc, gmm: ubm, relevance: 16}` names the stage-2 GMM it
adapts (its `num_ceps` says which cepstra it models); it has nothing to train, and stages 5 and 6 compute
and score its MAP statistics instead of embeddings (`pipeline/models/gmm_ubm.py`). `quadratic: false` scores with
plain linear scoring instead of the fixed-alignment LLR; `symmetric: false` scores a trial in one direction only
(the first utterance enrolled) instead of the mean of both.

Two experiments start from a finished model instead of random weights (frozen `init_from`: the source's directory,
the checksum of its final.pt, which the training key includes, and why): a model's large-margin phase,
`<model>_lm`, when its `train.large_margin:` is set (WeSpeaker's `*_lm.yaml`: the averaged model trained further with
longer crops and a larger margin), and a model fine-tuned from one trained elsewhere, `train.init_from: <exp dir>`
(`pipeline/train/warm_start.py`).
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.dataset.features import (FBANK_INPUT, MFCC_INPUT, RAW_INPUTS, FeatureSource, input_data_dir,
                                       input_names)
from pipeline.dataset.online import AudioCropSource
from pipeline.features.gmm import DiagGMM
from pipeline.features.lgp import LGPExtractor
from pipeline.features.mfcc import MfccOptions, features_made_under
from pipeline.recipe_layout import (DEFAULT_GMM_ROOT, FINAL_MODEL, MODEL_CHECKSUM_FILE, augment_options,
                                    large_margin_base, large_margin_settings, training_dir)
from pipeline.systems import GMM_LAYER_KEYS, system_of
from pipeline.utils.atomic import checksum_path
from pipeline.utils.config import ConfigError, fingerprint
from pipeline.utils.set_names import lgp_gmm_names
from pipeline.utils.stage import StageError, file_digest, output_key

if TYPE_CHECKING:  # torch is imported by the stages that build networks, not by those that only read the config
    import torch.nn as nn

# Keys of a `models:` entry that are not constructor arguments of the network.
MODEL_ENTRY_KEYS = ("input", "inputs", "head", "train", "extract")
# `train:` keys that change how fast a run goes, not what it computes: left out of the training key.
RUNTIME_KEYS = ("num_workers", "progress")
# `train:` keys that make another experiment start from a finished model: not settings of the run they sit in.
WARM_START_KEYS = ("large_margin", "init_from")
LARGE_MARGIN, FINE_TUNE = "large_margin", "fine_tune"   # the kinds of `init_from`
DEFAULT_TRAIN: dict[str, Any] = {
    "epochs": 10, "batch_size": 128, "crop_frames": 200, "num_workers": 2, "avg_last": 3, "amp": True,
    "optimizer": {"lr": 1e-3, "weight_decay": 2e-5},
    "scheduler": {"T_0": 10, "T_mult": 2, "eta_min": 1e-5},
    "margin_warmup": None, "progress": True,
    "fusion": {"epochs": 10, "batch_size": 128, "crops_per_utt": 4},
}
DEFAULT_HEAD = {"type": "aam_softmax", "margin": 0.2, "scale": 30.0}
# The authors score with 10 crops of 400 frames (4 s) besides the full utterance.
DEFAULT_EXTRACT: dict[str, Any] = {"crop_frames": 400, "num_crops": 10, "batch_size": 32}
# Bumped when final.pt starts holding something that later stages need, so that models published before are published
# again. Its training speakers and heads came without a bump: fine-tuning a model published before gives it a new
# head, and its large-margin phase averages the heads of its epoch checkpoints (train/warm_start.py).
FINAL_MODEL_VERSION = 2   # 2: the GMMs of its LGP inputs


def merged(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """`base` with `override` applied recursively (mappings merged, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def voiced_only(cfg: dict[str, Any]) -> bool:
    """Whether GMMs, LGP maps and MFCC inputs keep voiced frames only (`gmm.voiced_only`, default true): the one
    place every stage asks."""
    return bool((cfg.get("gmm") or {}).get("voiced_only", True))


def gmm_root(cfg: dict[str, Any]) -> Path:
    """Where stage 2 writes the GMMs (`gmm.root`, default exp/gmm)."""
    return Path((cfg.get("gmm") or {}).get("root", DEFAULT_GMM_ROOT))


def model_entry(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    models = cfg.get("models") or {}
    if name not in models:
        raise ConfigError(f"model {name!r} is not in the config's `models:` section "
                          f"(it has: {', '.join(models) or 'none'})")
    return dict(models[name])


def network_config(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The constructor config of the network (`arch` plus its kwargs) from a `models:` entry or a frozen `model:`
    section; GMM layers keep only their size and whether they train."""
    net = {k: v for k, v in model_cfg.items() if k not in MODEL_ENTRY_KEYS}
    for key in GMM_LAYER_KEYS:
        if net.get(key):
            net[key] = {k: v for k, v in net[key].items() if k != "gmm"}
    return net


def gmm_layer_gmms(model_cfg: dict[str, Any]) -> dict[str, str]:
    """GMM layer key -> name of the stage-2 GMM it starts from (`gmm_layer: {gmm: gi}`)."""
    found = {}
    for key in GMM_LAYER_KEYS:
        spec = model_cfg.get(key)
        if spec:
            if not isinstance(spec, dict) or "gmm" not in spec:
                raise ConfigError(f"`{key}` must name a stage-2 GMM, e.g. {{gmm: gi, trainable: true}}; got {spec!r}")
            found[key] = str(spec["gmm"])
    return found


def load_gmm(root: str | os.PathLike, name: str) -> DiagGMM:
    path = Path(root) / name / "gmm.npz"
    if not path.is_file():
        raise StageError(f"{path} not found: GMM {name!r} comes from stage 2 (GMMs); run it first")
    return DiagGMM.load_npz(path)


def build_network(model_cfg: dict[str, Any], gmms: str | os.PathLike | None = None) -> "nn.Module":
    """The network of a frozen `model:` section. With `gmms` (the stage-2 GMM directory) its GMM layers start from
    the fitted GMMs they name (training); without, they keep their size only, for a checkpoint to fill."""
    from pipeline.models import build_model

    try:
        network = build_model(network_config(model_cfg))
    except ValueError as err:
        raise ConfigError(f"model {model_cfg.get('arch')!r}: {err}") from err
    if gmms is not None:
        layers = dict(system_of(model_cfg).gmm_layers)
        for key, name in gmm_layer_gmms(model_cfg).items():
            gmm = load_gmm(gmms, name)
            network.get_submodule(layers[key]).set_gmm(gmm.weights, gmm.means, gmm.variances, gmm.lgp_mean,
                                                       gmm.lgp_std)
    return network


def model_checksum(exp_dir: str | os.PathLike) -> str:
    """The sha256 of `exp_dir`'s final.pt, as recorded when it was published: what embeddings, thresholds and
    cohort means computed with the model record, so that they are never used with another one."""
    recorded = checksum_path(Path(exp_dir) / FINAL_MODEL)
    if not recorded.is_file():
        raise StageError(f"{recorded} not found: {exp_dir} has no finished model (run stage 4, training)")
    return recorded.read_text(encoding="utf-8").split()[0]


def check_made_with(emb_dir: str | os.PathLike, exp_dir: str | os.PathLike) -> None:
    """StageError when the embeddings in `emb_dir` were not extracted with `exp_dir`'s current final.pt."""
    path = Path(emb_dir) / MODEL_CHECKSUM_FILE
    made_with = path.read_text(encoding="utf-8").strip() if path.is_file() else None
    if made_with != model_checksum(exp_dir):
        raise StageError(f"{emb_dir} was extracted with another {FINAL_MODEL.name} than {exp_dir}'s current one "
                         f"(retrained since?): rerun stage 5 (embeddings) and 6 (scoring) for it")


def fine_tune_sources(cfg: dict[str, Any]) -> dict[str, str]:
    """Model name -> the finished model directory it is fine-tuned from (`train.init_from`, the entry's over the
    config's), for the `models:` entries that have one and train (a config-wide `init_from` skips the GMM-UBM, which
    has nothing to train)."""
    sources = {}
    for name, entry in (cfg.get("models") or {}).items():
        own = entry.get("train") or {}
        source = own["init_from"] if "init_from" in own else (cfg.get("train") or {}).get("init_from")
        if source and system_of(entry).training != "none":
            sources[name] = str(source)
    return sources


def source_record(source_dir: str | os.PathLike, kind: str) -> dict[str, str]:
    """What a frozen config says of the finished model its training starts from (StageError when there is none)."""
    return {"model": str(source_dir), "checksum": model_checksum(source_dir), "kind": kind}


def large_margin_experiment(cfg: dict[str, Any], name: str, base: str, train_dir: str | os.PathLike,
                            exp_root: Path) -> dict[str, Any]:
    """The frozen config of `base`'s large-margin phase: `base`'s, with its `train.large_margin:` keys over its
    `train:` (no margin warm-up unless given), the head's margin set to `large_margin.margin`, started from
    `<exp_root>/<base>`."""
    settings = large_margin_settings(cfg, base) or {}
    unknown = sorted(set(settings) - set(DEFAULT_TRAIN) - {"margin"})
    if unknown:
        raise ConfigError(f"train.large_margin of {base!r}: unknown key {unknown[0]!r}; it takes `margin` and the "
                          f"keys of `train:` ({', '.join(DEFAULT_TRAIN)})")
    frozen = resolve_experiment(cfg, base, train_dir)
    margin = settings.pop("margin", None)
    frozen["model_name"] = name
    frozen["train"] = merged(merged(frozen["train"], {"margin_warmup": None}), settings)
    if margin is not None:
        frozen["model"]["head"]["margin"] = float(margin)
    frozen["init_from"] = source_record(exp_root / base, LARGE_MARGIN)
    return frozen


def resolve_experiment(cfg: dict[str, Any], name: str, train_dir: str | os.PathLike,
                       exp_root: str | os.PathLike = "exp") -> dict[str, Any]:
    """The frozen config of experiment `name`: the whole config plus `model_name`, `model` (the network config with
    its input size and GMM layer sizes filled in, its inputs and head), `train` and `extract` merged with the entry's
    own, and `init_from` for an experiment that starts from a finished model (`<model>_lm` from
    `<exp_root>/<model>`)."""
    base = large_margin_base(cfg, name)
    if base is not None:
        return large_margin_experiment(cfg, name, base, train_dir, Path(exp_root))
    entry = model_entry(cfg, name)
    try:
        names = input_names(entry)
    except ValueError as err:
        raise ConfigError(f"model {name!r}: {err}") from err
    model = {k: v for k, v in entry.items() if k not in MODEL_ENTRY_KEYS}
    if FBANK_INPUT in names and not (cfg.get("features") or {}).get("fbank"):
        raise ConfigError(f"model {name!r} reads `fbank`: set `features.fbank: true` so that stage 1 writes it")
    system = system_of(entry)
    if system.adapts_gmm:
        if names != ["mfcc"] or "gmm" not in entry:
            raise ConfigError(f"model {name!r}: a gmm_ubm reads `input: mfcc` and names its stage-2 UBM, e.g. "
                              f"`gmm: ubm`")
        gmm = load_gmm(gmm_root(cfg), str(entry["gmm"]))
        model.update(num_components=gmm.num_components, num_ceps=gmm.dim, relevance=float(entry.get("relevance", 16)),
                     quadratic=bool(entry.get("quadratic", True)), symmetric=bool(entry.get("symmetric", True)))
    # What the LGP maps it reads were computed under, checked by stage 5 (final.pt carries the GMMs themselves).
    lgp_gmms = {gmm: load_gmm(gmm_root(cfg), gmm).fingerprint() for gmm in lgp_gmm_names(names).values()}
    for key, gmm_name in gmm_layer_gmms(entry).items():
        gmm = load_gmm(gmm_root(cfg), gmm_name)
        model[key] = {**model[key], "num_components": gmm.num_components, "feat_dim": gmm.dim,
                      "trainable": bool(model[key].get("trainable", True))}
    size_key = system.input_size_key
    if size_key and not any(model.get(k) for k in GMM_LAYER_KEYS) and size_key not in model:
        # From the data, so that `-o gmm.num_components=128` needs no second edit.
        model[size_key] = input_dim(cfg, train_dir, names[0])
    frozen = copy.deepcopy(cfg)
    frozen["model_name"] = name
    frozen["lgp_gmms"] = lgp_gmms
    frozen["model"] = {**model, "inputs": names,
                       "head": merged(merged(DEFAULT_HEAD, (cfg.get("train") or {}).get("head")), entry.get("head"))}
    frozen["train"] = merged(merged(DEFAULT_TRAIN, cfg.get("train")), entry.get("train"))
    frozen["train"].pop("head", None)  # it lives in `model.head`
    warm_start = {key: frozen["train"].pop(key, None) for key in WARM_START_KEYS}
    if warm_start["init_from"] and system.training != "none":
        frozen["init_from"] = source_record(warm_start["init_from"], FINE_TUNE)
    frozen["extract"] = merged(merged(DEFAULT_EXTRACT, cfg.get("extract")), entry.get("extract"))
    return frozen


def input_dim(cfg: dict[str, Any], train_dir: str | os.PathLike, name: str) -> int:
    """The size of input `name` as stage 4 reads it: from the training set's archives, or, with online
    augmentation (features computed from audio), from the front end and the GMM."""
    if not augment_options(cfg).online:
        return FeatureSource(train_dir, [name], voiced_only=voiced_only(cfg)).dims()[0]
    features = MfccOptions.from_config(cfg.get("features"))
    if name in RAW_INPUTS:
        return features.numcep if name == MFCC_INPUT else features.nfilt
    return load_gmm(gmm_root(cfg), lgp_gmm_names([name])[name]).num_components


def training_source(frozen: dict[str, Any], train_dir: str | os.PathLike) -> FeatureSource | AudioCropSource:
    """What stage 4 reads a model's training crops through: stage 1 and 3's archives of `train_dir`, or, with
    `augment.mode: online`, its audio, augmented on the fly and turned into the model's inputs by the same functions
    (pipeline/dataset/online.py)."""
    names = frozen["model"]["inputs"]
    augment = augment_options(frozen)
    if not augment.online:
        return FeatureSource(train_dir, names, voiced_only=voiced_only(frozen))
    if not voiced_only(frozen):
        raise ConfigError("augment.mode: online crops voiced frames by stage 1's VAD: it needs gmm.voiced_only: true")
    gmms = {gmm: LGPExtractor(load_gmm(gmm_root(frozen), gmm)) for gmm in lgp_gmm_names(names).values()}
    return AudioCropSource(train_dir, names, MfccOptions.from_config(frozen.get("features")), gmms,
                           augment=augment, probability=augment.crop_probability())


def online_augmentation(frozen: dict[str, Any]) -> dict[str, Any] | None:
    """How a training run was configured to augment on the fly (None when offline or off): the options and the
    share of crops. Not what this machine offers (the room and noise files found, the codecs its sox makes): stage
    5 on a node without the noise corpora, or with another sox, checks the same key as the node that trained.
    Stage 4 records what it found in final.pt and train.log (`trainer.online_sources`)."""
    augment = augment_options(frozen)
    if not augment.online:
        return None
    return {"options": augment.fingerprint_fields(), "probability": augment.crop_probability(),
            "room_pool": augment.room_pool}


def training_input_keys(frozen: dict[str, Any], train_dir: str | os.PathLike) -> list[str]:
    """The keys of what a training run read its inputs from: the archives (`input_keys`), or, online, stage 1's
    outputs of the set (its audio, VAD and statistics under the config's `features:`) and the GMMs of LGP inputs."""
    if not augment_options(frozen).online:
        return input_keys(frozen, train_dir)
    return [output_key(train_dir, "mfcc", features_made_under(frozen.get("features")))] + [
        output_key(gmm_root(frozen) / gmm, "gmm") for gmm in lgp_gmm_names(frozen["model"]["inputs"]).values()]


def input_keys(frozen: dict[str, Any], set_dir: str | os.PathLike) -> list[str]:
    """The output keys of the stage outputs a model of the frozen config reads for one set: stage 1's MFCC or
    filterbanks (both under the set's stage-1 marker, computed under the config's `features:`), or stage 3's LGP
    maps."""
    keys = []
    for name in frozen["model"]["inputs"]:
        if name in RAW_INPUTS:
            keys.append(output_key(set_dir, "mfcc", features_made_under(frozen.get("features"))))
        else:
            keys.append(output_key(input_data_dir(set_dir, name), "lgp"))
    return keys


def training_key(frozen: dict[str, Any], train_dir: str | os.PathLike) -> str:
    """What a finished training run was computed from: network, head, training settings, seed, the speakers of the
    training set and the keys of the features it read (and of the GMMs its GMM layers start from), and the checksum
    of the model it started from, if any."""
    train_cfg = {k: v for k, v in frozen["train"].items() if k not in RUNTIME_KEYS}
    gmms = list(gmm_layer_gmms(frozen["model"]).values()) + ([frozen["model"]["gmm"]]
                                                             if system_of(frozen["model"]).adapts_gmm else [])
    gmm_keys = [output_key(gmm_root(frozen) / name, "gmm") for name in gmms]
    # A model trained from another starts from that model's final.pt: its checksum, so a retrained source redoes it.
    source = frozen.get("init_from")
    warm_start = [(source["kind"], source["checksum"])] if source else []
    online = online_augmentation(frozen)
    return fingerprint(FINAL_MODEL_VERSION, frozen["model"], train_cfg, frozen.get("seed", 0), voiced_only(frozen),
                       file_digest(Path(train_dir) / "utt2spk"), training_input_keys(frozen, train_dir), gmm_keys,
                       *warm_start, *([online] if online else []))


def current_training(cfg: dict[str, Any], name: str, exp_dir: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """(frozen config, training key) of experiment `name` trained into `exp_dir` under `cfg` now; its training is
    current when `exp_dir`'s train marker holds that key. Needs no torch: a rerun's stage 4 skips in a blink."""
    train_dir = training_dir(cfg)
    frozen = resolve_experiment(cfg, name, train_dir, Path(exp_dir).parent)
    return frozen, training_key(frozen, train_dir)


def front_end(frozen: dict[str, Any]) -> str:
    """What the network reads, for the results table: `LGP gi (64 Gaussians)`, `MFCC 80 + trainable GMM layer`."""
    model = frozen["model"]
    if system_of(model).adapts_gmm:
        scoring = ("fixed-alignment" if model["quadratic"] else "linear") + (
            ", symmetric" if model.get("symmetric") else "")
        return (f"MFCC {model['num_ceps']}, UBM {model['num_components']} Gaussians, MAP means "
                f"(r={model['relevance']:g}), {scoring} scoring")
    components = (frozen.get("gmm") or {}).get("num_components", "?")
    numcep = (frozen.get("features") or {}).get("numcep", 80)
    parts = []
    for name in model["inputs"]:
        if name.startswith("lgp_"):
            parts.append(f"LGP {name[4:]} ({components} Gaussians)")
        elif any(model.get(k) for k in GMM_LAYER_KEYS):
            trainable = any((model.get(k) or {}).get("trainable") for k in GMM_LAYER_KEYS)
            parts.append(f"MFCC {numcep} + {'trainable' if trainable else 'frozen'} GMM layer")
        elif name == FBANK_INPUT:
            parts.append(f"log mel filterbank {(frozen.get('features') or {}).get('nfilt', 80)}")
        else:
            parts.append(f"MFCC {numcep}")
    return " + ".join(parts)
