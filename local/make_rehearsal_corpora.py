#!/usr/bin/env python3
"""Build the rehearsal corpora of `conf/voxceleb.yaml` (local/rehearsal/ says what and how):
<out>/VoxCeleb1 (wav), <out>/VoxCeleb2 (m4a), <out>/RIRS_NOISES and <out>/musan, as distributed, with real audio.
local/rehearse_voxceleb.sh runs this, then stages 0-6 on what it made.

    python local/make_rehearsal_corpora.py --out rehearsal/corpora --nj 2
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, so that imports work without path.sh

from local.rehearsal.build import make_rehearsal_corpora  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="writes <out>/{VoxCeleb1,VoxCeleb2,RIRS_NOISES,musan}")
@click.option("--nj", default=2, type=click.IntRange(min=1), help="speakers synthesised in parallel")
@click.option("--seed", default=0)
@click.option("--utts-per-speaker", default=2, type=click.IntRange(min=2), help="two segments a video")
@click.option("--min-dur", default=2.0, help="shortest utterance (s)")
@click.option("--max-dur", default=3.0, help="longest utterance (s)")
def main(out: Path, nj: int, seed: int, utts_per_speaker: int, min_dur: float, max_dur: float) -> None:
    """Small VoxCeleb1, VoxCeleb2, RIRS_NOISES and MUSAN trees of synthesised speech, in the real layouts."""
    try:
        make_rehearsal_corpora(out, nj=nj, seed=seed, utts_per_speaker=utts_per_speaker, min_dur=min_dur,
                               max_dur=max_dur)
    except PipelineError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
