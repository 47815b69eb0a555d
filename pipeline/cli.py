"""The command group. Commands live in `pipeline/bin/` and are imported only when called, so that `make-mfcc` does
not pay for importing torch.

An error the user can act on (a `PipelineError`: bad data, bad config, a stage not run yet) is printed as one line
and exits 1; any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import importlib
from typing import Any

import click

from pipeline.errors import PipelineError

# command name -> "module:function" (a click command)
COMMANDS = {
    "make-mfcc": "pipeline.bin.make_mfcc:main",
    "augment-data-dir": "pipeline.bin.augment:main",
    "perturb-speed": "pipeline.bin.perturb_speed:main",
    "fit-gmm": "pipeline.bin.fit_gmm:main",
    "make-lgp": "pipeline.bin.make_lgp:main",
    "inspect": "pipeline.bin.describe:main",
    "config-get": "pipeline.bin.config_tools:main",
    "recipe-vars": "pipeline.bin.config_tools:recipe_vars_command",
    "validate": "pipeline.bin.validate:main",
    "validate-data-dir": "pipeline.bin.data_dir_tools:validate",
    "fix-data-dir": "pipeline.bin.data_dir_tools:fix",
    "import-data-dir": "pipeline.bin.data_dir_tools:import_data_dir_command",
    "train": "pipeline.bin.train:main",
    "extract": "pipeline.bin.extract:main",
    "score": "pipeline.bin.score:main",
    "verify": "pipeline.bin.verify:main",
    "export": "pipeline.bin.export:main",
    "enroll": "pipeline.bin.identify:enroll",
    "identify": "pipeline.bin.identify:identify",
    "score-pairs": "pipeline.bin.score_pairs:main",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipelineError as err:
            raise click.ClickException(str(err)) from err


@click.group(cls=LazyGroup)
def cli() -> None:
    """gmm-resnext: GMM-ResNext speaker verification, as a Kaldi-style recipe."""
