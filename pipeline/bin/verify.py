"""`verify`: are two recordings the same speaker? The whole front end and a trained model on two audio files.

    python -m pipeline verify --model exp/gmm_resnext a.wav b.wav

Runs what stages 1, 3, 5 and 6 run (MFCC + VAD with the frozen config, LGP under the model's GMMs, full-utterance
and crop embeddings, cosine with the training mean removed), so the score equals the recipe's score for the same
two utterances. The decision uses the EER threshold that stage 6 found on a test trials list: by default the first
list of the config's first test set.
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from pipeline.dataset.features import inputs_from_mfcc
from pipeline.embed import Embedder, load_embedder, load_embeddings, load_final_model
from pipeline.experiment import gmm_root
from pipeline.features.mfcc import FeatureError, MfccOptions, mfcc_and_vad
from pipeline.scoring import mean_embedding, score_trials
from pipeline.utils.audio import read_audio
from pipeline.utils.stage import StageError
from pipeline.utils.trials import trials_files


def embed_file(path: str, embedder: Embedder, opts: MfccOptions, gmms: Path) -> np.ndarray:
    """(1 + crops) x dim embeddings of one audio file (any sample rate: it is resampled like --eval-data)."""
    samples, _ = read_audio(path, opts.sample_rate, resample=True)
    try:
        feats, vad = mfcc_and_vad(samples, opts)
    except FeatureError as err:
        raise FeatureError(f"{path}: {err}") from err
    inputs = inputs_from_mfcc(feats, vad, embedder.input_names, gmms, voiced_only=embedder.voiced_only)
    full, crops = embedder(inputs)
    return np.concatenate([full[None, :], crops], axis=0)


def calibrated_threshold(model_dir: Path, frozen: dict, trials: str | None) -> tuple[float, str]:
    """The EER threshold that stage 6 found on `trials` (`<set>/<trials file>`); by default on the first trials list
    of the config's first test set."""
    if trials is None:
        test_set = frozen["data"]["test"][0]
        lists = trials_files(Path(frozen["data"]["root"]) / test_set)
        if not lists:
            raise StageError(f"test set {test_set!r} has no trials list: pass --trials or --threshold")
        trials = f"{test_set}/{lists[0].name}"
    row_path = model_dir / "scores" / (trials.replace("/", "_") + ".json")
    if not row_path.is_file():
        raise StageError(f"{row_path} not found: {model_dir} has not been scored on {trials} (run stage 6), or pass "
                         f"--trials SET/LIST or --threshold")
    return float(json.loads(row_path.read_text())["EER threshold"]), trials


@click.command("verify")
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--gmm-root", "gmm_dir", type=click.Path(exists=True, file_okay=False),
              help="the stage-2 GMMs of an LGP model (default: the config's gmm.root)")
@click.option("--trials", help="calibrate the threshold on this scored list, e.g. test/trials_O")
@click.option("--threshold", type=float, help="decide at this score instead of a calibrated threshold")
@click.argument("audio_a", type=click.Path(exists=True, dir_okay=False))
@click.argument("audio_b", type=click.Path(exists=True, dir_okay=False))
def main(model_dir: str, gmm_dir: str | None, trials: str | None, threshold: float | None, audio_a: str,
         audio_b: str) -> None:
    """Score AUDIO_A against AUDIO_B and decide same / different speaker."""
    model = Path(model_dir)
    frozen = load_final_model(model)["config"]
    opts = MfccOptions.from_config({**frozen.get("features", {}), "resample": True})
    embedder = load_embedder(model)
    cohort_set = frozen["data"].get("cohort", frozen["data"]["train"])  # as stage 6 removes it
    train_mean = mean_embedding(load_embeddings(model / "embeddings" / cohort_set))
    gmms = Path(gmm_dir) if gmm_dir else gmm_root(frozen)
    embeddings = {"a": embed_file(audio_a, embedder, opts, gmms), "b": embed_file(audio_b, embedder, opts, gmms)}
    score = float(score_trials(embeddings, [("a", "b")], mean=train_mean)[0])
    where = "given"
    if threshold is None:
        threshold, where = calibrated_threshold(model, frozen, trials)
        where = f"EER threshold on {where}"
    click.echo(f"score {score:.4f}  threshold {threshold:.4f} ({where})  ->  "
               f"{'same speaker' if score >= threshold else 'different speakers'}")

