"""`verify`: are two recordings the same speaker? The whole front end and a trained model on two audio files.

    python -m pipeline verify --model exp/gmm_resnext a.wav b.wav

Runs what stages 1, 3, 5 and 6 run (MFCC + VAD with the frozen config, LGP under the model's GMMs, full-utterance
and crop embeddings, cosine with the training mean removed), so the score equals the recipe's score for the same
two utterances. The decision uses the EER threshold calibrated on a test trials list by stage 6.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from pipeline.bin.extract import load_embedder
from pipeline.bin.score import load_embeddings
from pipeline.dataset.features import inputs_from_mfcc
from pipeline.features.mfcc import MfccOptions, mfcc_and_vad
from pipeline.scoring import mean_embedding, score_trials
from pipeline.utils.audio import read_audio
from pipeline.utils.config import load_config


def embed_file(path: str, embedder, opts: MfccOptions, gmm_root: Path) -> np.ndarray:
    """(1 + crops) x dim embeddings of one audio file (any sample rate: it is resampled like --eval-data)."""
    samples, _ = read_audio(path, opts.sample_rate, resample=True)
    feats, vad = mfcc_and_vad(samples, opts)
    inputs = inputs_from_mfcc(feats, vad, embedder.input_names, gmm_root, voiced_only=embedder.voiced_only)
    full, crops = embedder(inputs)
    return np.concatenate([full[None, :], crops], axis=0)


def calibrated_threshold(model_dir: Path, trials: str | None) -> tuple[float, str]:
    """The EER threshold that stage 6 found on `trials` (`<set>/<trials file>`), or on the first list scored."""
    rows = sorted((model_dir / "scores").glob("*.json"))
    if trials:
        rows = [p for p in rows if p.name == trials.replace("/", "_") + ".json"]
    if not rows:
        raise click.ClickException(f"no scored trials for {model_dir}{' matching ' + trials if trials else ''}: "
                                   f"run stage 6 first, or pass --threshold")
    row = json.loads(rows[0].read_text())
    return float(row["EER threshold"]), row["trials"]


@click.command("verify")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--gmm-root", type=click.Path(exists=True, file_okay=False), help="default: <model>/../gmm")
@click.option("--trials", help="calibrate the threshold on this scored list, e.g. test/trials_O")
@click.option("--threshold", type=float, help="decide at this score instead of a calibrated threshold")
@click.argument("audio_a", type=click.Path(exists=True, dir_okay=False))
@click.argument("audio_b", type=click.Path(exists=True, dir_okay=False))
def main(model_dir: str, gmm_root: str | None, trials: str | None, threshold: float | None, audio_a: str,
         audio_b: str) -> None:
    """Score AUDIO_A against AUDIO_B and decide same / different speaker."""
    model = Path(model_dir)
    cfg = load_config(model / "config.yaml")
    opts = MfccOptions.from_config({**cfg.get("features", {}), "resample": True})
    embedder = load_embedder(model)
    cohort_set = cfg["data"].get("cohort", cfg["data"]["train"])  # as stage 6 removes it
    train_mean = mean_embedding(load_embeddings(model / "embeddings" / cohort_set))
    gmms = Path(gmm_root) if gmm_root else model.parent / "gmm"
    embeddings = {"a": embed_file(audio_a, embedder, opts, gmms), "b": embed_file(audio_b, embedder, opts, gmms)}
    score = float(score_trials(embeddings, [("a", "b")], mean=train_mean)[0])
    where = "given"
    if threshold is None:
        threshold, where = calibrated_threshold(model, trials)
    same = score >= threshold
    click.echo(f"score {score:.4f}  threshold {threshold:.4f} (EER threshold on {where})  ->  "
               f"{'same speaker' if same else 'different speakers'}")
