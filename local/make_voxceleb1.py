#!/usr/bin/env python3
"""VoxCeleb1 as Kaldi data dirs: <out>/voxceleb1 (all 1,251 speakers, the test set of the cleaned O, E and H
trial lists, which E and H draw from dev speakers too) and, with --dev, <out>/voxceleb1_dev (the speakers that
VoxCeleb1-O does not test, as Kaldi's make_voxceleb1.pl writes voxceleb1_train).

    python local/make_voxceleb1.py --root /export/VoxCeleb1 --out data
    python local/make_voxceleb1.py --root /export/VoxCeleb1 --meta vox1_meta.csv --trials-dir lists --dev --out data

The corpus as distributed: <root>/wav/idXXXXX/<youtube-id>/NNNNN.wav (both zips unpacked into one wav/), or
<root>/dev/wav/... and <root>/test/wav/... (each zip into its own folder, as Kaldi's v2 and WeSpeaker do).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # voxceleb_common, beside this file
from voxceleb_common import (  # noqa: E402
    TRIAL_LISTS, VoxCelebError, build_data_dir, convert_trials, duration_reader, find_utterances,
    merge_utterances, read_meta, utterance_durations, write_data_dir,
)
from pipeline.utils.datadir import DataDir  # noqa: E402  (voxceleb_common put the repo on the path)
from pipeline.utils.log import get_logger  # noqa: E402

logger = get_logger("make_voxceleb1")
AUDIO_DIRS = ("wav", "dev/wav", "test/wav")


def voxceleb1_audio_dirs(root: Path) -> list[Path]:
    """The folders that hold <speaker>/<youtube-id>/<segment>.wav under a VoxCeleb1 root."""
    found = [root / d for d in AUDIO_DIRS if (root / d).is_dir()]
    if not found:
        hint = ""
        if root.is_dir() and any(p.name.startswith("id1") for p in root.iterdir()):
            hint = f" ({root} holds speaker folders itself: pass its parent as --root)"
        raise VoxCelebError(f"{root}: no wav/ folder under it (nor dev/wav/ and test/wav/){hint}; expected VoxCeleb1 "
                            f"as distributed, <root>/wav/idXXXXX/<youtube-id>/NNNNN.wav")
    return found


def prepare_voxceleb1(root: Path, out: Path, meta: Path | None = None, trials_dir: Path | None = None,
                      trial_sets: tuple[str, ...] = ("O", "E", "H"), skip_missing: bool = False,
                      dev: bool = False, utt2dur: bool = True, nj: int = 4) -> DataDir:
    """Write <out>/voxceleb1 (with trials_<set> for each of `trial_sets`) and, with `dev`, <out>/voxceleb1_dev.

    `meta` defaults to <root>/vox1_meta.csv and `trials_dir` to <root>. Returns the voxceleb1 data dir.
    """
    root = Path(os.path.abspath(root))
    meta = Path(meta) if meta is not None else root / "vox1_meta.csv"
    trials_dir = Path(trials_dir) if trials_dir is not None else root
    audio_dirs = voxceleb1_audio_dirs(root)
    speakers = read_meta(meta, "VoxCeleb1 ID")  # before the walk: a missing meta file fails at once
    utts = merge_utterances(find_utterances(d, (".wav",)) for d in audio_dirs)
    if not utts:
        raise VoxCelebError(f"{root}: no <speaker>/<youtube-id>/<segment>.wav files under "
                            f"{', '.join(str(d) for d in audio_dirs)}")
    logger.info(f"{root}: {len(utts)} wav files under {', '.join(str(d.relative_to(root)) for d in audio_dirs)}")
    durations = None
    if utt2dur:
        reader = duration_reader([u.path for u in utts.values()], logger)
        durations = utterance_durations(utts, reader, nj, logger) if reader else None
    data = build_data_dir(utts, speakers, meta, durations)

    known = set(data.utt2spk)
    for name in trial_sets:
        trials, skipped = convert_trials(trials_dir / TRIAL_LISTS[name], known, skip_missing)
        if skipped:
            logger.warning(f"{trials_dir / TRIAL_LISTS[name]}: {skipped} trials skipped, they name utterances "
                           f"not on disk")
        data.trials[f"trials_{name}"] = trials
    write_data_dir(data, out / "voxceleb1", logger)

    if dev:
        # Kaldi takes the test speakers from the O list; the meta file's Set column says the same, and taking
        # both keeps a test speaker out of training even if one of them is incomplete.
        listed = data.trials.get("trials_O")
        tested = {data.utt2spk[u] for u in np.concatenate([listed.enroll, listed.test])} if listed else set()
        tested |= {s for s, info in speakers.items() if info.subset == "test"}
        dev_data = data.subset_speakers(s for s in data.spks if s not in tested)
        dev_data.trials = {}  # E and H trials among dev speakers are not a development test
        if not dev_data.utt2spk:
            raise VoxCelebError(f"{root}: no dev speakers on disk (only the test part of VoxCeleb1?)")
        write_data_dir(dev_data, out / "voxceleb1_dev", logger)
    return data


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", required=True, type=click.Path(path_type=Path),
              help="VoxCeleb1: <root>/wav/idXXXXX/<youtube-id>/NNNNN.wav (or <root>/{dev,test}/wav/...)")
@click.option("--meta", type=click.Path(path_type=Path), default=None, help="vox1_meta.csv [<root>/vox1_meta.csv]")
@click.option("--trials-dir", type=click.Path(path_type=Path), default=None,
              help="folder with veri_test2.txt, list_test_all2.txt, list_test_hard2.txt [<root>]")
@click.option("--trials", "trial_sets", multiple=True, type=click.Choice(sorted(TRIAL_LISTS)),
              default=("O", "E", "H"), show_default=True, help="trial sets to convert (repeat the option)")
@click.option("--skip-missing", is_flag=True, help="drop (and count) trials naming utterances not on disk")
@click.option("--dev/--no-dev", default=False, show_default=True,
              help="also write <out>/voxceleb1_dev: the speakers not tested by VoxCeleb1-O")
@click.option("--utt2dur/--no-utt2dur", default=True, show_default=True, help="read wav headers for utt2dur")
@click.option("--nj", type=click.IntRange(min=1), default=4, show_default=True, help="files read in parallel")
@click.option("--out", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              help="data root: writes <out>/voxceleb1")
def main(root: Path, meta: Path | None, trials_dir: Path | None, trial_sets: tuple[str, ...], skip_missing: bool,
         dev: bool, utt2dur: bool, nj: int, out: Path) -> None:
    """Kaldi data dirs (wav.scp, utt2spk, spk2utt, spk2gender, utt2dur, trials_O/E/H) for VoxCeleb1."""
    try:
        prepare_voxceleb1(root, out, meta, trials_dir, trial_sets, skip_missing, dev, utt2dur, nj)
    except VoxCelebError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
