"""Utterances of a recorded person: `recorded_speaker_job` turns their clips into utterances of the corpus's length
range. Short clips (single words, IVR prompts) are joined with short pauses, long ones (game dialogue) are cut at
quiet points, and no second of speech is used twice."""
from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path

import numpy as np

from local.demo.clip_audio import FRAME, ClipSpeech, clip_speech, smoothed_energy, speech_span
from local.demo.dsp import SAMPLE_RATE
from local.demo.recorded_speakers import RecordedSpeaker, RecordingError, package_roots, path_in_package, speaker_clips
from pipeline.augment.seeding import rng_for
from pipeline.utils.audio import write_audio
from pipeline.utils.log import get_logger

MIN_PIECE_S = 0.2             # shorter clips, and leftovers of cut ones, are dropped
MIN_UTTERANCE_S = 1.0         # room for the padding and one piece
PAUSE_RANGE_S = (0.1, 0.3)    # between joined clips
PAD_RANGE_S = (0.05, 0.35)    # silence before and after an utterance, as the synthesised utterances have
CUT_DISTANCE_DB_PER_S = 3.0   # a cut point this much quieter is worth one second further from the drawn length
FADE_S = 0.005
PEAK_LIMIT = 0.97
DECODED_CLIPS_KEPT = 8        # decoded clips cached per job (a cut clip's remainder comes back later)


