"""What every clean utterance of the demo corpus goes through, as real recordings do: a simulated room, additive
babble (from people in neither split) or coloured noise, and a channel."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from local.demo.clean_speech import Clean
from local.demo.dsp import band_limit, normalise_level
from pipeline.augment.noise import babble_noise, coloured_noise, mix_at_snr
from pipeline.augment.rir import reverberate, room_impulse_response
from pipeline.augment.seeding import rng_for
from pipeline.utils.audio import load_audio, write_audio

# What every utterance goes through (see degrade_utterance).
REVERB_PROBABILITY = 0.6
RT60_RANGE_S = (0.15, 0.7)
RIR_BANK_SIZE = 256               # rooms simulated once per build, drawn per utterance
SNR_RANGE_DB = (5.0, 25.0)
BABBLE_PROBABILITY = 0.35         # otherwise coloured noise
BABBLE_TALKERS = (3, 6)
# Every utterance is low-passed below the narrowest source (the 11 kHz Ur-Quan Masters recordings end at 5.5 kHz),
# so that the bandwidth of a recording tells nothing of its source.
LOWPASS_RANGE_HZ = (3400.0, 5200.0)
HIGHPASS_PROBABILITY = 0.3
HIGHPASS_RANGE_HZ = (80.0, 300.0)


@dataclass
class Condition:
    """What was done to one utterance (written to conditions.tsv for people and analyses)."""
    utt: str
    rt60: float = 0.0
    noise: str = "none"
    snr_db: float = float("nan")
    highpass_hz: float = 0.0
    lowpass_hz: float = 0.0


def rir_bank(seed: int, size: int = RIR_BANK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """`size` simulated rooms (impulse responses zero-padded to one length) and their RT60s: drawing from a bank
    costs a fraction of simulating a room per utterance."""
    rooms = [room_impulse_response(rng_for(seed, "rir", k), RT60_RANGE_S) for k in range(size)]
    longest = max(len(r) for r, _ in rooms)
    bank = np.zeros((size, longest))
    for k, (rir, _) in enumerate(rooms):
        bank[k, :len(rir)] = rir
    return bank, np.array([rt60 for _, rt60 in rooms])


def degrade_utterance(speech: np.ndarray, babble_pool: list[str], rirs: tuple[np.ndarray, np.ndarray],
                      rng: np.random.Generator, utt: str) -> tuple[np.ndarray, Condition]:
    """Room, noise and channel for one utterance; `babble_pool` holds clean audio of people in neither split."""
    cond = Condition(utt)
    speech = normalise_level(speech)
    if rng.random() < REVERB_PROBABILITY:
        k = int(rng.integers(len(rirs[1])))
        speech = reverberate(speech, np.trim_zeros(rirs[0][k], "b"))
        cond.rt60 = float(rirs[1][k])
    cond.snr_db = float(rng.uniform(*SNR_RANGE_DB))
    if babble_pool and rng.random() < BABBLE_PROBABILITY:
        n_talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
        talkers = rng.choice(len(babble_pool), size=n_talkers, replace=len(babble_pool) < n_talkers)
        noise = babble_noise([load_audio(babble_pool[i])[0] for i in talkers], len(speech), rng)
        cond.noise = f"babble{len(talkers)}"
    else:
        exponent = float(rng.uniform(0.0, 2.0))
        noise = coloured_noise(len(speech), exponent, rng)
        cond.noise = f"coloured{exponent:.2f}"
    audio = mix_at_snr(speech, noise, cond.snr_db)
    cond.lowpass_hz = float(rng.uniform(*LOWPASS_RANGE_HZ))
    if rng.random() < HIGHPASS_PROBABILITY:
        cond.highpass_hz = float(rng.uniform(*HIGHPASS_RANGE_HZ))
    audio = band_limit(audio, cond.highpass_hz or None, cond.lowpass_hz)
    return normalise_level(audio), cond


def degrade_speaker_job(utterances: list[Clean], babble_pool: list[str], rir_file: str, wav_dir: str,
                        seed: int) -> list[tuple[Clean, Condition]]:
    """Room, noise and channel for every utterance of one speaker; write the final 16-bit wavs."""
    with np.load(rir_file) as bank:
        rirs = (bank["rirs"], bank["rt60"])
    out = []
    for clean in utterances:
        speech, _ = load_audio(clean.wav)
        audio, cond = degrade_utterance(speech, babble_pool, rirs, rng_for(seed, clean.speaker, clean.utt, "degrade"),
                                        clean.utt)
        write_audio(Path(wav_dir) / clean.speaker / f"{clean.utt}.wav", audio)
        out.append((clean, cond))
    return out
