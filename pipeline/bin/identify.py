"""`enroll` and `identify`: a table of enrolled speakers beside a trained model, and who is speaking
(see `pipeline/speaker_table.py`).

    python -m pipeline enroll --model exp/gmm_resnext --name alice a1.wav a2.wav
    python -m pipeline identify --model exp/gmm_resnext x.wav --top 3
"""
from __future__ import annotations

from pathlib import Path

import click

from pipeline.speaker_model import SpeakerModel
from pipeline.speaker_table import SpeakerTable, check_name, owner_of

MODEL = click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
                     help="a trained experiment, exp/<model>")
TABLE = click.option("--table", "table_dir", type=click.Path(file_okay=False),
                     help="the speaker table (default: <model>/speakers); one per set of people")


def _open(model_dir: str, table_dir: str | None) -> tuple[SpeakerModel, SpeakerTable]:
    model = SpeakerModel.load(model_dir)
    if model.train_mean is None:
        raise click.ClickException(f"{model_dir}: the classical GMM-UBM has no speaker embedding to enrol; use an "
                                   f"embedding model")
    table = SpeakerTable.open(Path(table_dir) if table_dir else Path(model_dir) / "speakers", owner_of(model),
                              model.scorer)
    return model, table


@click.command("enroll")
@MODEL
@TABLE
@click.option("--name", required=True, help="the speaker's name (a Kaldi key: no whitespace)")
@click.argument("audio", nargs=-1, required=True, type=click.Path(dir_okay=False))
def enroll(model_dir: str, table_dir: str | None, name: str, audio: tuple[str, ...]) -> None:
    """Enrol NAME from one or more AUDIO recordings (re-enrolling a name replaces it)."""
    check_name(name)
    model, table = _open(model_dir, table_dir)
    rows = [model.scorer.rows(model.embed(path), path) for path in audio]  # all read before anything changes
    replaced = name in table.rows
    table.enrol(name, rows)
    click.echo(f"{'re-enrolled' if replaced else 'enrolled'} {name} from {len(rows)} recording"
               f"{'s' if len(rows) > 1 else ''} in {table.directory} ({len(table.rows)} speakers)")


@click.command("identify")
@MODEL
@TABLE
@click.option("--top", default=1, show_default=True, help="how many of the best-scoring speakers to list")
@click.option("--trials", help="decide at the EER threshold of this scored list, e.g. test/trials_O")
@click.option("--threshold", type=float, help="answer 'unknown' below this score instead of the calibrated one")
@click.argument("audio", type=click.Path(dir_okay=False))
def identify(model_dir: str, table_dir: str | None, top: int, trials: str | None,
             threshold: float | None, audio: str) -> None:
    """Rank the enrolled speakers for AUDIO; 'unknown' when even the best scores below the threshold (by default
    stage 6's identification calibration: Bayes' rule among the table's people and 'unknown')."""
    model, table = _open(model_dir, table_dir)
    threshold, calibration, identification = model.identification_threshold(len(table.rows), trials, threshold)
    ranked = table.rank(model.scorer.rows(model.embed(audio), audio))
    best, best_score = ranked[0]
    answer = best if best_score >= threshold else "unknown"
    llr = (f"LLR {float(identification.calibration.apply(best_score)):+.3f}, "
           if identification is not None else "")
    click.echo(f"{audio}: {answer}  ({llr}threshold {threshold:.4f}, {calibration})")
    for name, score in ranked[:max(1, top)]:
        click.echo(f"  {name} {score:.4f}")
