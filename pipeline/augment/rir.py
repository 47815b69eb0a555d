"""Reverberation: simulated room impulse responses (image method, pyroomacoustics) and convolution with any RIR
(simulated, or read from RIRS_NOISES: `pipeline.augment.sources.find_rirs`)."""
from __future__ import annotations

import numpy as np


def room_impulse_response(rng: np.random.Generator, rt60_range: tuple[float, float] = (0.15, 0.8),
                          sample_rate: int = 16000) -> tuple[np.ndarray, float]:
    """A shoebox room of random size and RT60 (image method), source and microphone at random places.

    Returns the impulse response and the RT60 drawn (s).
    """
    import pyroomacoustics as pra  # slow to import; only the simulated path needs it

    dims = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 4.0])
    rt60 = float(rng.uniform(*rt60_range))
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # the room is too small for that RT60: take the most reverberant it allows
        absorption, max_order = 0.05, 30
    room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption), max_order=min(max_order, 30))
    source = rng.uniform(0.5, dims - 0.5)
    mic = rng.uniform(0.5, dims - 0.5)
    while np.linalg.norm(mic - source) < 0.5:
        mic = rng.uniform(0.5, dims - 0.5)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64), rt60


def reverberate(speech: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve, keeping the direct path aligned with the dry speech and the original length
    (Kaldi's `wav-reverberate --shift-output=true`)."""
    delay = int(np.argmax(np.abs(rir)))
    from scipy.signal import fftconvolve   # here: scipy.signal costs every stage that reads the config 0.3 s

    wet = fftconvolve(speech, rir[delay:])[:len(speech)]
    return wet
