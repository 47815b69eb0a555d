"""Additive noise: coloured noise, babble, noise tracks built from recordings, and mixing at a given SNR.

SNR here is 10 log10(sum speech^2 / sum noise^2) over the whole utterance, which is what a test can measure from
the mixture (`mix - speech` is the noise). Every noise generator returns unit RMS, so levels are set in one place.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def background_track(source: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`source` looped from a random offset to length n (Kaldi's background noises: music, babble talkers)."""
    return np.resize(np.roll(source, -int(rng.integers(len(source)))), n)


def babble_noise(sources: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Sum of several talkers, each looped from a random offset to length n at equal level; unit RMS."""
    total = np.zeros(n)
    for talker in sources:
        looped = background_track(talker, n, rng)
        total += looped / (np.sqrt(np.mean(looped ** 2)) + 1e-12)
    return total / (np.sqrt(np.mean(total ** 2)) + 1e-12)


def foreground_track(clips: Sequence[np.ndarray], n: int, interval: int) -> np.ndarray:
    """Noise clips one after another from the start, `interval` samples of silence between them, each at unit RMS,
    cut at n samples; unit RMS overall (Kaldi's foreground noises, `augment_data_dir.py --fg-interval`).

    The caller draws clips until they (and their gaps) cover n samples; later ones are ignored.
    """
    track = np.zeros(n)
    start = 0
    for clip in clips:
        if start >= n:
            break
        piece = _unit_rms(clip)[:n - start]
        track[start:start + len(piece)] = piece
        start += len(clip) + interval
    return _unit_rms(track)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that 10 log10(sum speech^2 / sum noise^2) equals snr_db."""
    if len(noise) != len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(speech)}")
    speech_power = np.mean(speech ** 2)
    noise_power = np.mean(noise ** 2) + 1e-20
    return speech + noise * np.sqrt(speech_power / (noise_power * 10 ** (snr_db / 10)))
