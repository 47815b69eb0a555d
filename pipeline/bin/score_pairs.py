"""`score-pairs`: score a list of recording pairs with a trained model (see `pipeline/batch_scoring.py`).

    python -m pipeline score-pairs --model exp/gmm_resnext pairs.txt --out scores.txt --nj 4
    python -m pipeline score-pairs --model exp/gmm_resnext --data-dir data/mine --trials data/mine/trials

Writes Kaldi's score-file format, `enroll test score` per line, in the list's order; a pair whose recording cannot be
used (unreadable, silent, too short) is left out with the reason on stderr, and counted at the end.
"""
from __future__ import annotations

import sys

import click

from pipeline.batch_scoring import read_data_dir_pairs, read_pairs_file, score_pairs
from pipeline.utils.atomic import write_text_atomic


@click.command("score-pairs")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), help="a Kaldi data dir (with --trials)")
@click.option("--trials", type=click.Path(exists=True, dir_okay=False), help="its trials list")
@click.option("--out", type=click.Path(dir_okay=False), help="the score file (default: stdout)")
@click.option("--nj", default=1, show_default=True, help="parallel embedding jobs")
@click.option("--cmd", default="local", show_default=True, help="job engine: local, dask://HOST:PORT, slurm[:OPTS]")
@click.argument("pairs", required=False, type=click.Path(exists=True, dir_okay=False))
def main(model_dir: str, data_dir: str | None, trials: str | None, out: str | None, nj: int,
         cmd: str, pairs: str | None) -> None:
    """Score PAIRS (two audio paths per line), or the --trials of a --data-dir."""
    if (pairs is None) == (data_dir is None) or (data_dir is None) != (trials is None):
        raise click.UsageError("give a PAIRS file, or --data-dir with --trials")
    listed = read_pairs_file(pairs) if pairs else read_data_dir_pairs(data_dir, trials)
    result = score_pairs(model_dir, listed, nj=nj, cmd=cmd)
    lines = "".join(f"{a} {b} {s:.6f}\n" for a, b, s in result.scores)
    if out:
        write_text_atomic(out, lines)
    else:
        sys.stdout.write(lines)
    for a, b, reason in result.failed:
        click.echo(f"failed: {a} {b}: {reason}", err=True)
    click.echo(f"score-pairs: {len(result.scores)} of {len(listed.pairs)} pairs scored ({len(result.failed)} failed), "
               f"{result.embedded} of {len(listed.audio)} recordings embedded once each"
               + (f"; scores in {out}" if out else ""), err=True)
