"""The two VoxCeleb trees of the rehearsal, in the formats and with the quirks of the distributed corpora (what
local/voxceleb_common.py parses):

  VoxCeleb1/dev/wav/idXXXXX/<youtube-id>/NNNNN.wav, VoxCeleb1/test/wav/... (each zip unpacked into its own folder,
      as Kaldi's v2 and WeSpeaker do), 16 kHz 16-bit mono
  VoxCeleb1/vox1_meta.csv   tab-separated, `VoxCeleb1 ID  VGGFace1 ID  Gender  Nationality  Set`, nationalities with
      spaces (`New Zealand`)
  VoxCeleb1/{veri_test2,list_test_all2,list_test_hard2}.txt   `1|0 <spk>/<youtube-id>/<seg>.wav <spk>/...`: O pairs
      the test speakers only, E and H draw from all speakers, H's non-targets share nationality and gender
  VoxCeleb2/dev/aac/idXXXXX/<youtube-id>/NNNNN.m4a   AAC in MP4, 16 kHz mono, made by ffmpeg
  VoxCeleb2/vox2_meta.csv   `VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set ` (a space before each comma and after the last
      field), test speakers listed though not on disk

A speaker's utterance k is segment k % 2 + 1 of their video k // 2: two segments a video, as VoxCeleb cuts several
segments from one video; YouTube ids are 11 characters of [A-Za-z0-9_-], one of them starting with `-`.
"""
from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from local.rehearsal.celebrities import Celebrity
from pipeline.augment.seeding import rng_for
from pipeline.utils.atomic import write_text_atomic

YOUTUBE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SEGMENTS_PER_VIDEO = 2
VOX1_TRIAL_LISTS = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}
# VoxCeleb2's audio as distributed: AAC-LC, mono, 16 kHz.
M4A_ENCODE = ("-c:a", "aac", "-b:a", "64k", "-ac", "1", "-ar", "16000")


def youtube_ids(seed: int, person: str, count: int) -> list[str]:
    """`count` YouTube-style video ids of one person, stable for the seed."""
    rng = rng_for(seed, person, "youtube")
    return ["".join(YOUTUBE_ALPHABET[i] for i in rng.integers(len(YOUTUBE_ALPHABET), size=11)) for _ in range(count)]


def segment_paths(person: str, videos: list[str], count: int, ext: str) -> list[str]:
    """`<person>/<youtube-id>/<segment>.<ext>` of the person's first `count` utterances."""
    return [f"{person}/{videos[k // SEGMENTS_PER_VIDEO]}/{k % SEGMENTS_PER_VIDEO + 1:05d}.{ext}" for k in range(count)]


def video_count(utts_per_speaker: int) -> int:
    return -(-utts_per_speaker // SEGMENTS_PER_VIDEO)


def layout(people: tuple[Celebrity, ...], utts_per_speaker: int, seed: int, ext: str) -> dict[str, list[str]]:
    """person -> the relative paths of their utterances, for the people on disk. The first person's first video
    starts with `-`, as real ones do (`-9rRqaCWOvI`): a path component that looks like an option."""
    out = {}
    for i, person in enumerate(p for p in people if p.on_disk):
        videos = youtube_ids(seed, person.id, video_count(utts_per_speaker))
        if i == 0:
            videos[0] = "-" + videos[0][1:]
        out[person.id] = segment_paths(person.id, videos, utts_per_speaker, ext)
    return out


def write_voxceleb1(root: Path, people: tuple[Celebrity, ...], names: dict[str, str], paths: dict[str, list[str]],
                    clean: dict[str, list[str]], seed: int) -> None:
    """VoxCeleb1: the wav files (moved from `clean`, already 16 kHz 16-bit mono), meta CSV and trial lists."""
    subset = {p.id: p.subset for p in people}
    for person, rel_paths in paths.items():
        for rel, wav in zip(rel_paths, clean[person]):
            dest = root / subset[person] / "wav" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(wav, dest)
    rows = [f"{p.id}\t{names.get(p.id, p.id)}\t{p.gender}\t{p.nationality}\t{p.subset}\n" for p in people]
    write_text_atomic(root / "vox1_meta.csv", "VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n" + "".join(rows))
    for name, lines in trial_lists(people, paths, seed).items():
        write_text_atomic(root / VOX1_TRIAL_LISTS[name], "".join(f"{label} {a} {b}\n" for label, a, b in lines))


def trial_lists(people: tuple[Celebrity, ...], paths: dict[str, list[str]], seed: int
                ) -> dict[str, list[tuple[int, str, str]]]:
    """The three cleaned lists: O, every pair of the test speakers' utterances; E, each utterance of anyone against
    another of the same speaker and one of another speaker; H, the same with the other speaker of the same
    nationality and gender."""
    on_disk = [p for p in people if p.on_disk]
    test_utts = [(p.id, u) for p in on_disk if p.subset == "test" for u in paths[p.id]]
    lists: dict[str, list[tuple[int, str, str]]] = {
        "O": [(int(a[0] == b[0]), a[1], b[1]) for i, a in enumerate(test_utts) for b in test_utts[i + 1:]]}
    for name, same_group in (("E", lambda p, q: True),
                             ("H", lambda p, q: (p.nationality, p.gender) == (q.nationality, q.gender))):
        rng = rng_for(seed, "trials", name)
        lines = []
        for person in on_disk:
            others = [q for q in on_disk if q.id != person.id and same_group(person, q)]
            if not others:
                raise ValueError(f"{person.id}: nobody else of {person.nationality}, {person.gender} for list {name}")
            own = paths[person.id]
            for k, utt in enumerate(own):
                lines.append((1, utt, own[(k + 1) % len(own)]))
                other = others[int(rng.integers(len(others)))]
                lines.append((0, utt, paths[other.id][int(rng.integers(len(paths[other.id])))]))
        lists[name] = lines
    return lists


def encode_m4a(wav: str, m4a: Path) -> None:
    m4a.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", wav, *M4A_ENCODE, str(m4a)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg could not encode {wav} to {m4a}: {proc.stderr.strip()[-400:]}")


def write_voxceleb2(root: Path, people: tuple[Celebrity, ...], paths: dict[str, list[str]], clean: dict[str, list[str]],
                    nj: int) -> None:
    """VoxCeleb2 dev: m4a files encoded by ffmpeg from `clean` (`nj` at a time), and the meta CSV."""
    jobs = [(wav, root / "dev" / "aac" / rel) for person, rel_paths in paths.items()
            for rel, wav in zip(rel_paths, clean[person])]
    with ThreadPoolExecutor(max(1, nj)) as pool:
        list(pool.map(lambda job: encode_m4a(*job), jobs))
    # The official file: a space before each comma and after the last field; VGGFace2 ids are n + 6 digits.
    rows = [f"{p.id} ,n{p.id[2:].zfill(6)} ,{p.gender} ,{p.subset} \n" for p in people]
    write_text_atomic(root / "vox2_meta.csv", "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n" + "".join(rows))

