"""A synthetic speech-like corpus for tests and benchmarks: needs no voices, downloads or network.

Each speaker has a glottal pitch (male ~100-150 Hz, female ~180-250 Hz), a vocal-tract length (formant scale) and
a spectral tilt; an utterance is a random sequence of vowels (formant resonators over a jittered pulse train)
separated by short pauses, so the energy VAD has silence to remove and speakers differ as they do in speech.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import lfilter

SAMPLE_RATE = 16000
# (F1, F2, F3) in Hz of an adult male vocal tract: /a/, /i/, /u/, /e/, /o/.
VOWEL_FORMANTS = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480],
                           [570, 840, 2410]], dtype=float)
FORMANT_BANDWIDTHS = np.array([90.0, 110.0, 170.0])


def _resonate(signal: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Second-order resonator (one formant)."""
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    theta = 2 * np.pi * freq / SAMPLE_RATE
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], signal)


def synthesize_utterance(rng: np.random.Generator, f0: float, formant_scale: float, tilt: float,
                         seconds: float) -> np.ndarray:
    """int16 samples of about `seconds` of vowel-and-pause 'speech' by one speaker."""
    pieces = [np.zeros(int(0.15 * SAMPLE_RATE))]
    total = len(pieces[0])
    while total < seconds * SAMPLE_RATE:
        n = int(rng.uniform(0.08, 0.25) * SAMPLE_RATE)
        pitch = f0 * rng.uniform(0.9, 1.1)
        period = SAMPLE_RATE / pitch
        source = np.zeros(n)
        positions = np.cumsum(period * (1 + 0.02 * rng.standard_normal(int(n / period) + 2)))
        source[positions[positions < n].astype(int)] = 1.0
        source = lfilter([1.0], [1.0, -tilt], source) + 0.01 * rng.standard_normal(n)
        voiced = np.zeros(n)
        for formant, bandwidth in zip(VOWEL_FORMANTS[rng.integers(len(VOWEL_FORMANTS))] * formant_scale,
                                      FORMANT_BANDWIDTHS):
            voiced += _resonate(source, formant, bandwidth)
        voiced *= np.hanning(n) ** 0.3
        pieces.append(voiced / (np.abs(voiced).max() + 1e-9) * rng.uniform(0.3, 0.8))
        total += n
        if rng.random() < 0.3:
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.2) * SAMPLE_RATE)))
            total += len(pieces[-1])
    pieces.append(np.zeros(int(0.15 * SAMPLE_RATE)))
    audio = np.concatenate(pieces)
    audio += 0.002 * rng.standard_normal(len(audio))  # a noise floor, as in a real recording
    return (np.clip(audio, -1, 1) * 20000).astype(np.int16)


def make_corpus(root: str | Path, set_name: str, num_speakers: int, utts_per_speaker: int, *,
                seconds: tuple[float, float] = (2.0, 3.0), seed: int = 0, first_speaker: int = 0,
                relative: bool = False) -> Path:
    """Write wavs and a Kaldi data dir `<root>/data/<set_name>` (wav.scp, utt2spk, spk2utt, spk2gender). With
    `relative`, wav.scp names the wavs relative to `root`, as a recipe run in `root` writes its own audio.

    Speakers alternate male and female; speaker k has the same voice in every set (seeded by k).
    """
    from pipeline.utils.datadir import DataDir

    root = Path(root)
    wav_dir = root / "wav" / set_name
    wav_dir.mkdir(parents=True, exist_ok=True)
    wav_scp, utt2spk, spk2gender = {}, {}, {}
    for k in range(first_speaker, first_speaker + num_speakers):
        voice = np.random.default_rng([seed, k])
        gender = "m" if k % 2 == 0 else "f"
        f0 = voice.uniform(95, 150) if gender == "m" else voice.uniform(180, 250)
        formant_scale = voice.uniform(0.9, 1.05) if gender == "m" else voice.uniform(1.1, 1.25)
        tilt = voice.uniform(0.85, 0.98)
        spk = f"spk{k:03d}"
        spk2gender[spk] = gender
        for u in range(utts_per_speaker):
            utt = f"{spk}-{set_name}{u:02d}"
            rng = np.random.default_rng([seed, k, u, zlib.crc32(set_name.encode())])
            path = wav_dir / f"{utt}.wav"
            soundfile.write(path, synthesize_utterance(rng, f0, formant_scale, tilt, rng.uniform(*seconds)),
                            SAMPLE_RATE, subtype="PCM_16")
            wav_scp[utt] = str(path.relative_to(root)) if relative else str(path)
            utt2spk[utt] = spk
    data_dir = root / "data" / set_name
    DataDir({"wav.scp": wav_scp, "utt2spk": utt2spk}, {"spk2gender": spk2gender}).save(data_dir)
    return data_dir
