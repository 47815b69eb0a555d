#!/usr/bin/env python3
"""VoxCeleb2 as a Kaldi data dir, <out>/voxceleb2_<subset> (dev: 5,994 speakers, what the paper trains on).

    python local/make_voxceleb2.py --root /export/VoxCeleb2 --out data
    python local/make_voxceleb2.py --root /export/VoxCeleb2 --meta vox2_meta.csv --subset test --out data

The corpus as distributed: <root>/<subset>/aac/idXXXXX/<youtube-id>/NNNNN.m4a. The m4a files are not converted:
wav.scp decodes each through an `ffmpeg ... |` pipe, as Kaldi's make_voxceleb2.pl does. The same tree converted
to wav is found by itself: <root>/<subset>/wav/... or wav files in place under aac/ (WeSpeaker's m4a2wav.pl).
"""
from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import click

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # voxceleb_common, beside this file
from voxceleb_common import (  # noqa: E402
    VoxCelebError, build_data_dir, duration_reader, find_utterances, read_meta, utterance_durations, write_data_dir,
)
from pipeline.utils.datadir import DataDir  # noqa: E402  (voxceleb_common put the repo on the path)
from pipeline.utils.log import get_logger  # noqa: E402

logger = get_logger("make_voxceleb2")


def voxceleb2_audio_dir(root: Path, subset: str) -> Path:
    """<root>/<subset>/wav if the tree was converted to wav there, else <root>/<subset>/aac."""
    for name in ("wav", "aac"):
        if (root / subset / name).is_dir():
            return root / subset / name
    hint = ""
    if (root / "aac").is_dir() or (root / "wav").is_dir():
        hint = f" ({root} looks like the {root.name!r} folder itself: pass its parent as --root)"
    raise VoxCelebError(f"{root}: no {subset}/aac/ or {subset}/wav/ folder under it{hint}; expected VoxCeleb2 as "
                        f"distributed, <root>/{subset}/aac/idXXXXX/<youtube-id>/NNNNN.m4a")


def prepare_voxceleb2(root: Path, out: Path, meta: Path | None = None, subset: str = "dev",
                      utt2dur: bool = True, nj: int = 4) -> DataDir:
    """Write <out>/voxceleb2_<subset>; `meta` defaults to <root>/vox2_meta.csv. Returns the data dir."""
    root = Path(os.path.abspath(root))
    meta = Path(meta) if meta is not None else root / "vox2_meta.csv"
    audio_dir = voxceleb2_audio_dir(root, subset)
    speakers = read_meta(meta, "VoxCeleb2 ID")  # before the walk: a missing meta file fails at once
    utts = find_utterances(audio_dir, (".wav", ".m4a"))  # a wav beside its m4a is the decoded copy: use it
    if not utts:
        raise VoxCelebError(f"{audio_dir}: no <speaker>/<youtube-id>/<segment>.m4a or .wav files under it")
    kinds = Counter(os.path.splitext(u.path)[1] for u in utts.values())
    logger.info(f"{audio_dir}: " + ", ".join(f"{n} {ext[1:]} files" for ext, n in sorted(kinds.items())))
    if kinds[".m4a"] and shutil.which("ffmpeg") is None:
        logger.warning("ffmpeg not found: wav.scp decodes the m4a files through it; install it before stage 1")

    durations = None
    if utt2dur:
        reader = duration_reader([u.path for u in utts.values()], logger)
        durations = utterance_durations(utts, reader, nj, logger) if reader else None
    data = build_data_dir(utts, speakers, meta, durations)
    other = sorted(s for s in data.spks if speakers[s].subset != subset)
    if other:
        logger.warning(f"{meta}: {len(other)} speakers under {subset}/ belong to another set there "
                       f"(e.g. {other[0]}: {speakers[other[0]].subset})")
    write_data_dir(data, out / f"voxceleb2_{subset}", logger)
    return data


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", required=True, type=click.Path(path_type=Path),
              help="VoxCeleb2: <root>/<subset>/aac/idXXXXX/<youtube-id>/NNNNN.m4a (or the same tree as wav)")
@click.option("--meta", type=click.Path(path_type=Path), default=None, help="vox2_meta.csv [<root>/vox2_meta.csv]")
@click.option("--subset", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option("--utt2dur/--no-utt2dur", default=True, show_default=True,
              help="utt2dur from wav headers, or from ffprobe for m4a (skipped when ffprobe is missing)")
@click.option("--nj", type=click.IntRange(min=1), default=4, show_default=True, help="files probed in parallel")
@click.option("--out", type=click.Path(path_type=Path), default=Path("data"), show_default=True,
              help="data root: writes <out>/voxceleb2_<subset>")
def main(root: Path, meta: Path | None, subset: str, utt2dur: bool, nj: int, out: Path) -> None:
    """Kaldi data dir (wav.scp, utt2spk, spk2utt, spk2gender, utt2dur) for VoxCeleb2 dev or test."""
    try:
        prepare_voxceleb2(root, out, meta, subset, utt2dur, nj)
    except VoxCelebError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
