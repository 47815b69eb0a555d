"""`verify`: are two recordings the same speaker? (a thin wrapper of `SpeakerModel.verify`)

    python -m pipeline verify --model exp/gmm_resnext a.wav b.wav

Runs what stages 1, 3, 5 and 6 run, so the score equals the recipe's score for the same two utterances. With stage
6's calibration (`exp/<model>/calibration.json`, made on `data.threshold_trials`) it prints the score as a
log-likelihood ratio and decides by Bayes' rule at the calibration's prior (`scoring.p_target`); `--trials` decides
at the EER threshold stage 6 found on that list instead, `--threshold` at a score of your own.
"""
from __future__ import annotations

import click

from pipeline.speaker_model import SpeakerModel


@click.command("verify")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--trials", help="decide at the EER threshold of this scored list, e.g. test/trials_O")
@click.option("--threshold", type=float, help="decide at this score instead of a calibrated threshold")
@click.argument("audio_a", type=click.Path(dir_okay=False))
@click.argument("audio_b", type=click.Path(dir_okay=False))
def main(model_dir: str, trials: str | None, threshold: float | None, audio_a: str,
         audio_b: str) -> None:
    """Score AUDIO_A (enrolment) against AUDIO_B and decide same / different speaker."""
    model = SpeakerModel.load(model_dir)
    click.echo(str(model.verify(audio_a, audio_b, threshold=threshold, trials=trials)))
