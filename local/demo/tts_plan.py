"""What each synthesised utterance of the demo corpus says and how: text, voice, pitch, rate and padding.

Randomness comes from one independent stream per (seed, speaker, utterance, purpose) (pipeline/augment/seeding.py),
so results do not depend on --nj.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from local.demo.tts_voices import Speaker, read_texts
from pipeline.augment.seeding import rng_for, stable_hash

# Habitual F0 range of a speaker, per gender (Hz); each speaker gets a fixed value in it, each utterance varies it.
HABITUAL_F0 = {"m": (100.0, 140.0), "f": (175.0, 235.0)}
# Voices that tts_engines shifts with sox keep their measured native F0 (median over 6 lines) as habitual F0.
NATIVE_F0 = {"fl-rms": 102.0, "fl-slt": 170.0, "fe-ona": 182.0, "fe-nsh": 137.0, "fe-krb": 257.0}  # krb: a boy
# Engines that speak in the person's own pitch, shifted per utterance by a relative factor (no habitual F0 drawn).
RELATIVE_PITCH_ENGINES = ("rhvoice", "pico", "openjtalk")
# Rough reading rate (characters per second) to choose how many lines make an utterance of the drawn length.
CHARS_PER_SECOND = {"ja": 7.0, "hi": 10.0, "te": 10.0}


def habitual_f0(speaker: Speaker) -> float:
    """A fixed speaking pitch for the person, in their gender's range (diphone databases are monotone)."""
    if speaker.id in NATIVE_F0:
        return NATIVE_F0[speaker.id]
    lo, hi = HABITUAL_F0[speaker.gender]
    return lo + (hi - lo) * (stable_hash("f0:" + speaker.id) % 10007) / 10006


@dataclass
class UttPlan:
    utt: str
    speaker: str
    voice: str
    language: str
    text: str
    f0_hz: float          # mean F0 asked of the engine
    pitch_factor: float   # this utterance's pitch relative to the speaker's habitual F0
    stretch: float        # duration multiplier (>1 slower)
    lead_s: float         # silence before and after the speech
    tail_s: float
    wav: str = ""         # clean 16 kHz audio, filled by synthesis


def plan_speaker(speaker: Speaker, n_utts: int, seed: int, text_dir: str | os.PathLike,
                 min_dur: float, max_dur: float) -> list[UttPlan]:
    """Draw text, voice, pitch, rate and padding of each utterance of one speaker."""
    texts = {lang: read_texts(text_dir, lang) for lang in (speaker.languages or (speaker.language,))}
    plans = []
    for index in range(n_utts):
        rng = rng_for(seed, speaker.id, index, "plan")
        voice = speaker.voices[int(rng.integers(len(speaker.voices)))]
        language = speaker.language_of(voice)
        lines, cps = texts[language], CHARS_PER_SECOND.get(language, 13.0)
        stretch = float(rng.uniform(0.85, 1.2))
        target = float(rng.uniform(min_dur + 0.3, max_dur - 0.5))
        order = rng.permutation(len(lines))
        chosen, est = [], 0.0
        for i in order:  # add lines until the estimated reading time reaches the drawn duration
            chosen.append(lines[i])
            est += len(lines[i]) / cps * stretch
            if est >= target:
                break
        if len(chosen) > 1 and est > max_dur + 1.0:
            chosen.pop()
        pitch_factor = float(np.exp(rng.uniform(np.log(0.85), np.log(1.18))))
        relative = voice.split(":", 1)[0] in RELATIVE_PITCH_ENGINES
        plans.append(UttPlan(
            utt=f"{speaker.id}-{index + 1:04d}", speaker=speaker.id, voice=voice, language=language,
            text=" ".join(chosen), f0_hz=0.0 if relative else habitual_f0(speaker) * pitch_factor,
            pitch_factor=pitch_factor,
            stretch=stretch, lead_s=float(rng.uniform(0.05, 0.35)), tail_s=float(rng.uniform(0.05, 0.35))))
    return plans
