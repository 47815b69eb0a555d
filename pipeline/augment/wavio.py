"""Writing 16-bit audio files (wav, or flac: lossless, about half the size) atomically, so that a crash never
leaves half a file under the final name."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile

# Samples in [-1, 1] are written as round(x * PCM16_FULL_SCALE); `pipeline.utils.audio.read_audio` returns the
# integers themselves, so `read_audio(...) / PCM16_FULL_SCALE` written back gives the same file.
PCM16_FULL_SCALE = 32767.0


def write_wav_atomic(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = 16000,
                     audio_format: str = "wav") -> None:
    """Write `audio` (floats in [-1, 1], clipped beyond) as 16-bit mono wav (or flac): temporary name, then
    rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pcm = np.clip(np.round(audio * PCM16_FULL_SCALE), -32768, 32767).astype(np.int16)
    soundfile.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format=audio_format.upper())
    os.replace(tmp, path)
