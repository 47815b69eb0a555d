"""MFCC and log mel filterbank front end (python_speech_features), and Kaldi-style energy VAD.

Archives keep raw MFCC (and, with `fbank`, log mel filterbank energies on the same frames) of every frame plus a
0/1 VAD vector, as Kaldi does; `normalize_frames` is the one place that turns them into what the GMMs and networks
see (voiced frames, per-utterance mean removed).
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import python_speech_features as psf
from scipy.fft import dct

from pipeline.errors import PipelineError
from pipeline.utils.config import ConfigError, fingerprint


class FeatureError(PipelineError, ValueError):
    """An utterance that yields no usable features (too short, silent); the message says why."""


@dataclass(frozen=True)
class MfccOptions:
    """The `features:` section of a config. Paper: 16 kHz, 25 ms Hamming, 10 ms hop, 0.97, 80 mel, 80 cepstra."""

    sample_rate: int = 16000
    winlen: float = 0.025
    winstep: float = 0.01
    numcep: int = 80
    nfilt: int = 80
    nfft: int = 512
    preemph: float = 0.97
    # python_speech_features lifters by default (22): with 80 cepstra that flips the sign of 34 coefficients and
    # scales others by up to 12x. The paper's authors use none (torchaudio MFCC): 0.
    ceplifter: int = 0
    fbank: bool = False   # also the log mel filterbank energies (nfilt of them), for models with `input: fbank`
    # Kaldi compute-vad: voiced if log energy > threshold + mean_scale * mean(log energy), smoothed over
    # +-context frames, kept where more than `proportion` of the window is above threshold.
    vad_energy_threshold: float = 5.5
    vad_energy_mean_scale: float = 0.5
    vad_frames_context: int = 2
    vad_proportion_threshold: float = 0.12
    min_voiced_frames: int = 20
    resample: bool = False
    compress: bool = False

    @classmethod
    def from_config(cls, section: dict[str, Any] | None) -> "MfccOptions":
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"unknown features option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**section)

    def made_under(self) -> dict[str, str]:
        """What stage 1's outputs record of the options they were computed with, for `output_key` to check: every
        option but `resample`, which only allows audio of another rate in."""
        return {"features": fingerprint({k: v for k, v in asdict(self).items() if k != "resample"})}


def features_made_under(section: dict[str, Any] | None) -> dict[str, str] | None:
    """`made_under` of a config's `features:` section: what a reader of stage 1's outputs expects (None, nothing to
    check, for a caller without one)."""
    return None if section is None else MfccOptions.from_config(section).made_under()


@functools.lru_cache(maxsize=8)
def _mel_filterbank(nfilt: int, nfft: int, sample_rate: int) -> np.ndarray:
    """python_speech_features' mel filterbank (0 Hz to Nyquist), read-only: it is shared between calls."""
    bank = psf.get_filterbanks(nfilt, nfft, sample_rate, 0, sample_rate / 2)
    bank.setflags(write=False)
    return bank


def mfcc_and_fbank(samples: np.ndarray, opts: MfccOptions) -> tuple[np.ndarray, np.ndarray]:
    """MFCC (frames x numcep; c0 replaced by the frame log energy) and log mel filterbank energies (frames x nfilt)
    of 16-bit-scale samples, float32, from one filterbank pass: python_speech_features' mfcc, computed here so
    that the filterbank is not computed twice."""
    if samples.size < int(round(opts.winlen * opts.sample_rate)):
        raise FeatureError(f"audio is {samples.size} samples, shorter than one {opts.winlen * 1000:.0f} ms window")
    # python_speech_features' fbank, step by step, with its mel filterbank built once per setting (built per call,
    # in a Python loop, it took a quarter of a training crop's features when the loader computes them from audio)
    frames = psf.sigproc.framesig(psf.sigproc.preemphasis(samples, opts.preemph), opts.winlen * opts.sample_rate,
                                  opts.winstep * opts.sample_rate, np.hamming)
    power = psf.sigproc.powspec(frames, opts.nfft)
    frame_energy = np.sum(power, 1)
    frame_energy = np.where(frame_energy == 0, np.finfo(float).eps, frame_energy)
    energies = np.dot(power, _mel_filterbank(opts.nfilt, opts.nfft, opts.sample_rate).T)
    energies = np.where(energies == 0, np.finfo(float).eps, energies)
    log_fbank = np.log(energies)
    mfcc = psf.lifter(dct(log_fbank, type=2, axis=1, norm="ortho")[:, :opts.numcep], opts.ceplifter)
    mfcc[:, 0] = np.log(frame_energy)
    return mfcc.astype(np.float32), log_fbank.astype(np.float32)


