"""Clean speech of the demo corpus, one job per person, TTS or recorded, both giving `Clean` utterances (jobs are
module-level functions of keyword arguments, so that run_jobs can ship them)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from local.demo.recorded_speakers import RecordedSpeaker
from local.demo.recorded_utterances import recorded_speaker_job
from local.demo.tts_engines import synthesize_speaker_job
from local.demo.tts_plan import plan_speaker
from local.demo.tts_voices import Speaker


@dataclass
class Clean:
    """One clean utterance, before room, noise and channel."""
    utt: str
    speaker: str
    language: str
    wav: str
    source: str     # the voice (engine:name) or the package it came from
    details: str    # TTS: pitch, rate, text; recorded: the clips it was joined or cut from


def tts_job(speaker: Speaker, n_utts: int, seed: int, text_dir: str, clean_dir: str, min_dur: float,
            max_dur: float) -> list[Clean]:
    """Plan and synthesise a TTS speaker's utterances."""
    plans = plan_speaker(speaker, n_utts, seed, text_dir, min_dur, max_dur)
    return [Clean(p.utt, p.speaker, p.language, p.wav, p.voice,
                  f"f0={p.f0_hz:.0f} pitch={p.pitch_factor:.3f} stretch={p.stretch:.3f} text={p.text}")
            for p in synthesize_speaker_job(plans, clean_dir, text_dir, min_dur, max_dur)]


def recorded_job(speaker: RecordedSpeaker, roots: dict[str, str], n_utts: int, seed: int, clean_dir: str,
                 min_dur: float, max_dur: float) -> list[Clean]:
    """Make a recorded speaker's utterances from their clips."""
    made = recorded_speaker_job(speaker, roots, n_utts, seed, min_dur, max_dur, clean_dir)
    return [Clean(u["utt"], speaker.id, u["language"], u["wav"], ",".join(speaker.packages), u["clips"])
            for u in made]


def clean_speech_job(job: Callable[..., list[Clean]], **kwargs) -> list[Clean]:
    """Run one clean-speech job, TTS or recorded (run_jobs ships a function and its keyword arguments)."""
    return job(**kwargs)
