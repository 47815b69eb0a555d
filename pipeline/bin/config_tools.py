"""`config-get` and `recipe-vars`: what shell scripts (run.sh, steps/) read from an experiment config."""
from __future__ import annotations

import click

from pipeline.recipe_layout import recipe_vars, shell_assignments
from pipeline.utils.config import load_config


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


@click.command("recipe-vars")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--override", "-o", multiple=True)
def recipe_vars_command(config_path: str, override: tuple[str, ...]) -> None:
    """Print the names run.sh works with as shell assignments (`eval` them): sets, GMMs, models, switches."""
    click.echo(shell_assignments(recipe_vars(load_config(config_path, override))), nl=False)
