"""`export`: a trained network as one ONNX or TorchScript file, front-end frames in, embedding out
(see `pipeline/export.py`).

    python -m pipeline export --model exp/gmm_resnext --format onnx --out gmm_resnext.onnx
"""
from __future__ import annotations

import click

from pipeline.export import FORMATS, export_model
from pipeline.speaker_model import SpeakerModel


@click.command("export")
@click.option("--model", "model_dir", required=True, type=click.Path(file_okay=False),
              help="a trained experiment, exp/<model>")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="onnx", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="the file to write")
def main(model_dir: str, fmt: str, out: str) -> None:
    """Write the model of MODEL as OUT: normalised MFCC (or fbank) frames -> embedding, any number of frames."""
    model = SpeakerModel.load(model_dir, device="cpu")
    path = export_model(model, out, fmt)
    click.echo(f"{path}: {model.name} as {fmt}, {path.stat().st_size / 2 ** 20:.1f} MiB")
