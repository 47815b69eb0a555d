"""Who is in the demo corpus: one Person per real speaker, whatever makes their speech, and the split into train,
test and a pool of people heard only as babble."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from local.demo.recorded_speakers import RecordedSpeaker
from local.demo.tts_voices import Speaker
from pipeline.augment.seeding import rng_for

BABBLE_POOL = {"m": 4, "f": 4}    # people heard only as babble, per gender: in neither split (fewer in small builds)


@dataclass(frozen=True)
class Person:
    """One speaker of the corpus, whatever makes their speech."""
    id: str
    gender: str
    language: str
    kind: str       # "tts" or "recorded"
    source: str     # engine or package, for speakers.tsv and the README's tally
    licence: str


def tts_people(speakers: Sequence[Speaker]) -> list[Person]:
    """One Person per synthesised speaker; their source is the engine of their first voice."""
    return [Person(s.id, s.gender, s.language, "tts", s.voices[0].split(":", 1)[0], s.license) for s in speakers]


def recorded_people(speakers: Sequence[RecordedSpeaker]) -> list[Person]:
    """One Person per recorded speaker; their source is their first package."""
    return [Person(s.id, s.gender, s.language, "recorded", s.packages[0], s.licence) for s in speakers]


def split_people(people: Sequence[Person], test_fraction: float, seed: int, recorded_test: int = 0
                 ) -> tuple[list[Person], list[Person], list[Person]]:
    """(train, test, babble): a babble pool of TTS people of both genders heard in neither split, then evenly spaced
    picks from the rest ordered by kind, gender and language, so that test gets ~test_fraction of each kind and
    gender and language groups spread over both sets. With `recorded_test`, recorded people move from train to test
    until test holds that many of them (genders in turn, the one least in test first), so that real speech can be
    measured on a list of more than a handful of people while train keeps the others."""
    rng = rng_for(seed, "split")
    keys = rng.random(len(people))
    babble: list[Person] = []
    for gender, count in BABBLE_POOL.items():
        candidates = sorted((p for p in people if p.kind == "tts" and p.gender == gender),
                            key=lambda p: keys[people.index(p)])
        babble += candidates[:min(count, len(candidates) // 4)]  # most of a gender stays for train and test
    rest = [p for p in people if p not in babble]
    order = sorted(range(len(rest)), key=lambda i: (rest[i].kind, rest[i].gender, rest[i].language,
                                                    keys[people.index(rest[i])]))
    n_test = max(1, int(round(len(rest) * test_fraction))) if len(rest) > 1 else 0
    picks = {order[int((k + rng.random()) * len(rest) / n_test)] for k in range(n_test)} if n_test else set()
    train = [p for i, p in enumerate(rest) if i not in picks]
    test = [p for i, p in enumerate(rest) if i in picks]
    movable = sorted((p for p in train if p.kind == "recorded"), key=lambda p: keys[people.index(p)])
    while sum(p.kind == "recorded" for p in test) < recorded_test and len(movable) > 1:  # train keeps one at least
        share = {g: sum(p.kind == "recorded" and p.gender == g for p in test) for g in {p.gender for p in movable}}
        person = next(p for p in movable if p.gender == min(sorted(share), key=share.__getitem__))
        movable.remove(person)
        train.remove(person)
        test.append(person)
    return train, test, babble
