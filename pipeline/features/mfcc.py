"""MFCC front end (python_speech_features) and Kaldi-style energy VAD.

Archives keep raw MFCC of every frame plus a 0/1 VAD vector, as Kaldi does; `normalize_frames` is the one
place that turns them into what the GMMs and networks see (voiced frames, per-utterance mean removed).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import python_speech_features as psf

from pipeline.errors import PipelineError
from pipeline.utils.config import ConfigError


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
    ceplifter: int = 22
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


def compute_mfcc(samples: np.ndarray, opts: MfccOptions) -> np.ndarray:
    """MFCC (frames x numcep, float32) of 16-bit-scale samples; c0 is replaced by the frame log energy."""
    if samples.size < int(round(opts.winlen * opts.sample_rate)):
        raise FeatureError(f"audio is {samples.size} samples, shorter than one {opts.winlen * 1000:.0f} ms window")
    feats = psf.mfcc(samples, samplerate=opts.sample_rate, winlen=opts.winlen, winstep=opts.winstep,
                     numcep=opts.numcep, nfilt=opts.nfilt, nfft=opts.nfft, preemph=opts.preemph,
                     ceplifter=opts.ceplifter, appendEnergy=True, winfunc=np.hamming)
    return feats.astype(np.float32)


def energy_vad(log_energy: np.ndarray, opts: MfccOptions) -> np.ndarray:
    """Kaldi `compute-vad` decisions (float32 0/1 per frame) from per-frame log energy (MFCC c0)."""
    threshold = opts.vad_energy_threshold + opts.vad_energy_mean_scale * float(np.mean(log_energy))
    above = (log_energy > threshold).astype(np.float32)
    width = 2 * opts.vad_frames_context + 1
    # Count of above-threshold frames in each window; windows are clipped at the edges, as in Kaldi.
    counts = np.convolve(above, np.ones(width, dtype=np.float32), mode="same")
    window = np.convolve(np.ones_like(above), np.ones(width, dtype=np.float32), mode="same")
    return (counts > opts.vad_proportion_threshold * window).astype(np.float32)


def mfcc_and_vad(samples: np.ndarray, opts: MfccOptions) -> tuple[np.ndarray, np.ndarray]:
    """MFCC and VAD of one utterance; FeatureError when it has fewer than `min_voiced_frames` voiced frames."""
    feats = compute_mfcc(samples, opts)
    vad = energy_vad(feats[:, 0], opts)
    voiced = int(vad.sum())
    if voiced < opts.min_voiced_frames:
        raise FeatureError(f"only {voiced} voiced frames of {len(vad)} (silent or too short; "
                           f"min_voiced_frames={opts.min_voiced_frames})")
    return feats, vad


def normalize_frames(feats: np.ndarray, vad: np.ndarray | None, *, voiced_only: bool = True) -> np.ndarray:
    """Keep voiced frames (Kaldi's select-voiced-frames) and subtract their mean (CMN); float32 frames x dim."""
    if voiced_only and vad is not None:
        feats = feats[vad > 0.5]
    feats = np.asarray(feats, dtype=np.float32)
    return feats - feats.mean(axis=0, keepdims=True)
