"""Training segments: random fixed-length crops of utterances, in an order fixed by (seed, epoch).

Every random choice is a pure function of (seed, epoch, position in the epoch), never of a global RNG or of
which worker or rank reads it, so a resumed run, a run with more loader workers, and a run sharded over DDP
ranks all see exactly the same segments in the same global batches.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.dataset.features import FeatureSource

if TYPE_CHECKING:
    from pipeline.dataset.online import AudioCropSource

# (epoch, position in the epoch's order, utterance index): what the sampler hands the dataset.
SampleKey = tuple[int, int, int]


def repeat_to_length(frames: np.ndarray, length: int) -> np.ndarray:
    """`frames` (T x D) tiled along time until it has at least `length` frames (short utterances)."""
    if len(frames) == 0:
        raise ValueError("cannot crop an utterance with no frames")
    if len(frames) >= length:
        return frames
    repeats = -(-length // len(frames))
    return np.concatenate([frames] * repeats, axis=0)


def random_crop_start(num_frames: int, length: int, rng: np.random.Generator) -> int:
    return int(rng.integers(0, num_frames - length + 1))


def evenly_spaced_crops(frames: np.ndarray, length: int, count: int) -> np.ndarray:
    """`count` crops of `length` frames at evenly spaced starts, first at 0 and last at the end: (count, length, D).

    As the authors score (and voxceleb_trainer): short utterances are first repeated to `length`.
    """
    frames = repeat_to_length(frames, length)
    starts = np.linspace(0, len(frames) - length, num=count).round().astype(int)
    return np.stack([frames[s:s + length] for s in starts])


def speaker_labels(utt2spk: dict[str, str]) -> dict[str, int]:
    """Speaker -> class index, in C order of speaker ids (stable across runs and machines)."""
    return {spk: i for i, spk in enumerate(sorted(set(utt2spk.values()), key=str.encode))}


class RandomCropDataset(Dataset):
    """Item `(epoch, position, utt_index)` -> ([input tensors (D x crop_frames) ...], speaker label).

    All inputs of a model (dGMM's male and female LGP maps) are cropped at the same frames. `source` reads them
    from stage 1 and 3's archives (`FeatureSource`) or computes them from the audio, augmented on the fly
    (`AudioCropSource`, `augment.mode: online`).
    """

    def __init__(self, source: "FeatureSource | AudioCropSource", *, crop_frames: int = 200, seed: int = 0):
        self.source = source
        self.crop_frames = crop_frames
        self.seed = seed
        self.utts = source.utts
        utt2spk = source.utt2spk()
        missing = [u for u in self.utts if u not in utt2spk]
        if missing:
            raise ValueError(f"{source.set_dir}/utt2spk has no speaker for {missing[0]!r}")
        self.spk2label = speaker_labels({u: utt2spk[u] for u in self.utts})
        self.labels = [self.spk2label[utt2spk[u]] for u in self.utts]

    @property
    def num_speakers(self) -> int:
        return len(self.spk2label)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, key: SampleKey) -> tuple[list[torch.Tensor], int]:
        epoch, position, index = key
        rng = np.random.default_rng([self.seed, epoch, position])
        utt, length = self.utts[index], self.crop_frames
        frames = self.source.num_frames(utt)
        # (epoch, position) also seeds what an online source draws (pipeline/dataset/online.py)
        if frames >= length:  # the usual case: only the crop's rows are read
            start = random_crop_start(frames, length, rng)
            crops = self.source.read_crop(utt, start, length, sample=(epoch, position))
        else:  # a short utterance is repeated to the crop's length first
            arrays = [repeat_to_length(a, length) for a in self.source.read_crop(utt, 0, frames,
                                                                                 sample=(epoch, position))]
            start = random_crop_start(len(arrays[0]), length, rng)
            crops = [a[start:start + length] for a in arrays]
        return [torch.from_numpy(np.ascontiguousarray(c.T)) for c in crops], self.labels[index]


class EpochBatchSampler(Sampler[list[SampleKey]]):
    """Global batches of `batch_size` samples from a permutation fixed by (seed, epoch); this rank's share of each.

    With `world_size` ranks each rank gets `batch_size // world_size` samples of every global batch, so the
    number of steps per epoch, the samples seen and the effective batch (gradients are averaged by DDP) are the
    same as in one process. The incomplete last batch is dropped, as DistributedSampler's padding would repeat
    samples instead.
    """

    def __init__(self, num_samples: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        if num_samples < batch_size:
            raise ValueError(f"only {num_samples} training samples for a batch of {batch_size}: "
                             f"lower train.batch_size")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.local_batch = batch_size // world_size
        self.seed = seed
        self.rank = rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples // self.batch_size

    def __iter__(self) -> Iterator[list[SampleKey]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
        for step in range(len(self)):
            first = step * self.batch_size + self.rank * self.local_batch
            yield [(self.epoch, p, int(order[p])) for p in range(first, first + self.local_batch)]


def _single_thread_worker(_: int) -> None:
    # Workers only read and crop; BLAS threads in them would compete with the training step for cores.
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, sampler: EpochBatchSampler, *, num_workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over `sampler`'s batches; workers persist across epochs (the sampler runs in this process)."""
    return DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0, worker_init_fn=_single_thread_worker,
                      prefetch_factor=4 if num_workers > 0 else None)
