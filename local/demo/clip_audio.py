"""A recorded clip as speech: decoded (G.722 through libspandsp, Ogg Vorbis and wav through soundfile), resampled to
16 kHz, and trimmed to where its speech is."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from local.demo.dsp import SAMPLE_RATE, frame_energy
from local.demo.recorded_speakers import RecordedSpeaker, RecordingError, speaker_clips
from pipeline.utils.audio import audio_info, load_audio, resampled

# Raw G.722 at 64 kbit/s: one byte holds two 16 kHz samples.
G722_RATE = 16000
G722_BYTES_PER_SECOND = 8000

# Trimming, in frames of 10 ms. A clip's speech is where its energy (over 50 ms) passes a floor 10 dB
# above its quietest tenth of frames (the background), kept between 40 dB (the floor the corpus's pause
# compression uses) and 25 dB under its loudest frame. A clip whose loudest frame is below -60 dBFS is silence.
FRAME = SAMPLE_RATE // 100
SMOOTHING_FRAMES = 5
SPEECH_FLOOR_DB = 40.0
NOISE_MARGIN_DB = 10.0
MAX_FLOOR_DB = 25.0
SILENT_CLIP_DBFS = -60.0
EDGE_MARGIN_S = 0.02          # kept around the speech when trimming, so onsets and releases survive


@functools.lru_cache(maxsize=1)
def _spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp")
    if name is None:
        raise RecordingError("libspandsp is not installed, and the Asterisk prompts are G.722, which it decodes: "
                             "install the Debian package libspandsp2 (apt-get install libspandsp2)")
    lib = ctypes.CDLL(name)
    lib.g722_decode_init.restype = ctypes.c_void_p
    lib.g722_decode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_decode.restype = ctypes.c_int
    lib.g722_decode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16), ctypes.c_char_p, ctypes.c_int]
    lib.g722_decode_free.argtypes = [ctypes.c_void_p]
    return lib


def _decode_g722(path: Path) -> np.ndarray:
    lib = _spandsp()
    data = path.read_bytes()
    out = np.zeros(2 * len(data) + 16, dtype=np.int16)
    state = lib.g722_decode_init(None, 64000, 0)
    if not state:
        raise RecordingError(f"libspandsp could not start a G.722 decoder for {path}")
    try:
        n = lib.g722_decode(state, out.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), data, len(data))
    finally:
        lib.g722_decode_free(state)
    return out[:n] / 32768.0


def decode_clip(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Mono float64 samples in [-1, 1] and their rate: raw G.722 (*.g722, 64 kbit/s, 16 kHz) through libspandsp,
    anything else (Ogg Vorbis, wav) through soundfile; channels are averaged."""
    path = Path(path)
    if path.suffix == ".g722":
        return _decode_g722(path), G722_RATE
    return load_audio(path)


def _header_seconds(path: Path) -> float:
    if path.suffix == ".g722":
        return path.stat().st_size / G722_BYTES_PER_SECOND
    info = audio_info(path)
    return info.frames / info.samplerate


def available_seconds(speaker: RecordedSpeaker, roots: dict[str, Path] | dict[str, str]) -> float:
    """Seconds of audio in the person's clips, from the file headers (silence at the clip edges included)."""
    return float(sum(_header_seconds(p) for p in speaker_clips(speaker, roots)))


def smoothed_energy(audio: np.ndarray) -> np.ndarray:
    """Frame energy averaged over 50 ms: single 10 ms frames of background noise vary by +-5 dB."""
    energy = frame_energy(audio, FRAME)
    if len(energy) < SMOOTHING_FRAMES:
        return energy
    return np.convolve(energy, np.ones(SMOOTHING_FRAMES) / SMOOTHING_FRAMES, mode="same")


@dataclass
class ClipSpeech:
    """One decoded clip at 16 kHz, DC removed, leading and trailing silence trimmed."""
    samples: np.ndarray
    floor: float    # smoothed frame energy under which the clip is pause or background


def speech_span(samples: np.ndarray, floor: float) -> tuple[int, int]:
    """First and last sample of the frames above `floor`, widened by EDGE_MARGIN_S; (0, 0) if there are none."""
    loud = np.flatnonzero(smoothed_energy(samples) > floor)
    if loud.size == 0:
        return 0, 0
    margin = int(EDGE_MARGIN_S * SAMPLE_RATE)
    return max(0, loud[0] * FRAME - margin), min(len(samples), (loud[-1] + 1) * FRAME + margin)


def clip_speech(path: Path) -> ClipSpeech:
    """The clip decoded, at 16 kHz, without DC, trimmed to its speech, with the floor it was trimmed at."""
    audio, rate = decode_clip(path)
    audio = resampled(audio, rate, SAMPLE_RATE)
    audio = audio - audio.mean() if audio.size else audio
    energy_db = 10 * np.log10(smoothed_energy(audio) + 1e-20)
    if energy_db.size == 0 or energy_db.max() <= SILENT_CLIP_DBFS:
        return ClipSpeech(np.zeros(0), 0.0)
    # Above the clip's background noise (a clip with a noise floor 30 dB down has no frame 40 dB down), but never
    # so high that the quieter speech sounds go.
    top = float(energy_db.max())
    floor_db = np.clip(np.percentile(energy_db, 10) + NOISE_MARGIN_DB, top - SPEECH_FLOOR_DB, top - MAX_FLOOR_DB)
    floor = 10 ** (floor_db / 10)
    start, end = speech_span(audio, floor)
    return ClipSpeech(audio[start:end], floor)
