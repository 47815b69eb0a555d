"""Tiny synthetic 'voices' for fast tests that need no speech synthesiser: a harmonic source with a
speaker-specific pitch and spectral tilt, syllable-like amplitude bursts, silence around them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from pipeline.utils.datadir import DataDir

RATE = 16000


def voice(f0: float, tilt: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    harmonics = np.arange(1, 20)[:, None]
    source = (np.sin(harmonics * phase[None]) * harmonics ** -tilt).sum(0)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None)
    speech = source * syllables + 0.01 * rng.standard_normal(t.size)
    silence = np.zeros(int(0.3 * RATE))
    signal = np.concatenate([silence, speech, silence])
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def make_data_dir(root: Path, n_spk: int = 4, n_utt: int = 3, seed: int = 0) -> Path:
    """A valid Kaldi data dir of synthetic utterances (1.5-2.5 s), half the speakers of each gender."""
    rng = np.random.default_rng(seed)
    wav_dir, data_dir = root / "wav", root / "data" / "train"
    wav_dir.mkdir(parents=True, exist_ok=True)
    utt2spk, wavs, genders = {}, {}, {}
    for s in range(n_spk):
        spk = f"spk{s:02d}"
        genders[spk] = "m" if s % 2 == 0 else "f"
        f0 = (110 if genders[spk] == "m" else 210) + 15 * s
        for u in range(n_utt):
            utt = f"{spk}-utt{u:02d}"
            path = wav_dir / f"{utt}.wav"
            soundfile.write(path, voice(f0, 1.0 + 0.3 * s, rng.uniform(1.5, 2.5), rng), RATE, subtype="PCM_16")
            utt2spk[utt], wavs[utt] = spk, str(path)
    DataDir({"utt2spk": utt2spk, "wav.scp": wavs}, {"spk2gender": genders}).save(data_dir)
    return data_dir
