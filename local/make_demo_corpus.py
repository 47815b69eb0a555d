#!/usr/bin/env python3
"""Build the embedded demo corpus and its Kaldi data dirs (local/demo/corpus.py says how); local/make_demo_data.sh runs
this with the config's `demo:` settings.

    python local/make_demo_corpus.py --out-dir corpus/demo --data-dir data --nj 2
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, so that imports work without path.sh

from local.demo import recorded_speakers as rec, tts_voices as tts  # noqa: E402
from local.demo.corpus import make_demo_corpus  # noqa: E402
from pipeline.errors import PipelineError  # noqa: E402


@click.command(context_settings={"show_default": True})
@click.option("--out-dir", default="corpus/demo", help="where the audio goes (wav/<spk>/<utt>.wav)")
@click.option("--data-dir", default="data", help="where data dirs train/ and test/ go")
@click.option("--nj", default=2, help="parallel jobs (people are the unit of work)")
@click.option("--seed", default=0)
@click.option("--utts-per-spk", default=20, help="utterances of each training person")
@click.option("--test-utts-per-spk", default=20, help="utterances of each test person")
@click.option("--test-fraction", default=0.3, help="share of the people (babble pool aside) in the test set")
@click.option("--recorded-test", default=0, help="recorded people in the test set at least (moved from train)")
@click.option("--min-dur", default=2.0, help="shortest utterance (s)")
@click.option("--max-dur", default=8.0, help="longest utterance (s)")
@click.option("--speakers", default="", help="comma-separated speaker ids to use (default: every available one)")
@click.option("--max-speakers", default=0, help="use at most this many speakers (0: all)")
@click.option("--recordings/--no-recordings", default=True, help="add the recorded people (apt-get download)")
@click.option("--package-cache", default="corpus/packages", help="where recorded packages are downloaded and unpacked")
@click.option("--voice-table", default=str(tts.DEFAULT_VOICE_TABLE), type=click.Path(exists=True, dir_okay=False))
@click.option("--recording-table", default=str(rec.DEFAULT_RECORDING_TABLE), type=click.Path(exists=True, dir_okay=False))
@click.option("--text-dir", default=str(tts.DEFAULT_TEXT_DIR), type=click.Path(exists=True, file_okay=False))
def main(out_dir: str, data_dir: str, nj: int, seed: int, utts_per_spk: int, test_utts_per_spk: int,
         test_fraction: float, recorded_test: int, min_dur: float, max_dur: float, speakers: str, max_speakers: int, recordings: bool,
         package_cache: str, voice_table: str, recording_table: str, text_dir: str) -> None:
    """Build the demo corpus and write Kaldi data dirs DATA_DIR/train and DATA_DIR/test."""
    try:
        make_demo_corpus(out_dir, data_dir, nj=nj, seed=seed, utts_per_spk=utts_per_spk,
                         test_utts_per_spk=test_utts_per_spk, test_fraction=test_fraction,
                         recorded_test=recorded_test, min_dur=min_dur,
                         max_dur=max_dur, speakers=[s for s in speakers.split(",") if s], max_speakers=max_speakers,
                         recordings=recordings, package_cache=package_cache, voice_table=voice_table,
                         recording_table=recording_table, text_dir=text_dir)
    except PipelineError as err:
        raise click.ClickException(str(err)) from err


if __name__ == "__main__":
    main()
