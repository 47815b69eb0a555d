"""Recordings that augmentation draws from: MUSAN (noise, music, speech) and RIRS_NOISES, read whole or in pieces.

MUSAN (openslr.org/resources/17) as distributed: `musan/{noise,music,speech}/<source>/*.wav`, 16 kHz; music
directories hold an `ANNOTATIONS` file (`<file-id> <genres> <vocals Y/N> ...`). Kaldi's `make_musan.sh` leaves
out music with vocals, so that the music copy does not become a second babble copy; so do we unless asked.

RIRS_NOISES (openslr.org/resources/28) as Kaldi's egs/voxceleb/v2 uses it: only `simulated_rirs/smallroom` and
`simulated_rirs/mediumroom`, each picked with probability 0.5, then one of its `RoomNNN/RoomNNN-NNNNN.wav` at random
(the real RIRs and the isotropic and point-source noises of the package are not used there).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.augment.noise import background_track
from pipeline.errors import PipelineError
from pipeline.utils.audio import AudioError, audio_info, load_audio, resampled

MUSAN_KINDS = ("noise", "music", "speech")
# The room sets of RIRS_NOISES that Kaldi's voxceleb v2 recipe reverberates with, equally likely.
KALDI_RIR_SETS = ("smallroom", "mediumroom")


class SourceError(PipelineError, ValueError):
    """A MUSAN or RIR directory, or one of its files, that cannot be used; the message names it."""


def _music_with_vocals(music_dir: Path) -> set[str]:
    vocal = set()
    for annotation_file in music_dir.rglob("ANNOTATIONS"):
        for line in annotation_file.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "Y":
                vocal.add(fields[0])
    return vocal


def find_musan(musan: str | os.PathLike, *, use_vocals: bool = False) -> dict[str, list[Path]]:
    """The wav files of each MUSAN part (`noise`, `music`, `speech`), sorted; music with vocals left out unless
    `use_vocals`. Raises SourceError when the directory or one of the three parts has no wav file."""
    root = Path(musan)
    found = {}
    for kind in MUSAN_KINDS:
        files = sorted((root / kind).rglob("*.wav"))
        if kind == "music" and not use_vocals:
            vocal = _music_with_vocals(root / kind)
            files = [f for f in files if f.stem not in vocal]
        if not files:
            raise SourceError(f"{root}/{kind}: no wav files; expected the MUSAN corpus (openslr.org/resources/17) "
                              f"laid out as musan/{{noise,music,speech}}/<source>/*.wav")
        found[kind] = files
    return found


def read_file(path: str | os.PathLike, sample_rate: int, max_samples: int | None = None) -> np.ndarray:
    """A recording (its first `max_samples` only, if given), mono float64 at `sample_rate`."""
    try:
        frames = -1
        if max_samples is not None:
            frames = int(np.ceil(max_samples * audio_info(path).samplerate / sample_rate)) + 16
        samples, rate = load_audio(path, frames=frames)
    except AudioError as err:
        raise SourceError(str(err)) from err
    if samples.size == 0:
        raise SourceError(f"{path} is empty")
    return resampled(samples, rate, sample_rate)[:max_samples]


def read_segment(path: str | os.PathLike, n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """n samples from a random offset of a recording (looped when it is shorter), without reading all of it:
    MUSAN music and speech files last minutes, an utterance seconds."""
    try:
        info = audio_info(path)
    except AudioError as err:
        raise SourceError(str(err)) from err
    need = int(np.ceil(n * info.samplerate / sample_rate)) + 16  # a few spare samples for the resampler's edges
    if info.frames <= need:
        return background_track(read_file(path, sample_rate), n, rng)
    start = int(rng.integers(info.frames - need + 1))
    samples, rate = load_audio(path, start=start, frames=need)
    return resampled(samples, rate, sample_rate)[:n]


def find_rirs(rirs_noises: str | os.PathLike, sets: tuple[str, ...] = KALDI_RIR_SETS) -> dict[str, list[Path]]:
    """The RIR files of each room set, `RIRS_NOISES/simulated_rirs/<set>/Room*/Room*-*.wav`, sorted.

    Sets that are absent are left out; SourceError when the directory or all of the sets are missing.
    """
    base = Path(rirs_noises) / "simulated_rirs"
    if not base.is_dir():
        raise SourceError(f"{rirs_noises}: no simulated_rirs/ directory; expected the unzipped rirs_noises.zip of "
                          f"openslr.org/resources/28 (RIRS_NOISES/simulated_rirs/{{smallroom,mediumroom}}/RoomNNN/"
                          f"RoomNNN-NNNNN.wav)")
    found = {}
    for name in sets:
        files = sorted((base / name).glob("Room*/Room*-*.wav"))
        if files:
            found[name] = files
    if not found:
        raise SourceError(f"{base}: no RIRs in {', '.join(sets)} (expected e.g. {base}/{sets[0]}/Room001/"
                          f"Room001-00001.wav)")
    return found
