"""The paper-scale training loader on one CPU core, against the training step it must feed; figures for the README.

    python bench/bench_loader.py [--utts 100] [--crops 2000] [--kaldiio-crops 200] [--steps 3]

Synthetic archives of paper size are written to a temporary directory as stages 1 and 3 write them: 512-d LGP maps
(utterances of 300-1200 frames, values like normalised LGP), Kaldi-compressed (`CM`) and float32 (`FM`), and 80-d
compressed MFCC with its VAD and per-utterance statistics. Each is read through the training dataset itself
(`RandomCropDataset` over `FeatureSource`: random utterance, random 200-frame start), which reads only the crop's rows
(`read_rows`); the compressed LGP is also read the old way, kaldiio's full decode then a slice, in the same run. The
MFCC path adds the frozen 512-component GMM layer that computes the LGP map on the device (here the CPU). Rates are
crops per second of this process's CPU time with one thread, which on an idle machine equals wall-clock time.

Then the paper-size GMM-ResNext (C 512, depths 3-3-9-3, 512 Gaussians) takes `--steps` training steps on this
machine's CPU (all its threads), so that the loader's rate is read against the step's. The last line is the figure
the README quotes.

    python bench/bench_loader.py --recipe /path/to/trained/demo [--model gmm_resnext] [--crops 600]

With `--recipe` (a recipe dir after stages 1-3, e.g. the demo's): the loader of the config's model on its clean
training set, offline (its stage-3 archives, `FeatureSource`) against online (`AudioCropSource`, features computed
from audio: no augmentation, the config's share of crops augmented, every crop augmented, and each kind alone), in
crops per CPU-second of this process and the sox processes it runs (codecs), one thread; the simulated-room pool
warmed first, as it is after the first few hundred reverberated crops of a run. Then the demo model's training step
on one thread (forward, backward, Adam at the config's batch and crop), the rate the loader has to keep up with.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one BLAS thread, before numpy loads
    os.environ.setdefault(_var, "1")

import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

COLS, MFCC_DIM, CROP = 512, 80, 200


def write_set(root: Path, name: str, matrices: dict[str, np.ndarray], *, compress: bool,
              input_name: str) -> Path:
    """A set `root/name` whose input `input_name` is one archive of `matrices`, as stage 1 (`mfcc`: features, VAD
    and statistics in the set itself) or stage 3 (`lgp_gi`: `<set>_lgp_gi/feats.scp`) writes it."""
    from pipeline.dataset.features import input_data_dir
    from pipeline.features.mfcc import cmvn_stats
    from pipeline.utils.archive import ArchiveWriter
    from pipeline.utils.datadir import write_table

    data = root / name
    data.mkdir(parents=True)
    features = input_data_dir(data, input_name)
    features.mkdir(exist_ok=True)
    with ArchiveWriter(root / f"{name}_feats", compress=compress) as feats:
        for utt, matrix in matrices.items():
            feats.write(utt, matrix)
    (features / "feats.scp").write_text(feats.scp_path.read_text())
    write_table(data / "utt2spk", {utt: utt.split("-", 1)[0] for utt in matrices})  # Kaldi: speaker-prefixed
    write_table(features / "utt2num_frames", {utt: len(m) for utt, m in matrices.items()})
    if input_name == "mfcc":
        with ArchiveWriter(root / f"{name}_vad") as vads, ArchiveWriter(root / f"{name}_cmvn", double=True) as st:
            for utt, matrix in matrices.items():
                voiced = np.ones(len(matrix), dtype=np.float32)
                vads.write(utt, voiced)
                st.write(utt, cmvn_stats(matrix, voiced))
        (data / "vad.scp").write_text(vads.scp_path.read_text())
        (data / "utt_cmvn.scp").write_text(st.scp_path.read_text())
    return data


def crops_per_second(read: Callable[[int], object], count: int) -> float:
    read(0)  # warm-up: maps, caches
    began = time.process_time()
    for i in range(1, count + 1):
        read(i)
    return count / (time.process_time() - began)


def cpu_seconds() -> float:
    """CPU time of this process and of the child processes it waited for (sox, for codecs)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def crops_per_cpu_second(dataset: object, count: int, epoch: int = 1) -> float:
    began = cpu_seconds()
    for i in range(count):
        dataset[(epoch, i, i % len(dataset))]
    return count / (cpu_seconds() - began)


