"""Tiny RIRS_NOISES and MUSAN trees, laid out as distributed and as pipeline/augment/sources.py reads them:

  RIRS_NOISES/simulated_rirs/{smallroom,mediumroom}/RoomNNN/RoomNNN-NNNNN.wav and each set's `rir_list`
      (`--rir-id smallroom-Room001-00001 --room-id smallroom-Room001 RIRS_NOISES/simulated_rirs/...wav`): impulse
      responses of shoebox rooms by the image method, as the package's own were made (pipeline/augment/rir.py)
  musan/noise/<source>/noise-<source>-NNNN.wav        coloured noise, hum, and noise bursts
  musan/music/<source>/music-<source>-NNNN.wav + ANNOTATIONS (`<file-id> <genres> <vocals Y|N> <artist>`): plucked
      melodies over a bass line; one file marked as having vocals (a voice mixed in), which the recipe leaves out
  musan/speech/<source>/speech-<source>-NNNN.wav      synthesised speech (the caller's clean TTS files)
All 16 kHz 16-bit mono wav, as both packages are.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pipeline.augment.noise import coloured_noise
from pipeline.augment.rir import room_impulse_response
from pipeline.augment.seeding import rng_for
from pipeline.utils.atomic import write_text_atomic
from pipeline.utils.audio import load_audio, write_audio

RATE = 16000
# RT60 ranges (s) of the two room sets Kaldi's voxceleb v2 recipe reverberates with.
ROOM_SETS = {"smallroom": (0.2, 0.5), "mediumroom": (0.4, 0.8)}
ROOMS_PER_SET = 2
RIRS_PER_ROOM = 2
NOISE_SOURCES = ("free-sound", "sound-bible")
MUSIC_SOURCES = ("fma", "rfm")
SPEECH_SOURCES = ("librivox", "us-gov")
NOISE_SECONDS = 4.0
MUSIC_SECONDS = 8.0


def write_rirs_noises(root: Path, seed: int) -> None:
    """RIRS_NOISES/simulated_rirs with ROOMS_PER_SET rooms x RIRS_PER_ROOM responses per set, peak at 0.9."""
    for set_name, rt60 in ROOM_SETS.items():
        set_dir = root / "simulated_rirs" / set_name
        lines = []
        for room in range(1, ROOMS_PER_SET + 1):
            for n in range(1, RIRS_PER_ROOM + 1):
                rir, _ = room_impulse_response(rng_for(seed, "rir", set_name, room, n), rt60, RATE)
                rel = f"Room{room:03d}/Room{room:03d}-{n:05d}.wav"
                write_audio(set_dir / rel, 0.9 * rir / np.max(np.abs(rir)), RATE)
                lines.append(f"--rir-id {set_name}-Room{room:03d}-{n:05d} --room-id {set_name}-Room{room:03d} "
                             f"RIRS_NOISES/simulated_rirs/{set_name}/{rel}\n")
        write_text_atomic(set_dir / "rir_list", "".join(lines))


def _hum(n: int, rng: np.random.Generator) -> np.ndarray:
    mains = rng.choice([50.0, 60.0])
    t = np.arange(n) / RATE
    hum = sum(np.sin(2 * np.pi * mains * h * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    return hum / np.sqrt(np.mean(hum ** 2)) + 0.3 * coloured_noise(n, 1.0, rng)


def _bursts(n: int, rng: np.random.Generator) -> np.ndarray:
    envelope = np.zeros(n)
    for start in rng.integers(0, n, size=12):
        length = int(rng.integers(RATE // 20, RATE // 4))
        envelope[start:start + length] += np.exp(-np.arange(min(length, n - start)) / (length / 4))
    return coloured_noise(n, 0.5, rng) * (0.1 + envelope)


def noise_clip(kind: int, rng: np.random.Generator) -> np.ndarray:
    """One of three kinds of background noise: steady coloured noise (fan, traffic), mains hum, bursts (knocks)."""
    n = int(NOISE_SECONDS * RATE)
    clip = (coloured_noise(n, float(rng.uniform(0.5, 2.0)), rng), _hum(n, rng), _bursts(n, rng))[kind % 3]
    return 0.3 * clip / np.max(np.abs(clip))


def music_clip(rng: np.random.Generator) -> np.ndarray:
    """A plucked melody on a pentatonic scale over a bass note per bar, harmonics decaying like a string's."""
    n = int(MUSIC_SECONDS * RATE)
    out = np.zeros(n)
    root = float(rng.uniform(196.0, 330.0))
    scale = root * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16]) / 12)
    beat = float(rng.uniform(0.2, 0.4))
    t = np.arange(int(1.5 * RATE)) / RATE
    position = 0
    while position < n:
        notes = [rng.choice(scale)] + ([scale[0] / 2] if position % int(8 * beat * RATE) < beat * RATE else [])
        for f0 in notes:
            tone = sum(np.sin(2 * np.pi * f0 * h * t) * np.exp(-t * (2.0 + 1.5 * h)) / h for h in range(1, 7))
            end = min(n, position + len(t))
            out[position:end] += tone[:end - position]
        position += int(beat * RATE)
    return 0.5 * out / np.max(np.abs(out))


def write_musan(root: Path, speech: list[str], seed: int) -> None:
    """musan/{noise,music,speech}: three noise clips a source, two music clips a source (the last of all with
    vocals: the first speech file mixed in), and the `speech` files (clean 16 kHz wavs, moved in)."""
    for s, source in enumerate(NOISE_SOURCES):
        for i in range(3):
            clip = noise_clip(i + s, rng_for(seed, "noise", source, i))
            write_audio(root / "noise" / source / f"noise-{source}-{i:04d}.wav", clip, RATE)
    voice, _ = load_audio(speech[0])
    for s, source in enumerate(MUSIC_SOURCES):
        annotations = []
        for i in range(2):
            clip = music_clip(rng_for(seed, "music", source, i))
            vocals = s == len(MUSIC_SOURCES) - 1 and i == 1
            if vocals:
                clip[:len(voice)] += voice[:len(clip)]
                clip *= 0.9 / np.max(np.abs(clip))
            name = f"music-{source}-{i:04d}"
            write_audio(root / "music" / source / f"{name}.wav", clip, RATE)
            annotations.append(f"{name} {'pop' if vocals else 'classical,instrumental'} {'Y' if vocals else 'N'} "
                               f"Rehearsal_Band_{s}{i}\n")
        write_text_atomic(root / "music" / source / "ANNOTATIONS", "".join(annotations))
    for i, wav in enumerate(speech):
        source = SPEECH_SOURCES[i % len(SPEECH_SOURCES)]
        dest = root / "speech" / source / f"speech-{source}-{i // len(SPEECH_SOURCES):04d}.wav"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(wav, dest)
