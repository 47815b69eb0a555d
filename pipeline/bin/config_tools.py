"""`config-get` and `lgp-gmms`: what shell scripts (run.sh, steps/) read from an experiment config."""
from __future__ import annotations

import click

from pipeline.dataset.features import input_names
from pipeline.utils.config import load_config
from pipeline.utils.set_names import lgp_gmm_names


@click.command("config-get")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True)
@click.option("--default", default=None, help="printed when the key is absent (else it is an error)")
@click.argument("key")
def main(config_path: str, override: tuple[str, ...], default: str | None, key: str) -> None:
    """Print the value at dotted KEY: scalars as they are, lists and mapping keys space-separated."""
    node = load_config(config_path, override)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is not None:
                click.echo(default)
                return
            raise click.ClickException(f"{config_path}: no key {key!r}")
        node = node[part]
    if isinstance(node, dict):
        click.echo(" ".join(str(k) for k in node))
    elif isinstance(node, list):
        click.echo(" ".join(str(v) for v in node))
    else:
        click.echo("" if node is None else str(node).lower() if isinstance(node, bool) else str(node))


@click.command("lgp-gmms")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True)
def lgp_gmms(config_path: str, override: tuple[str, ...]) -> None:
    """Print the stage-2 GMMs whose LGP maps some model of the config reads (the GMMs stage 3 dumps), in the order
    of `gmm.models`."""
    cfg = load_config(config_path, override)
    read = {gmm for entry in (cfg.get("models") or {}).values() for gmm in lgp_gmm_names(input_names(entry)).values()}
    click.echo(" ".join(g for g in (cfg.get("gmm") or {}).get("models", []) if g in read))
