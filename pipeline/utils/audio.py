"""Reading audio named by a `wav.scp` entry: a file path, or a Kaldi pipe `cmd ... |` (e.g. ffmpeg for m4a)."""
from __future__ import annotations

import io
import subprocess
from math import gcd

import numpy as np
import soundfile


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, wrong rate, empty; the message names the entry."""


def read_audio(entry: str, sample_rate: int | None = None, *, resample: bool = False) -> tuple[np.ndarray, int]:
    """Read mono audio as float64 samples in 16-bit integer scale (as Kaldi reads wavs), and its rate.

    `entry` is a wav.scp value. Several channels are averaged. With `sample_rate` set, audio at another
    rate is an AudioError unless `resample` is true, in which case it is resampled (polyphase).
    """
    entry = entry.strip()
    try:
        if entry.endswith("|"):
            proc = subprocess.run(entry[:-1], shell=True, capture_output=True, check=False)
            if proc.returncode != 0:
                raise AudioError(f"command {entry!r} failed ({proc.returncode}): "
                                 f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
            source: object = io.BytesIO(proc.stdout)
        else:
            source = entry
        samples, rate = soundfile.read(source, dtype="float64", always_2d=True)
    except AudioError:
        raise
    except Exception as err:  # soundfile raises several types for corrupt or missing files
        raise AudioError(f"cannot read audio {entry!r}: {err}") from err
    samples = samples.mean(axis=1) * 32768.0
    if samples.size == 0:
        raise AudioError(f"audio {entry!r} is empty")
    if sample_rate is not None and rate != sample_rate:
        if not resample:
            raise AudioError(f"audio {entry!r} is {rate} Hz, expected {sample_rate} Hz "
                             f"(set features.resample=true to resample)")
        from scipy.signal import resample_poly

        g = gcd(rate, sample_rate)
        samples = resample_poly(samples, sample_rate // g, rate // g)
        rate = sample_rate
    return samples, rate
