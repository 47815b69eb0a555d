"""The demo corpus written out: Kaldi data dirs with their trials lists, and the tables that say who each person is
(speakers.tsv) and what was done to each utterance (conditions.tsv)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from local.demo.clean_speech import Clean
from local.demo.degradation import Condition
from local.demo.dsp import SAMPLE_RATE
from local.demo.people import Person
from pipeline.utils.atomic import atomic_file
from pipeline.utils.audio import audio_info
from pipeline.utils.datadir import DataDir
from pipeline.utils.paths import recipe_path
from pipeline.utils.trials import Trials, all_pairs_trials


def build_data_dir(results: list[tuple[Clean, Condition]], people: list[Person], wav_dir: Path) -> DataDir:
    """The data dir of these utterances (their final audio under `wav_dir`) and people."""
    wav_scp, utt2spk, utt2dur, utt2lang = {}, {}, {}, {}
    for clean, _ in results:
        path = wav_dir / clean.speaker / f"{clean.utt}.wav"
        wav_scp[clean.utt] = recipe_path(path)   # as the recipe names its files: a moved checkout reads its own
        utt2spk[clean.utt] = clean.speaker
        utt2dur[clean.utt] = f"{audio_info(path).frames / SAMPLE_RATE:.4f}"
        utt2lang[clean.utt] = clean.language
    return DataDir({"wav.scp": wav_scp, "utt2spk": utt2spk, "utt2dur": utt2dur, "utt2lang": utt2lang},
                   {"spk2gender": {p.id: p.gender for p in people}})


def test_trials(data: DataDir, people: list[Person]) -> dict[str, Trials]:
    """All pairs (O), all same-gender pairs (H), all pairs of recorded people (real), all pairs of synthesised
    people (synth: set against real, it tells whether a model learnt the synthesisers rather than voices)."""
    everything = all_pairs_trials(data.utt2spk)
    gender = data.spk_tables["spk2gender"]
    same_gender = np.array([gender[data.utt2spk[e]] == gender[data.utt2spk[t]]
                            for e, t in zip(everything.enroll.tolist(), everything.test.tolist())], dtype=bool)
    recorded = {p.id for p in people if p.kind == "recorded"}
    lists = {"trials_O": everything, "trials_H": everything.where(same_gender)}
    for name, keep in (("trials_real", lambda s: s in recorded), ("trials_synth", lambda s: s not in recorded)):
        some = all_pairs_trials({u: s for u, s in data.utt2spk.items() if keep(s)})
        if some.num_target and len(some) > some.num_target and len(some) < len(everything):
            lists[name] = some
    return lists


def write_conditions(path: Path, results: list[tuple[Clean, Condition]], split_of: dict[str, str]) -> None:
    """What was done to each utterance: split, source, room, noise, channel, and how it was made."""
    with atomic_file(path) as handle:
        handle.write("utt\tsplit\tsource\trt60_s\tnoise\tsnr_db\thighpass_hz\tlowpass_hz\tdetails\n")
        for clean, cond in sorted(results, key=lambda r: r[0].utt.encode()):
            handle.write(f"{clean.utt}\t{split_of[clean.speaker]}\t{clean.source}\t{cond.rt60:.2f}\t{cond.noise}\t"
                         f"{cond.snr_db:.1f}\t{cond.highpass_hz:.0f}\t{cond.lowpass_hz:.0f}\t{clean.details}\n")


def write_speakers(path: Path, people: list[Person], split_of: dict[str, str], cleans: list[Clean]) -> None:
    """Who is who: kind, source, language, split, utterances and seconds of clean speech, licence."""
    count, seconds = Counter(c.speaker for c in cleans), Counter()
    for c in cleans:
        seconds[c.speaker] += audio_info(c.wav).frames / SAMPLE_RATE
    with atomic_file(path) as handle:
        handle.write("speaker\tgender\tkind\tsource\tlanguage\tsplit\tutterances\tseconds\tlicence\n")
        for p in sorted(people, key=lambda p: p.id.encode()):
            handle.write(f"{p.id}\t{p.gender}\t{p.kind}\t{p.source}\t{p.language}\t{split_of[p.id]}\t{count[p.id]}\t"
                         f"{seconds[p.id]:.1f}\t{p.licence}\n")
