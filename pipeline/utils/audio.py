"""The one place audio is read and written: files, `wav.scp` entries, arrays a caller holds, resampling, and 16-bit
output.

Two readers, because only one kind of input may carry a command. `read_wav_scp_entry` reads a line of a data dir's
wav.scp: a path, or a Kaldi pipe `cmd ... |` (e.g. ffmpeg for m4a) that the shell runs; data dirs are prepared by
the user who runs the recipe, so the command is theirs. `read_audio_file` reads a path handed to the command line
or the API (`verify`, `score-pairs`, `SpeakerModel.embed`), which a service may take from its own users: it is
always opened as a file and never reaches a shell, even when it ends in `|`.

Scale: a 16-bit sample of integer value v is the float v / PCM16_SCALE (soundfile's convention). `load_audio` and
`write_audio` work in those floats ([-1, 1)); the readers return v itself, as Kaldi reads wavs, which is the
scale the MFCC energies and the VAD threshold are defined in. So `write_audio(read_audio_file(p)[0] / PCM16_SCALE)`
writes the same samples back.
"""
from __future__ import annotations

import io
import os
import shlex
import stat
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import soundfile

from pipeline.errors import PipelineError
from pipeline.utils.atomic import atomic_path

PCM16_SCALE = 32768.0
# A 2-D array's shorter axis is taken as its channels only up to this many: beyond, which axis is time is a guess.
MAX_CHANNELS = 8
# Integer samples -> floats in [-1, 1): (value - offset) / scale, by dtype; other integer types are refused.
INTEGER_SCALES = {np.dtype(np.int16): (0, PCM16_SCALE), np.dtype(np.int32): (0, 2.0 ** 31),
                  np.dtype(np.uint8): (128, 128.0)}


class AudioError(PipelineError, ValueError):
    """Audio that cannot be used: unreadable, wrong rate, empty, not finite; the message names the entry."""


def load_audio(source: str | os.PathLike | io.BytesIO, *, start: int = 0, frames: int = -1,
               name: str | None = None) -> tuple[np.ndarray, int]:
    """Mono float64 samples in [-1, 1) (channels averaged) and their rate; `frames` samples from `start` only, if
    given. AudioError, naming `name` (default: the source), for a missing or corrupt file."""
    name = name or str(source)
    try:
        samples, rate = soundfile.read(source if isinstance(source, io.BytesIO) else str(source), start=start,
                                       frames=frames, dtype="float64", always_2d=True)
    except Exception as err:  # soundfile raises several types for corrupt or missing files
        raise AudioError(f"cannot read audio {name!r}: {err}") from err
    return samples.mean(axis=1), rate


def audio_info(path: str | os.PathLike) -> soundfile._SoundFileInfo:
    """Sample rate, length and format of an audio file, without reading its samples."""
    try:
        return soundfile.info(str(path))
    except Exception as err:
        raise AudioError(f"cannot read audio {str(path)!r}: {err}") from err


