"""Signal processing shared by the demo corpus's synthesised and recorded speech (vectorised, no loops over
samples): levels, pauses, lengths, cuts and band limits, all at 16 kHz."""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

SAMPLE_RATE = 16000


def frame_energy(audio: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of consecutive frames of `frame` samples (a partial last frame is left out)."""
    n = len(audio) // frame
    return np.mean(audio[:n * frame].reshape(n, frame) ** 2, axis=1)


def frame_energy_db(audio: np.ndarray, rate: int, frame_s: float = 0.01) -> np.ndarray:
    """Energy of consecutive frames, in dB."""
    return 10 * np.log10(frame_energy(audio, max(1, int(frame_s * rate))) + 1e-20)


def active_rms(audio: np.ndarray, frame: int = 320) -> float:
    """RMS over the louder half of 20 ms frames: a level that pauses and silence padding do not dilute."""
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio ** 2)) + 1e-12)
    energies = np.sort(frame_energy(audio, frame))
    return float(np.sqrt(np.mean(energies[n // 2:])) + 1e-12)


def normalise_level(audio: np.ndarray, target_rms: float = 0.05, peak: float = 0.95) -> np.ndarray:
    """Scale to a fixed active level (about -26 dBFS), backing off only where that would clip."""
    out = audio * (target_rms / active_rms(audio))
    top = np.max(np.abs(out))
    return out * (peak / top) if top > peak else out


def compress_pauses(audio: np.ndarray, max_pause_s: float = 0.25, floor_db: float = 40.0) -> np.ndarray:
    """Shorten every silence (10 ms frames more than floor_db below the loudest) to at most max_pause_s.

    Diphone databases lacking a few diphones leave gaps where they fall (mbrola -e), and engines pad differently;
    this keeps the share of speech alike across voices.
    """
    frame = SAMPLE_RATE // 100
    n = len(audio) // frame
    if n == 0:
        return audio
    energy_db = frame_energy_db(audio, SAMPLE_RATE)
    silent = energy_db < energy_db.max() - floor_db
    starts_run = np.concatenate([[True], silent[1:] != silent[:-1]])
    run_start = np.flatnonzero(starts_run)
    run_id = np.cumsum(starts_run) - 1
    position_in_run = np.arange(n) - run_start[run_id]
    keep = ~silent | (position_in_run < int(max_pause_s * 100))
    return np.concatenate([audio[:n * frame][np.repeat(keep, frame)], audio[n * frame:]])


def fit_duration(audio: np.ndarray, lead_s: float, tail_s: float, min_dur: float, max_dur: float) -> np.ndarray:
    """Pad silence around the speech, cut at max_dur (with a 20 ms fade), pad up to min_dur."""
    out = np.concatenate([np.zeros(int(lead_s * SAMPLE_RATE)), audio, np.zeros(int(tail_s * SAMPLE_RATE))])
    max_len, min_len = int(max_dur * SAMPLE_RATE), int(np.ceil(min_dur * SAMPLE_RATE))
    if len(out) > max_len:
        out = out[:max_len].copy()
        fade = int(0.02 * SAMPLE_RATE)
        out[-fade:] *= np.linspace(1.0, 0.0, fade)
    if len(out) < min_len:
        out = np.concatenate([out, np.zeros(min_len - len(out))])
    return out


def band_limit(audio: np.ndarray, low_hz: float | None, high_hz: float | None) -> np.ndarray:
    """A channel: optional high-pass (4th-order) and low-pass (6th-order Butterworth)."""
    if low_hz is not None:
        audio = sosfilt(butter(4, low_hz, "highpass", fs=SAMPLE_RATE, output="sos"), audio)
    if high_hz is not None:
        audio = sosfilt(butter(6, high_hz, "lowpass", fs=SAMPLE_RATE, output="sos"), audio)
    return audio


def cut_at_pauses(audio: np.ndarray, rate: int, fractions: np.ndarray, search_s: float = 1.0) -> list[np.ndarray]:
    """Cut `audio` into len(fractions) + 1 pieces near the given fractions of its length, each cut moved to the
    quietest 10 ms frame within +-`search_s` (a pause, where one was spoken)."""
    energy = frame_energy_db(audio, rate)
    frame = int(0.01 * rate)
    window = int(search_s * 100)
    cuts = [0]
    for fraction in np.asarray(fractions, dtype=np.float64):
        centre = int(round(fraction * len(energy)))
        lo, hi = max(cuts[-1] // frame + 1, centre - window), min(len(energy), centre + window + 1)
        best = lo + int(np.argmin(energy[lo:hi])) if hi > lo else centre
        cuts.append(min(max(best * frame + frame // 2, cuts[-1]), len(audio)))
    cuts.append(len(audio))
    return [audio[a:b] for a, b in zip(cuts, cuts[1:])]
