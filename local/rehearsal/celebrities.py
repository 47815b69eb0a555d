"""Who speaks in the rehearsal corpora: VoxCeleb-style speakers (ids, gender, nationality, set) and the TTS voice
each one is synthesised with.

VoxCeleb1 has a dozen speakers, a third of them in its test set (as id10270-id10309 are the real one's), in pairs
that share nationality and gender, so that the hard list (H) has non-target pairs of the same nationality and
gender as the real one does. VoxCeleb2 dev has a dozen more; its meta file also lists test speakers that are not on
disk, as the real vox2_meta.csv lists the test part beside the dev part.

Voices are the flite and MBROLA voices of `local/demo/voices.tsv` installed here (`local/install_demo_voices.sh`),
shuffled by the seed. A machine with fewer voices of a gender than speakers reuses them: each speaker still gets a
habitual pitch of their own (drawn from their VoxCeleb id), which is what the rehearsal needs, real speech in the
corpus's formats, not distinct people.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from local.demo import tts_voices as tts

ENGINES = ("flite", "mbrola")   # fast, one process an utterance; the two the demo corpus has the most voices of


@dataclass(frozen=True)
class Celebrity:
    id: str            # idXXXXX
    gender: str        # m or f
    nationality: str   # VoxCeleb1's meta only
    subset: str        # dev or test: the meta file's Set column
    on_disk: bool = True


# (nationality, gender) pairs; the first speaker of the first four pairs is in the test set.
VOXCELEB1 = (
    Celebrity("id10270", "f", "USA", "test"), Celebrity("id10002", "f", "USA", "dev"),
    Celebrity("id10271", "m", "UK", "test"), Celebrity("id10003", "m", "UK", "dev"),
    Celebrity("id10272", "m", "USA", "test"), Celebrity("id10001", "m", "USA", "dev"),
    Celebrity("id10273", "f", "UK", "test"), Celebrity("id10004", "f", "UK", "dev"),
    Celebrity("id10005", "m", "New Zealand", "dev"), Celebrity("id10006", "m", "New Zealand", "dev"),
    Celebrity("id10007", "f", "India", "dev"), Celebrity("id10008", "f", "India", "dev"),
)
VOXCELEB2 = tuple(Celebrity(f"id{n:05d}", "mf"[i % 2], "", "dev") for i, n in enumerate(
    (12, 15, 16, 17, 19, 20, 22, 24, 25, 26, 27, 29))) + (
    Celebrity("id09272", "m", "", "test", on_disk=False), Celebrity("id09273", "f", "", "test", on_disk=False))
MUSAN_SPEECH = (Celebrity("musan-m1", "m", "", ""), Celebrity("musan-f1", "f", "", ""),
                Celebrity("musan-m2", "m", "", ""), Celebrity("musan-f2", "f", "", ""))


def rehearsal_voices(seed: int, installed: set[str] | None = None) -> dict[str, list[tts.Speaker]]:
    """Per gender, the installed flite and MBROLA voices of the voice table, in a seeded random order.

    Raises SynthesisError naming the install script when a gender has none.
    """
    installed = tts.installed_voices() if installed is None else installed
    usable = [s for s in tts.available_speakers(tts.read_voice_table(), installed)
              if s.voices[0].split(":", 1)[0] in ENGINES]
    order = np.random.default_rng(seed).permutation(len(usable))
    by_gender: dict[str, list[tts.Speaker]] = {"m": [], "f": []}
    for i in order:
        by_gender[usable[i].gender].append(usable[i])
    for gender, voices in by_gender.items():
        if not voices:
            raise tts.SynthesisError(f"no {'/'.join(ENGINES)} voice of gender {gender!r} is installed: run "
                                     f"local/install_demo_voices.sh (as root), which installs flite and MBROLA")
    return by_gender


def assign_voices(people: list[Celebrity], voices: dict[str, list[tts.Speaker]]) -> dict[str, tts.Speaker]:
    """Each person's TTS speaker: the next unused voice of their gender (reused in turn when there are too few),
    under the person's own id, so that the plan gives them a pitch of their own and utterance ids `<id>-NNNN`."""
    used = {"m": 0, "f": 0}
    out = {}
    for person in people:
        pool = voices[person.gender]
        voice = pool[used[person.gender] % len(pool)]
        used[person.gender] += 1
        out[person.id] = tts.Speaker(person.id, person.gender, voice.language_of(voice.voices[0]), voice.voices[:1],
                                     voice.license)
    return out