def resampled(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling from `rate` to `target` Hz (the samples themselves when they are equal)."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly  # a second to import, for the few files at another rate

    g = gcd(rate, target)
    return resample_poly(samples, target // g, rate // g)


def read_audio_file(path: str | os.PathLike, sample_rate: int | None = None, *,
                    resample: bool = False) -> tuple[np.ndarray, int]:
    """The samples of an audio file as float64 in 16-bit integer scale (as Kaldi reads wavs), and their rate.

    `path` is opened as a file, never run: a name ending in `|` is a file name here too. With `sample_rate` set,
    audio at another rate is an AudioError unless `resample`, in which case it is resampled. Unreadable or empty
    audio and NaN or infinite samples are AudioErrors that say so.
    """
    name = str(path)
    try:
        samples, rate = load_audio(name)
    except AudioError as err:
        if name.rstrip().endswith("|") and not os.path.exists(name):
            raise AudioError(f"{err}; a path given here is opened as a file, never run as a command (a `cmd |` "
                             f"pipe is read only from the wav.scp of a data dir)") from err
        raise
    return checked_samples(samples, rate, name, sample_rate, resample=resample)


def read_wav_scp_entry(entry: str, sample_rate: int | None = None, *,
                       resample: bool = False) -> tuple[np.ndarray, int]:
    """`read_audio_file` for a line of a data dir's wav.scp: a path, or a Kaldi pipe `cmd ... |` whose command the
    shell runs (its failure is an AudioError with its stderr). Only for data dirs the user prepared or imported:
    a path from anywhere else goes to `read_audio_file`."""
    entry = entry.strip()
    if not entry.endswith("|"):
        return read_audio_file(entry, sample_rate, resample=resample)
    # A wav.scp pipe is a shell command line by Kaldi's definition (redirections, `|` between commands).
    proc = subprocess.run(entry[:-1], shell=True, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AudioError(f"command {entry!r} failed ({proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    samples, rate = load_audio(io.BytesIO(proc.stdout), name=entry)
    return checked_samples(samples, rate, entry, sample_rate, resample=resample)


def read_wav_scp_span(entry: str, start: int, stop: int, sample_rate: int, *,
                      resample: bool = False) -> np.ndarray:
    """Samples [start, stop) of a wav.scp entry as `read_wav_scp_entry` gives them (16-bit scale, at
    `sample_rate`; fewer at the end of the audio), reading only that span from a file at `sample_rate`. A pipe,
    or a file at another rate (`resample`), is read whole and sliced. AudioError naming the entry when nothing
    of the span is there."""
    path = entry.strip()
    if path.endswith("|"):
        return read_wav_scp_entry(entry, sample_rate, resample=resample)[0][start:stop]
    samples, rate = load_audio(path, start=start, frames=stop - start)
    if rate != sample_rate:
        return read_wav_scp_entry(entry, sample_rate, resample=resample)[0][start:stop]
    if samples.size == 0:
        raise AudioError(f"audio {path!r} has no samples from {start} on (is it shorter than when its features "
                         f"were computed?)")
    return checked_samples(samples, rate, f"{path} [{start}:{stop}]")[0]


def checked_samples(samples: np.ndarray, rate: int, name: str, sample_rate: int | None = None, *,
                    resample: bool = False) -> tuple[np.ndarray, int]:
    """Float samples in [-1, 1] as the readers return them (16-bit integer scale, at `sample_rate`), with its
    checks: empty audio, NaN or infinite samples, another rate without `resample` are AudioErrors naming `name`."""
    if samples.size == 0:
        raise AudioError(f"audio {name!r} is empty")
    bad = ~np.isfinite(samples)
    if bad.any():
        raise AudioError(f"audio {name!r} has {int(bad.sum())} NaN or infinite samples (the first at sample "
                         f"{int(np.argmax(bad))}): the file is corrupt")
    if sample_rate is not None and rate != sample_rate:
        if not resample:
            raise AudioError(f"audio {name!r} is {rate} Hz, expected {sample_rate} Hz "
                             f"(set features.resample=true to resample)")
        samples, rate = resampled(samples, rate, sample_rate), sample_rate
    return samples * PCM16_SCALE, rate


def samples_from_array(samples: np.ndarray, rate: object, name: str = "<samples>") -> tuple[np.ndarray, int]:
    """Mono float64 samples in [-1, 1] and the rate as an int, from an array a caller holds, by one rule:

    - rate: a positive whole number of Hz (an int, or a float such as 16000.0);
    - channels: a 1-D array is mono; a 2-D array is (samples, channels) or (channels, samples), its shorter axis
      taken as the channels when that has at most MAX_CHANNELS entries, and the channels are averaged;
    - scale: int16 is divided by 32768, int32 by 2**31, uint8 centred at 128 and divided by 128; other integer
      types are refused; floats are taken as they are and must lie within [-1, 1].

    Anything else is an AudioError naming `name` and what to change.
    """
    if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)) \
            or not float(rate).is_integer() or rate <= 0:
        raise AudioError(f"audio {name!r}: the sample rate must be a positive whole number of Hz, got {rate!r}")
    samples = np.asarray(samples)
    if samples.size == 0:
        raise AudioError(f"audio {name!r} is empty")
    if samples.dtype in INTEGER_SCALES:
        offset, scale = INTEGER_SCALES[samples.dtype]
        samples = (samples.astype(np.float64) - offset) / scale
    elif samples.dtype.kind != "f":
        raise AudioError(f"audio {name!r}: samples of type {samples.dtype} are refused; pass int16, int32 or "
                         f"uint8 samples, or floats in [-1, 1]")
    samples = samples.astype(np.float64, copy=False)
    peak = float(np.max(np.abs(samples), initial=0.0, where=np.isfinite(samples)))
    if peak > 1.0:
        raise AudioError(f"audio {name!r}: float samples reach {peak:.4g}, beyond [-1, 1]; scale them into [-1, 1] "
                         f"(16-bit values: divide by 32768), or pass them as int16 or int32")
    if samples.ndim == 2:
        channel_axis = int(np.argmin(samples.shape))
        if samples.shape[0] == samples.shape[1] or samples.shape[channel_axis] > MAX_CHANNELS:
            raise AudioError(f"audio {name!r}: cannot tell channels from samples in an array of shape "
                             f"{samples.shape}; pass (samples,) or (samples, channels) with at most {MAX_CHANNELS} "
                             f"channels")
        samples = samples.mean(axis=channel_axis)
    elif samples.ndim != 1:
        raise AudioError(f"audio {name!r}: an array of shape {samples.shape}; pass (samples,) or "
                         f"(samples, channels)")
    return samples, int(rate)


def write_audio(path: str | os.PathLike, samples: np.ndarray, sample_rate: int = 16000,
                audio_format: str = "wav") -> None:
    """Write float samples in [-1, 1] (clipped beyond) as 16-bit mono wav (or flac: lossless, about half the
    size), atomically."""
    pcm = np.clip(np.round(np.asarray(samples) * PCM16_SCALE), -32768, 32767).astype(np.int16)
    with atomic_path(Path(path)) as tmp:
        soundfile.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format=audio_format.upper())


def audio_file_facts(wav_scp: dict[str, str]) -> dict[str, list[tuple[str, int, int]]]:
    """utt -> (path, size, modification time) of each audio file its wav.scp entry reads, for the keys of the stages
    that read them: the plain path, or the files a pipe's command line names (`sox /x/a.wav -t wav - speed 0.9 |`),
    so that a changed recording is seen through a speed-perturbed copy too. Each file is statted once; a stage
    computes these once and hands each job its utterances' share."""
    facts = {}
    for utt, entry in wav_scp.items():
        entry = entry.strip()
        if not entry.endswith("|"):
            st = _stat(entry)
            facts[utt] = [(entry, st.st_size, st.st_mtime_ns) if st else (entry, -1, -1)]
            continue
        try:
            tokens = shlex.split(entry[:-1])
        except ValueError:
            tokens = []  # the command line stands for itself in the table's content
        named = [(t, _stat(t)) for t in tokens[1:] if os.sep in t]
        facts[utt] = [(t, st.st_size, st.st_mtime_ns) for t, st in named if st and stat.S_ISREG(st.st_mode)]
    return facts


def files_key(facts: dict[str, list[tuple[str, int, int]]]) -> list[tuple[str, list[int]]]:
    """What a stage key records of `audio_file_facts`: [(path, [size, mtime]), ...] over the distinct files, sorted."""
    return sorted({path: [size, mtime] for files in facts.values() for path, size, mtime in files}.items())


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None
