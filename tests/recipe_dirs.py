"""Recipe directories for the end-to-end tests: made Kaldi style, run through run.sh, copied as a user copies one.

A recipe directory holds links to run.sh, path.sh, steps/, local/ and pipeline/ of this checkout, so that data/,
exp/, mfcc/ and lgp/ land there and not in the checkout. Every table in it names its files relative to it, so a copy
(`copy_recipe`) is a recipe of its own.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline.utils.datadir import DataDir
from pipeline.utils.trials import all_pairs_trials, write_trials

REPO = Path(__file__).resolve().parents[1]
# Real synthesised speech: four flite voices (tests/run.sh installs flite), three sentences each.
FLITE_VOICES = {"awb": "m", "kal16": "m", "rms": "m", "slt": "f"}
SENTENCES = ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
             "It is easy to tell the depth of a well, these days."]


def link_recipe(root: Path) -> Path:
    """`root` made a recipe directory: run.sh, path.sh, steps/, local/ and pipeline/ linked into it."""
    for name in ("run.sh", "path.sh", "steps", "local", "pipeline"):
        (root / name).symlink_to(REPO / name)
    return root


def copy_recipe(recipe: Path, dest: Path) -> Path:
    """A copy of `recipe` at `dest` (`cp -a`: times and links kept), for a test that changes what it finds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(recipe), str(dest)], check=True)
    return dest


def run_recipe(recipe: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """`./run.sh ARGS` in `recipe`; with `ok`, it must succeed; without, it must fail with an error people can act
    on, in one line (no traceback)."""
    proc = subprocess.run(["./run.sh", *args], cwd=recipe, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": ""})
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    else:
        assert proc.returncode != 0, proc.stdout[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc


def write_all_pairs(data_dir: Path, name: str = "trials_O") -> None:
    write_trials(data_dir / name, all_pairs_trials(DataDir.load(data_dir).utt2spk))


def add_flite_voices(data_dir: Path, recipe: Path) -> None:
    """The flite voices x the sentences (16 kHz), added to the set in `data_dir` as more speakers: wavs under
    `recipe`/wav/<set>, named relative to `recipe`."""
    data = DataDir.load(data_dir)
    wav_dir = recipe / "wav" / data_dir.name
    wav_dir.mkdir(parents=True, exist_ok=True)
    for voice, gender in FLITE_VOICES.items():
        data.spk_tables["spk2gender"][voice] = gender
        for i, text in enumerate(SENTENCES, 1):
            utt = f"{voice}-{i:02d}"
            path = wav_dir / f"{utt}.wav"
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
            data.utt_tables["wav.scp"][utt] = str(path.relative_to(recipe))
            data.utt2spk[utt] = voice
    data.save(data_dir)
