"""Training crops computed from raw audio, augmented on the fly (`augment.mode: online`), as WeSpeaker's and
SpeechBrain's loaders do, instead of reading stage 3's archives of an offline augmented copy.

A crop is chosen exactly as `RandomCropDataset` chooses it over the archives: `length` consecutive voiced frames
of stage 1's VAD. Only the audio those frames span is read (plus the sample before it, for the pre-emphasis, and
`REVERB_CONTEXT_S` before that when the draw is a reverberation, so the room's tail is there), augmented with
`pipeline.augment.Augmenter` (the offline copy's kinds, weights and SNR ranges), and turned into the model's input
by stage 1's and stage 3's own functions: `mfcc_and_fbank` on the span's frames (python_speech_features frames
every window on its own, so a span's frames are the utterance's frames), then the voiced rows, the mean removal
and, for `lgp_<gmm>`, the model's GMM through `LGPExtractor`. Without an augmentation the result is what the
archives hold, to float rounding (tests/test_online_augment.py).

The VAD and the mean. Frames are chosen by the clean utterance's VAD (stage 1's `vad.scp`): the crop must be
chosen before any audio is read, augmentation does not move the speech, and an energy VAD run on a crop at 0 dB
SNR would keep noise the offline copy's would too, only less predictably. The mean is the one the augmented
utterance would have under per-utterance CMN: the clean utterance's mean (stage 1's `utt_cmvn.scp`) moved by what
the augmentation moved the crop's mean (augmented crop minus the same crop clean), so a codec's or a room's
spectral tilt is removed as stage 1 removes it from an offline copy, which a test utterance through the same
channel also has removed. Keeping the clean mean alone would leave that tilt in every augmented crop, a
difference between training and test features that the offline copy does not have.

Every draw is a function of (augment.seed, epoch, position in the epoch), like the crop itself, never of the
worker that computes it: a resumed run, or one with more loader workers, sees the same augmentations.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline.augment.augmenter import Augmenter, AugmentOptions, babble_pool_from
from pipeline.augment.seeding import rng_for
from pipeline.dataset.features import CMVN_TABLE, input_data_dir
from pipeline.features.lgp import LGPExtractor
from pipeline.features.mfcc import FeatureError, MfccOptions, mfcc_and_fbank, remove_mean
from pipeline.utils.archive import ArchiveError, load, read_rows, read_scp
from pipeline.utils.audio import PCM16_SCALE, AudioError, read_wav_scp_span
from pipeline.utils.datadir import DataDirError, read_table
from pipeline.utils.set_names import FBANK_INPUT, LGP_PREFIX, MFCC_INPUT

REVERB_CONTEXT_S = 1.0   # audio read before a reverberated crop: rooms of RT60 <= 0.8 s have decayed > 70 dB by then


class OnlineAudioError(AudioError):
    """A training utterance whose audio cannot be read or does not match its stage-1 features; names both."""


class AudioCropSource:
    """A model's inputs (`names`: mfcc, fbank, lgp_<gmm>) of training crops of the set in `set_dir`, computed from
    its audio, optionally augmented; the reader `RandomCropDataset` takes in place of `FeatureSource`.

    `gmms`: the extractor of each LGP input's GMM (the model's own, with stage 2's per-component normalisation).
    `augment`: the `augment:` options, or None for none; `probability` of a crop being augmented.
    """

    def __init__(self, set_dir: str | os.PathLike, names: list[str], features: MfccOptions,
                 gmms: Mapping[str, LGPExtractor], *, augment: AugmentOptions | None = None,
                 probability: float = 0.0):
        self.set_dir = Path(set_dir)
        self.names = list(names)
        self.opts = features
        # Stage 1 pre-emphasises the whole utterance; a span is pre-emphasised here from the sample before it.
        self._frame_opts = replace(features, preemph=0.0)
        self.gmms = {name: gmms[name[len(LGP_PREFIX):]] for name in names if name.startswith(LGP_PREFIX)}
        unknown = [n for n in names if n not in (MFCC_INPUT, FBANK_INPUT) and not n.startswith(LGP_PREFIX)]
        if unknown:
            raise ValueError(f"input {unknown[0]!r} cannot be computed from audio; known: {MFCC_INPUT!r}, "
                             f"{FBANK_INPUT!r}, '{LGP_PREFIX}<gmm>'")
        if FBANK_INPUT in names and not features.fbank:
            raise ValueError("input 'fbank' needs features.fbank: true")
        self.wav_scp = self._table("wav.scp", read_table)
        feats = self._table("feats.scp", read_scp)   # stage 1's usable utterances
        self.vads = self._table("vad.scp", read_scp)
        self.stats = {MFCC_INPUT: self._table(CMVN_TABLE, read_scp)}
        if FBANK_INPUT in names:
            self.stats[FBANK_INPUT] = self._table(CMVN_TABLE, read_scp, input_data_dir(self.set_dir, FBANK_INPUT))
        self.utts: list[str] = sorted(feats, key=str.encode)
        missing = [u for u in self.utts if u not in self.wav_scp]
        if missing:
            raise DataDirError(f"{self.set_dir}/wav.scp has no audio for {missing[0]!r} of feats.scp: rerun stage 1")
        self._utt2spk = read_table(self.set_dir / "utt2spk")
        self.probability = probability if augment is not None else 0.0
        self.augmenter = None
        if augment is not None and self.probability > 0:
            pool = babble_pool_from(self._utt2spk, self.wav_scp, augment.babble_pool, augment.seed)
            self.augmenter = Augmenter(augment, sample_rate=features.sample_rate, babble_pool=pool,
                                       room_pool=augment.room_pool)
        self.seed = augment.seed if augment is not None else 0
        self._kept: tuple[str | None, np.ndarray] = (None, np.zeros(0, dtype=int))

    def _table(self, name: str, reader, directory: Path | None = None) -> dict[str, str]:
        path = (directory or self.set_dir) / name
        if not path.is_file():
            raise DataDirError(f"{path} not found: online augmentation computes crops from stage 1's VAD and "
                               f"statistics (run stage 1 for {path.parent.name}"
                               f"{', with features.fbank: true' if FBANK_INPUT in path.parent.name else ''})")
        return reader(path)

    def utt2spk(self) -> dict[str, str]:
        return self._utt2spk

    def _voiced(self, utt: str) -> np.ndarray:
        """Indices of the utterance's voiced frames (stage 1's VAD), cached for the last utterance."""
        if self._kept[0] != utt:
            if utt not in self.vads:
                raise ArchiveError(f"{self.set_dir}/vad.scp: no entry for {utt!r}")
            self._kept = (utt, np.flatnonzero(load(self.vads[utt]) > 0.5))
        return self._kept[1]

    def num_frames(self, utt: str) -> int:
        """The voiced frames of `utt`: what a crop's start is drawn over, as over its archive rows."""
        return len(self._voiced(utt))

    def dims(self) -> list[int]:
        return [self.opts.numcep if n == MFCC_INPUT else self.opts.nfilt if n == FBANK_INPUT
                else len(self.gmms[n].offset) for n in self.names]

    def read_crop(self, utt: str, start: int, length: int, sample: tuple[int, int] | None = None
                  ) -> list[np.ndarray]:
        """Voiced frames [start, start + length) of `utt` as each input (frames x dim, float32); augmented when the
        draw of `sample` (epoch, position in the epoch) says so."""
        kept = self._voiced(utt)[start:start + length]
        if len(kept) != length:
            raise ArchiveError(f"{utt}: voiced frames [{start}, {start + length}) asked for, it has "
                               f"{len(self._voiced(utt))}")
        kind, rng = self._draw(sample)
        first, stop = int(kept[0]), int(kept[-1]) + 1
        step = int(round(self.opts.winstep * self.opts.sample_rate))
        window = int(round(self.opts.winlen * self.opts.sample_rate))
        begin, end = first * step, (stop - 1) * step + window
        context = int(REVERB_CONTEXT_S * self.opts.sample_rate) if kind == "reverb" else 0
        read_from = max(0, begin - 1 - context)
        audio = self._audio(utt, read_from, end, first, stop, step, window)
        clean = self._frames(audio, begin - read_from, kept - first)
        if kind is None:
            return self._inputs(clean, utt, None)
        speech = audio / PCM16_SCALE
        wet = self.augmenter.apply(kind, speech, rng, self._utt2spk.get(utt))[0] * PCM16_SCALE
        return self._inputs(self._frames(wet, begin - read_from, kept - first), utt, clean)

    def _draw(self, sample: tuple[int, int] | None) -> tuple[str | None, np.random.Generator | None]:
        """The augmentation of a sample (None: none) and the stream its own draws continue from."""
        if self.augmenter is None or sample is None:
            return None, None
        rng = rng_for(self.seed, "online-augment", int(sample[0]), int(sample[1]))
        if rng.random() >= self.probability:
            return None, None
        return self.augmenter.choose(rng, 1)[0], rng

    def _audio(self, utt: str, read_from: int, end: int, first: int, stop: int, step: int,
               window: int) -> np.ndarray:
        entry = self.wav_scp[utt]
        try:
            audio = read_wav_scp_span(entry, read_from, end, self.opts.sample_rate, resample=self.opts.resample)
        except AudioError as err:
            raise OnlineAudioError(f"{self.set_dir}/wav.scp: utterance {utt!r} ({entry}): {err}") from err
        # Stage 1 framed the whole utterance, zero-padding its last frame: a shorter read is fine only there.
        length = read_from + len(audio)
        frames = 1 + max(0, -(-(length - window) // step))
        if frames < stop:
            raise OnlineAudioError(f"{self.set_dir}/wav.scp: utterance {utt!r} ({entry}) has {length} samples, "
                                   f"{frames} frames, but its stage-1 VAD has voiced frame {stop - 1}: the audio "
                                   f"changed since stage 1; rerun stage 1 for {self.set_dir.name}")
        return audio

    def _frames(self, audio: np.ndarray, offset: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        """MFCC and log mel filterbank rows `rows` of the frames starting at `audio[offset]` (`audio[offset - 1]`,
        if there, is the sample before the span), computed as stage 1 computes them."""
        span = audio[offset:]
        emphasised = np.empty_like(span)
        emphasised[1:] = span[1:] - self.opts.preemph * span[:-1]
        emphasised[0] = span[0] - (self.opts.preemph * audio[offset - 1] if offset > 0 else 0.0)
        window = int(round(self.opts.winlen * self.opts.sample_rate))
        if len(emphasised) < window:   # the last frame of an utterance: zero-padded, as python_speech_features does
            emphasised = np.concatenate([emphasised, np.zeros(window - len(emphasised))])
        try:
            mfcc, fbank = mfcc_and_fbank(emphasised, self._frame_opts)
        except FeatureError as err:   # not expected once the span is checked; named all the same
            raise FeatureError(f"{self.set_dir}: {err}") from err
        return {MFCC_INPUT: mfcc[rows], FBANK_INPUT: fbank[rows]}

    def _normalised(self, kind: str, frames: dict[str, np.ndarray], utt: str,
                    clean: dict[str, np.ndarray] | None) -> np.ndarray:
        stats = read_rows(self.stats[kind][utt], 0, 1, key=utt) if utt in self.stats[kind] else None
        if stats is None:
            raise ArchiveError(f"{self.set_dir}/{CMVN_TABLE}: no entry for {utt!r} ({kind})")
        rows = frames[kind]
        if clean is not None:   # the augmented utterance's mean: the clean one moved as the crop's mean moved
            rows = rows - (rows.mean(axis=0) - clean[kind].mean(axis=0))
        return remove_mean(rows, stats)

    def _inputs(self, frames: dict[str, np.ndarray], utt: str, clean: dict[str, np.ndarray] | None
                ) -> list[np.ndarray]:
        mfcc = self._normalised(MFCC_INPUT, frames, utt, clean) if (
            MFCC_INPUT in self.names or self.gmms) else None
        arrays = []
        for name in self.names:
            if name == MFCC_INPUT:
                arrays.append(mfcc)
            elif name == FBANK_INPUT:
                arrays.append(self._normalised(FBANK_INPUT, frames, utt, clean))
            else:
                arrays.append(self.gmms[name](mfcc))
        return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