def _quiet_cut(samples: np.ndarray, lo: int, hi: int, want: int) -> int:
    """A cut point in [lo, hi] samples: the quietest 50 ms, traded against distance from `want`."""
    energy_db = 10 * np.log10(smoothed_energy(samples) + 1e-12)
    first, last = -(-lo // FRAME), min(hi // FRAME, len(energy_db) - 1)
    if last < first:
        return hi
    frames = np.arange(first, last + 1)
    cost = energy_db[frames] + CUT_DISTANCE_DB_PER_S * np.abs(frames * FRAME - want) / SAMPLE_RATE
    return int(frames[np.argmin(cost)] * FRAME)


def _fade(piece: np.ndarray) -> np.ndarray:
    n = min(int(FADE_S * SAMPLE_RATE), len(piece) // 2)
    if n == 0:
        return piece
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
    out = piece.copy()
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


class _ClipQueue:
    """A person's clips (of one language) in a random order. A clip cut for one utterance goes to the back with
    its remainder, so every sample is handed out once at most. Decoding is lazy: a request for 60 utterances
    decodes only the clips they need."""

    def __init__(self, clips: list[Path], names: list[str], order: np.ndarray):
        self.clips, self.names = clips, names
        self.entries: deque[tuple[int, int]] = deque((int(i), 0) for i in order)   # (clip, first unused sample)
        self._decoded: dict[int, ClipSpeech] = {}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def _speech(self, clip: int) -> ClipSpeech:
        if clip not in self._decoded:
            if len(self._decoded) >= DECODED_CLIPS_KEPT:
                self._decoded.pop(next(iter(self._decoded)))
            self._decoded[clip] = clip_speech(self.clips[clip])
        return self._decoded[clip]

    def head(self) -> tuple[int, np.ndarray]:
        """The next unused speech, its silent edges trimmed (silent clips and leftovers shorter than MIN_PIECE_S
        are dropped); (-1, empty) when nothing is left."""
        while self.entries:
            clip, start = self.entries[0]
            speech = self._speech(clip)
            begin, end = speech_span(speech.samples[start:], speech.floor)
            if end - begin >= MIN_PIECE_S * SAMPLE_RATE:
                self.entries[0] = (clip, start + begin)
                return clip, speech.samples[start + begin:start + end]
            self.entries.popleft()
        return -1, np.zeros(0)

    def take(self, length: int | None = None) -> None:
        """Use up the head whole, or only its first `length` samples (the rest goes to the back)."""
        clip, start = self.entries.popleft()
        if length is not None:
            self.entries.append((clip, start + length))


def _next_utterance(queue: _ClipQueue, rng: np.random.Generator, min_len: int,
                    max_len: int) -> tuple[np.ndarray, list[int]] | None:
    """Join whole clips with short pauses up to a drawn length in [min_len, max_len] samples. A clip too long for
    the room left, when the utterance is still too short, is cut at a quiet point and ends it. None if the clips
    ran out first (what was taken is not used again either)."""
    lead, tail = (int(s * SAMPLE_RATE) for s in rng.uniform(*PAD_RANGE_S, size=2))
    shortest_piece = int(MIN_PIECE_S * SAMPLE_RATE)
    hi = max_len - lead - tail
    lo = max(min_len - lead - tail, shortest_piece)
    want = int(rng.uniform(min_len, max_len)) - lead - tail
    parts: list[np.ndarray] = [np.zeros(lead)]
    used: list[int] = []
    total = 0
    while total < want:
        clip, speech = queue.head()
        if clip < 0:
            break
        gap = int(rng.uniform(*PAUSE_RANGE_S) * SAMPLE_RATE) if used else 0
        room = hi - total - gap
        cut = None
        if len(speech) > room:
            need = max(lo - total - gap, shortest_piece)
            if total >= lo or need > room:
                break
            cut = _quiet_cut(speech, need, room, want - total - gap)
            speech = speech[:cut]
        queue.take(cut)
        parts += [np.zeros(gap), _fade(speech)]
        used.append(clip)
        total += gap + len(speech)
        if cut is not None:   # its remainder is at the back: an utterance never holds a clip twice
            break
    if total < lo:
        return None
    parts.append(np.zeros(tail + max(0, min_len - lead - tail - total)))
    return np.concatenate(parts), used


def _by_language(speaker: RecordedSpeaker, names: list[str]) -> dict[str, list[int]]:
    """Clip indices per language: all in the person's language, or, for a person with several, the language that
    a folder of the clip's path starts with (Asterisk's en_US_f_Allison/ and es_MX_f_Allison/)."""
    if len(speaker.languages) <= 1:
        return {speaker.language: list(range(len(names)))}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, name in enumerate(names):
        folders = name.split("/")[:-1]
        matches = [lang for lang in speaker.languages if any(f == lang or f.startswith(lang + "_") for f in folders)]
        if len(matches) != 1:
            raise RecordingError(f"{speaker.id}: cannot tell which of {', '.join(speaker.languages)} the clip "
                                 f"{name} is in (no folder named LL or LL_*)")
        groups[matches[0]].append(i)
    return dict(groups)


def recorded_speaker_job(speaker: RecordedSpeaker, roots: dict[str, str], n_utts: int, seed: int, min_dur: float,
                         max_dur: float, clean_dir: str) -> list[dict]:
    """Up to `n_utts` utterances of `min_dur`..`max_dur` s of one person, written as 16 kHz 16-bit mono wavs to
    `<clean_dir>/<speaker>/<utt>.wav` (peak-limited, not level-normalised). No second of speech is used twice:
    a person with too little speech gets fewer utterances (logged as a warning). An utterance holds one language
    (a person who speaks two has their clips kept apart). Deterministic for (seed, speaker) in any process.

    Returns one dict per utterance: utt, speaker, wav, seconds, language, and clips (its source clips, as paths
    inside their packages, comma-separated).
    """
    if not MIN_UTTERANCE_S <= min_dur <= max_dur:
        raise ValueError(f"need {MIN_UTTERANCE_S} <= min_dur <= max_dur, got {min_dur} and {max_dur}")
    by_package = package_roots(speaker, roots)
    clips = speaker_clips(speaker, by_package)
    names = [path_in_package(p, by_package)[1] for p in clips]
    queues = {}
    for language, members in _by_language(speaker, names).items():
        order = rng_for(seed, speaker.id, "order", language).permutation(len(members))
        queues[language] = _ClipQueue([clips[i] for i in members], [names[i] for i in members], order)
    min_len, max_len = int(np.ceil(min_dur * SAMPLE_RATE)), int(max_dur * SAMPLE_RATE)
    out_dir = Path(clean_dir) / speaker.id
    results: list[dict] = []
    attempt = 0
    while len(results) < n_utts and any(queues.values()):
        rng = rng_for(seed, speaker.id, attempt, "utterance")
        attempt += 1
        languages = [lang for lang in sorted(queues) if queues[lang]]
        left = np.array([len(queues[lang].entries) for lang in languages], dtype=float)
        language = languages[int(rng.choice(len(languages), p=left / left.sum()))]
        made = _next_utterance(queues[language], rng, min_len, max_len)
        if made is None:
            continue
        audio, used = made
        peak = float(np.max(np.abs(audio)))
        if peak > PEAK_LIMIT:   # resampling a clipped recording overshoots full scale
            audio = audio * (PEAK_LIMIT / peak)
        utt = f"{speaker.id}-{len(results) + 1:04d}"
        wav = out_dir / f"{utt}.wav"
        write_audio(wav, audio, SAMPLE_RATE)
        results.append(dict(utt=utt, speaker=speaker.id, wav=str(wav), seconds=len(audio) / SAMPLE_RATE,
                            language=language, clips=",".join(queues[language].names[i] for i in used)))
    if len(results) < n_utts:
        get_logger("demo_recordings").warning(
            "%s: only %d of %d utterances: its %d clips hold too little speech for more without using any of "
            "it twice", speaker.id, len(results), n_utts, len(clips))
    return results
