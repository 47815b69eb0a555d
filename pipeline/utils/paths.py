"""How the recipe writes paths into its own files (scp tables, wav.scp, keys): relative to the recipe directory.

Every stage runs in the recipe directory (run.sh's, Kaldi style), and every job engine runs its jobs there too. A
path inside it is written relative to it (`mfcc/raw_mfcc_train.1.ark:42`), so that a checkout moved or copied
elsewhere (`cp -a`, another disk) reads its own archives and audio, not the old location's, and keys that name
paths stay the same. A path outside it (a corpus on another disk) is written absolute. Kaldi's own tools read
these tables when run from the recipe directory, as Kaldi's recipes are.
"""
from __future__ import annotations

import os
from pathlib import Path


def recipe_path(path: str | os.PathLike) -> str:
    """`path` as the recipe writes it: relative to the working directory when it lies inside it, else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, os.getcwd())
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return absolute
    return relative


def recipe_dir_of(exp_dir: str | os.PathLike) -> Path:
    """The recipe directory of a trained experiment `exp/<model>`: where its relative paths start."""
    return Path(exp_dir).resolve().parent.parent


def in_recipe(path: str | os.PathLike, recipe_dir: str | os.PathLike) -> Path:
    """A path read from one of the recipe's files, for a reader whose working directory may be elsewhere."""
    path = Path(path)
    return path if path.is_absolute() else Path(recipe_dir) / path
