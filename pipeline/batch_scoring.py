"""Scoring a user's list of recording pairs with a trained model: every recording embedded once, in `--nj` jobs,
whatever the number of pairs naming it; a recording that cannot be used fails its pairs only, with the reason."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.errors import PipelineError
from pipeline.utils.datadir import DataDir
from pipeline.utils.jobs import run_jobs
from pipeline.utils.trials import read_trials


class PairsError(PipelineError):
    """A pairs list or trials list that cannot be read; the message names the file and line."""


@dataclass
class PairList:
    """Pairs of recording ids, and the audio of each id: a file path (opened as a file, never run), or, when
    `wav_scp`, an entry of a data dir's wav.scp, which may be a `cmd |` pipe."""
    pairs: list[tuple[str, str]]
    audio: dict[str, str]
    source: str = ""
    wav_scp: bool = False


def read_pairs_file(path: str | os.PathLike) -> PairList:
    """`enroll.wav test.wav [label]` per line (paths without whitespace; a third column is ignored). The paths are
    opened as files: a pairs file may come from anyone, so a path ending in `|` names a file, never a command."""
    pairs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or line.lstrip().startswith("#"):
            continue
        if len(fields) not in (2, 3):
            raise PairsError(f"{path}:{number}: expected two audio paths (and an optional label), got "
                             f"{len(fields)} fields: {line.strip()!r}")
        pairs.append((fields[0], fields[1]))
    if not pairs:
        raise PairsError(f"{path}: no pairs")
    return PairList(pairs, {p: p for pair in pairs for p in pair}, str(path))


def read_data_dir_pairs(data_dir: str | os.PathLike, trials: str | os.PathLike) -> PairList:
    """The trials of a Kaldi data dir: utterance ids, audio from its wav.scp."""
    wav = DataDir.load(data_dir).table("wav.scp")
    listed = read_trials(trials)
    listed.check_known(set(wav), f"an utterance of {data_dir}/wav.scp")
    pairs = list(zip(listed.enroll, listed.test))
    return PairList(pairs, {u: wav[u] for pair in pairs for u in pair}, str(trials), wav_scp=True)


def embed_job(job: int, model_dir: str, audio: dict[str, str],
              wav_scp: bool = False) -> dict[str, np.ndarray | str]:
    """One job's recordings: id -> what `SpeakerModel.embed` returns, or the reason it failed; `audio` values are
    file paths, or wav.scp entries when `wav_scp`."""
    from pipeline.speaker_model import SpeakerModel

    model = SpeakerModel.load(model_dir, device="cpu")
    embed = model.embed_wav_scp_entry if wav_scp else model.embed
    out: dict[str, np.ndarray | str] = {}
    for key in tqdm(audio, desc=f"embedding job {job}", unit="file", position=job, leave=False, mininterval=2):
        try:
            out[key] = embed(audio[key])
        except PipelineError as err:
            out[key] = str(err)
    return out


@dataclass
class PairScores:
    scores: list[tuple[str, str, float]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)   # enroll, test, reason
    embedded: int = 0


def score_pairs(model_dir: str, listed: PairList, *, nj: int = 1,
                cmd: str = "local") -> PairScores:
    """Embed every recording of `listed` once (in `nj` jobs), then score every pair as stage 6 does."""
    from pipeline.speaker_model import SpeakerModel

    model = SpeakerModel.load(model_dir, device="cpu")   # load errors surface here, once
    keys = sorted(listed.audio, key=str.encode)
    parts = [keys[i::max(1, nj)] for i in range(max(1, nj))]
    jobs = [dict(job=j, model_dir=str(model_dir), audio={k: listed.audio[k] for k in part},
                 wav_scp=listed.wav_scp)
            for j, part in enumerate(parts, 1) if part]
    embeddings: dict[str, np.ndarray | str] = {}
    for result in run_jobs(embed_job, jobs, nj=nj, cmd=cmd, name="score_pairs"):
        embeddings.update(result)
    out = PairScores(embedded=sum(isinstance(v, np.ndarray) for v in embeddings.values()))
    usable = []
    for enroll, test in listed.pairs:
        a, b = embeddings[enroll], embeddings[test]
        if isinstance(a, str) or isinstance(b, str):
            out.failed.append((enroll, test, a if isinstance(a, str) else b))
        else:
            usable.append((enroll, test))
    if usable:
        embedded = {u: e for u, e in embeddings.items() if isinstance(e, np.ndarray)}
        scores = model.score_embedded(embedded, usable)
        out.scores = [(enroll, test, float(s)) for (enroll, test), s in zip(usable, scores)]
    return out