def recipe_figures(recipe: Path, model: str, crops: int, steps: int) -> None:
    """Offline and online loader rates and the training step's on a recipe (see the module's docstring)."""
    import torch

    from pipeline.dataset.crops import RandomCropDataset
    from pipeline.experiment import resolve_experiment, training_source
    from pipeline.models import build_head, build_model
    from pipeline.recipe_layout import augment_options
    from pipeline.train.tasks import EmbeddingClassifier
    from pipeline.utils.config import apply_overrides, load_config

    os.chdir(recipe)
    torch.set_num_threads(1)
    base = load_config("conf/demo.yaml")
    clean_set = Path(base["data"]["root"]) / "train"
    kinds = [k for k, w in (base["augment"].get("types") or {}).items() if w > 0]

    def dataset(overrides: list[str]) -> RandomCropDataset:
        cfg = apply_overrides(base, overrides)
        frozen = resolve_experiment(cfg, model, clean_set)
        source = training_source(frozen, clean_set)
        return RandomCropDataset(source, crop_frames=int(frozen["train"]["crop_frames"]), seed=0)

    offline = dataset(["augment.mode=offline"])
    crop, share = offline.crop_frames, augment_options(apply_overrides(base, ["augment.mode=online"])).crop_probability()
    print(f"{recipe}: {model}, {len(offline)} clean utterances, {crop}-frame crops, one thread, crops per CPU-second "
          f"(shared machine: see the load)")
    rates = {"offline archives": crops_per_cpu_second(offline, crops * 4)}
    runs = [("online, no augmentation", ["augment.probability=0"]),
            (f"online, {share:.0%} augmented (the config)", []),
            ("online, every crop augmented", ["augment.probability=1"])]
    runs += [(f"online, {kind} only", ["augment.probability=1", "augment.types={" + f"{kind}: 1" + "}"])
             for kind in kinds]
    for name, overrides in runs:
        ds = dataset(["augment.mode=online"] + overrides)
        augmenter = ds.source.augmenter
        if augmenter is not None and augmenter.room_pool and "reverb" in augmenter.kinds:   # warm the room pool
            began = time.time()
            for room in range(augmenter.room_pool):
                augmenter.pooled_room(room)
            if name.endswith("(the config)"):
                print(f"  ({augmenter.room_pool} simulated rooms: {time.time() - began:.1f} s once per worker)")
        rates[name] = crops_per_cpu_second(ds, crops, epoch=2)
    for name, rate in rates.items():
        print(f"  {name}: {rate:,.0f} crops/s")
    if steps:
        cfg = resolve_experiment(base, model, clean_set)
        net = build_model({k: v for k, v in cfg["model"].items() if k not in ("inputs", "head")})
        task = EmbeddingClassifier(net, build_head(cfg["model"]["head"], net.emb_dim, offline.num_speakers))
        optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
        batch = int(cfg["train"]["batch_size"])
        items = [offline[(1, i, i)] for i in range(batch)]
        x = torch.stack([inputs[0] for inputs, _ in items])
        labels = torch.tensor([label for _, label in items])

        def step() -> None:
            loss, _ = task([x], labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        step()
        began = cpu_seconds()
        for _ in range(steps):
            step()
        step_rate = steps * batch / (cpu_seconds() - began)
        print(f"  training step of {model} (batch {batch}, one thread): {step_rate:,.0f} crops/s")
        online = rates[f"online, {share:.0%} augmented (the config)"]
        print(f"online loader ({share:.0%} augmented) {online:.0f} crops/s per core = "
              f"{online / rates['offline archives']:.1%} of offline's {rates['offline archives']:.0f}; "
              f"{online / step_rate:.2f}x what a one-thread training step consumes ({step_rate:.0f})")


@click.command()
@click.option("--recipe", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="a recipe dir after stages 1-3: offline against online loading of its clean training set")
@click.option("--model", default="gmm_resnext", show_default=True, help="with --recipe: the model whose input")
@click.option("--utts", default=100, show_default=True, help="utterances per archive")
@click.option("--crops", default=2000, show_default=True, help="crops read through the dataset")
@click.option("--kaldiio-crops", default=200, show_default=True, help="crops read the old way (slower)")
@click.option("--steps", default=3, show_default=True, help="training steps of the paper-size model (0: none)")
@click.option("--batch", default=8, show_default=True, help="crops per training step on the CPU")
@click.option("--seed", default=0, show_default=True)
def main(recipe: Path | None, model: str, utts: int, crops: int, kaldiio_crops: int, steps: int, batch: int,
         seed: int) -> None:
    import torch

    if recipe is not None:
        recipe_figures(recipe.resolve(), model, min(crops, 600), max(steps, 10))
        return

    from pipeline.dataset.crops import RandomCropDataset
    from pipeline.dataset.features import FeatureSource
    from pipeline.models.gmm_layer import TrainableGMMLayer

    threads = os.cpu_count() or 1
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(300, 1201, utts)
    names = [f"spk{i % 50:03d}-utt{i:04d}" for i in range(utts)]
    lgp = {u: (rng.standard_normal((n, COLS)) + rng.standard_normal(COLS)).astype(np.float32)
           for u, n in zip(sorted(names), lengths)}
    mfcc = {u: (rng.standard_normal((n, MFCC_DIM)) * 5).astype(np.float32) for u, n in zip(sorted(names), lengths)}
    print(f"{utts} utterances of {lengths.min()}-{lengths.max()} frames, {CROP}-frame crops at random starts through "
          f"RandomCropDataset, one thread, crops per CPU-second")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sets = {"lgp_cm": write_set(root, "cm", lgp, compress=True, input_name="lgp_gi"),
                "lgp_fm": write_set(root, "fm", lgp, compress=False, input_name="lgp_gi"),
                "mfcc_cm": write_set(root, "mfcc", mfcc, compress=True, input_name="mfcc")}
        for path in root.glob("*.ark"):
            path.read_bytes()  # page cache warm for every reader

        def dataset(name: str, inputs: list[str]) -> RandomCropDataset:
            return RandomCropDataset(FeatureSource(sets[name], inputs), crop_frames=CROP, seed=seed)

        order = rng.integers(0, utts, max(crops, kaldiio_crops) + 1)
        cm = dataset("lgp_cm", ["lgp_gi"])
        old_source = cm.source
        starts = {u: int(rng.integers(0, n - CROP + 1)) for u, n in zip(cm.utts, lengths)}
        item = (lambda ds: lambda i: ds[(1, i, int(order[i]))])
        results["cm"] = crops_per_second(item(cm), crops)
        results["kaldiio"] = crops_per_second(
            lambda i: old_source.read(cm.utts[order[i]])[0][starts[cm.utts[order[i]]]:][:CROP], kaldiio_crops)
        results["fm"] = crops_per_second(item(dataset("lgp_fm", ["lgp_gi"])), crops)
        layer = TrainableGMMLayer(COLS, MFCC_DIM, trainable=False)
        mf = dataset("mfcc_cm", ["mfcc"])

        def mfcc_crop(i: int) -> None:
            crops_, _ = mf[(1, i, int(order[i]))]
            with torch.no_grad():
                layer(crops_[0][None])
        results["mfcc"] = crops_per_second(mfcc_crop, crops // 2)
    print(f"  512-d compressed LGP (CM), crop rows only: {results['cm']:,.0f} crops/s")
    print(f"  512-d compressed LGP (CM), kaldiio full decode + slice: {results['kaldiio']:,.0f} crops/s")
    print(f"  512-d float LGP (FM), crop rows only: {results['fm']:,.0f} crops/s")
    print(f"  80-d compressed MFCC, crop rows only, + frozen 512-Gaussian GMM layer on the CPU: "
          f"{results['mfcc']:,.0f} crops/s")
    if steps:
        torch.set_num_threads(threads)
        step_rate = training_steps(steps, batch)
        print(f"  paper-size GMM-ResNext training on this CPU ({threads} threads, batch {batch}): "
              f"{step_rate:.1f} crops/s; one loader core feeds {results['cm'] / step_rate:,.0f} such CPUs")
    print(f"512-d compressed LGP crop: {results['cm']:.0f} crops/s per core, kaldiio full decode "
          f"{results['kaldiio']:.0f} (x{results['cm'] / results['kaldiio']:.1f})")


def training_steps(steps: int, batch: int) -> float:
    """Crops per second of forward + backward + Adam of the paper-size GMM-ResNext with an AAM head (1,000 classes)."""
    import torch

    from pipeline.models import build_head, build_model
    from pipeline.train.tasks import EmbeddingClassifier

    torch.manual_seed(0)
    model = build_model({"arch": "gmm_resnext", "in_channels": COLS, "channels": 512, "depths": [3, 3, 9, 3],
                         "emb_dim": 256})
    task = EmbeddingClassifier(model, build_head({"type": "aam_softmax", "margin": 0.2, "scale": 30.0}, 256, 1000))
    optimizer = torch.optim.Adam(task.parameters(), lr=1e-3)
    x, labels = torch.randn(batch, COLS, CROP), torch.randint(0, 1000, (batch,))

    def step() -> None:
        loss, _ = task([x], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step()  # warm-up
    began = time.time()
    for _ in range(steps):
        step()
    return steps * batch / (time.time() - began)


if __name__ == "__main__":
    main()