def energy_vad(log_energy: np.ndarray, opts: MfccOptions) -> np.ndarray:
    """Kaldi `compute-vad` decisions (float32 0/1 per frame) from per-frame log energy (MFCC c0)."""
    threshold = opts.vad_energy_threshold + opts.vad_energy_mean_scale * float(np.mean(log_energy))
    above = (log_energy > threshold).astype(np.float32)
    width = 2 * opts.vad_frames_context + 1
    # Count of above-threshold frames in each window; windows are clipped at the edges, as in Kaldi.
    counts = np.convolve(above, np.ones(width, dtype=np.float32), mode="same")
    window = np.convolve(np.ones_like(above), np.ones(width, dtype=np.float32), mode="same")
    return (counts > opts.vad_proportion_threshold * window).astype(np.float32)


def features_and_vad(samples: np.ndarray, opts: MfccOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MFCC, VAD and (with `opts.fbank`) log mel filterbank of one utterance; FeatureError when it has fewer than
    `min_voiced_frames` voiced frames."""
    feats, fbank = mfcc_and_fbank(samples, opts)
    vad = energy_vad(feats[:, 0], opts)
    voiced = int(vad.sum())
    if voiced < opts.min_voiced_frames:
        raise FeatureError(f"only {voiced} voiced frames of {len(vad)} (silent or too short; "
                           f"min_voiced_frames={opts.min_voiced_frames})")
    return feats, vad, fbank if opts.fbank else None


def mfcc_and_vad(samples: np.ndarray, opts: MfccOptions) -> tuple[np.ndarray, np.ndarray]:
    """MFCC and VAD of one utterance; FeatureError when it has fewer than `min_voiced_frames` voiced frames."""
    feats, vad, _ = features_and_vad(samples, opts)
    return feats, vad


def cmvn_stats(feats: np.ndarray, vad: np.ndarray | None = None) -> np.ndarray:
    """Kaldi's per-utterance CMVN statistics of the voiced frames (`compute-cmvn-stats --weights`; all frames without
    a VAD): a 2 x (D+1) float64 matrix, row 0 the sums and the count, row 1 the sums of squares. Stage 1 stores them
    (`utt_cmvn.scp`) from the features before any archive compression, so that a training crop is normalised as the
    whole utterance is, without reading all of it."""
    voiced = (feats if vad is None else feats[vad > 0.5]).astype(np.float64)
    stats = np.zeros((2, feats.shape[1] + 1))
    stats[0, :-1], stats[0, -1], stats[1, :-1] = voiced.sum(0), len(voiced), (voiced ** 2).sum(0)
    return stats


def remove_mean(frames: np.ndarray, stats: np.ndarray) -> np.ndarray:
    """CMN: `frames` (float32) minus the mean that `cmvn_stats` recorded (its first row is enough)."""
    return np.asarray(frames, dtype=np.float32) - (stats[0, :-1] / stats[0, -1]).astype(np.float32)


def normalize_frames(feats: np.ndarray, vad: np.ndarray | None, *, voiced_only: bool = True,
                     stats: np.ndarray | None = None) -> np.ndarray:
    """Keep voiced frames (Kaldi's select-voiced-frames) and subtract their mean (CMN); float32 frames x dim. The one
    place raw features become what the GMMs, the LGP maps and the networks read, from archives and from audio alike.
    `stats`: stage 1's `cmvn_stats` of the utterance (voiced frames, before compression); computed here without."""
    keep = voiced_only and vad is not None
    frames = feats[vad > 0.5] if keep else feats
    if stats is None or not keep:   # stage 1's statistics are of the voiced frames
        stats = cmvn_stats(frames)
    return remove_mean(frames, stats)