"""Channel augmentation: a waveform band-limited and passed through a telephone or low-bitrate codec, as real
recordings reach a system (phone calls, voice messages, compressed uploads).

Each codec is a round trip through two sox processes on raw float PCM through pipes (encode, then decode), back
to the input's rate, length and scale, with the codec's delay removed so that the copy stays aligned with its
source. Names for `augment.codecs`, and the setting drawn per utterance:
  mu-law  G.711 mu-law at 8 kHz, 64 kbit/s          sox ... -t ul -r 8000 -
  a-law   G.711 A-law at 8 kHz, 64 kbit/s           sox ... -t al -r 8000 -
  gsm     GSM 06.10 full rate at 8 kHz, 13 kbit/s   sox ... -t gsm -r 8000 -
  amr-nb  AMR-NB at 8 kHz, mode 0-7 (4.75-12.2 kbit/s)   sox ... -t amr-nb -r 8000 -C <mode> -
  vorbis  Ogg Vorbis at the input's rate, quality -1 to 2 (21-31 kbit/s, speech at 16 kHz)   sox ... -t ogg -C <q> -
AMR-NB and Vorbis are optional in sox builds: `codec_problem` says whether this one encodes and decodes a codec.
MP3 is not offered: sox encodes it only through libmp3lame, which the recipe does not require.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from pipeline.errors import PipelineError


class CodecError(PipelineError):
    """sox could not encode or decode a codec; the message is sox's own."""


@dataclass(frozen=True)
class Codec:
    name: str
    sox_type: str                           # sox's file type (-t)
    rate: int | None = 8000                 # the codec's sample rate; None: the input's
    settings: tuple[int | None, ...] = (None,)   # sox -C values, one drawn per utterance (None: no -C)
    delay_s: float = 0.0                    # how far the decoded signal lags the input (measured on speech)


CODECS = {c.name: c for c in (
    Codec("mu-law", "ul"),
    Codec("a-law", "al"),
    Codec("gsm", "gsm"),
    # AMR-NB's 5 ms look-ahead: the decoded speech lags by 39 samples at 8 kHz (cross-correlation, recorded speech).
    Codec("amr-nb", "amr-nb", settings=tuple(range(8)), delay_s=39 / 8000),
    Codec("vorbis", "ogg", rate=None, settings=(-1, 0, 1, 2)),
)}
PEAK = 0.5  # the level the codec sees: -6 dBFS peaks, no clipping in a decoder's overshoot
# -R: fixed seeds (the same bytes every run); -D: no dither (no noise sox would add on its own); -V1: errors only.
SOX = ("-R", "-D", "-V1")


def _raw(rate: int) -> list[str]:
    return ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(rate)]


def _sox(args: list[str], data: bytes) -> bytes:
    sox = shutil.which("sox")
    if sox is None:
        raise CodecError("codec augmentation plays the audio through sox, which is not installed "
                         "(Debian/Ubuntu: apt-get install sox)")
    result = subprocess.run([sox, *SOX, *args], input=data, capture_output=True)
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines() or [f"exit status {result.returncode}"]
        raise CodecError(f"sox {' '.join(args)}: {lines[-1]}")
    return result.stdout


def codec_round_trip(speech: np.ndarray, sample_rate: int, codec: Codec, setting: int | None = None) -> np.ndarray:
    """`speech` (any scale) encoded and decoded by `codec`: same rate, length and scale, aligned with the input."""
    peak = float(np.max(np.abs(speech))) if len(speech) else 0.0
    if peak == 0.0:
        return np.array(speech, dtype=np.float64)
    rate = codec.rate or sample_rate
    quality = [] if setting is None else ["-C", str(setting)]
    encoded = _sox([*_raw(sample_rate), "-", "-t", codec.sox_type, "-r", str(rate), *quality, "-"],
                   (speech * (PEAK / peak)).astype("<f4").tobytes())
    decoded = _sox(["-t", codec.sox_type, *(["-r", str(rate), "-c", "1"] if codec.rate else []), "-",
                    *_raw(sample_rate), "-"], encoded)
    out = np.frombuffer(decoded, dtype="<f4").astype(np.float64)[round(codec.delay_s * sample_rate):]
    out = np.pad(out[:len(speech)], (0, max(0, len(speech) - len(out))))  # frame padding off, a short tail on
    return out * (peak / PEAK)


@functools.lru_cache(maxsize=None)
def codec_problem(name: str, sample_rate: int = 16000) -> str | None:
    """Why this machine's sox cannot encode and decode codec `name` (one line), or None when it can."""
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(sample_rate // 10) / sample_rate)
    try:
        out = codec_round_trip(tone, sample_rate, CODECS[name], CODECS[name].settings[0])
    except CodecError as err:
        return str(err)
    if not np.isfinite(out).all() or np.std(out) < 0.1 * np.std(tone):
        return f"sox round trip through {name} gave silence or garbage"
    return None


def band_limit(speech: np.ndarray, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    """Low-pass at `cutoff_hz` (Butterworth, 8th order run forwards and backwards: no delay, ~96 dB/octave)."""
    from scipy.signal import butter, sosfiltfilt   # here: scipy.signal costs every stage that reads the config 0.3 s

    sos = butter(8, cutoff_hz, fs=sample_rate, output="sos")
    return sosfiltfilt(sos, speech)
