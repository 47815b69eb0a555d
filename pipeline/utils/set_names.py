"""The names of data sets: the data dirs the stages derive from a set, and the names a user's set may take.

A model reads input `<name>` of a set from the data dir `<set>_<name>`, except `mfcc`, which is in the set itself:
stage 1 derives `<set>_fbank` (with `features.fbank`), stage 3 `<set>_lgp_<gmm>` (the out dir run.sh gives it). An
imported set is refused a name that a derived dir could take, and a set whose derived dirs would land on another.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

MFCC_INPUT = "mfcc"
FBANK_INPUT = "fbank"
LGP_PREFIX = "lgp_"
# Set names become Kaldi ids, file names and words of run.sh's loops: no whitespace, quotes or shell syntax, and
# no leading '-' (an option) or '.' (hidden, like a staging dir).
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def lgp_gmm_names(input_names: list[str]) -> dict[str, str]:
    """Input name -> the stage-2 GMM of each LGP input among `input_names` (`lgp_gi` -> `gi`)."""
    return {name: name[len(LGP_PREFIX):] for name in input_names if name.startswith(LGP_PREFIX)}


def derived_data_dir(set_dir: str | os.PathLike, input_name: str) -> Path:
    """The data dir a stage derives from the set in `set_dir` for input `input_name` (`fbank`, `lgp_gi`)."""
    set_dir = Path(set_dir)
    return set_dir.with_name(f"{set_dir.name}_{input_name}")


def derived_from(name: str) -> str | None:
    """The set whose derived data dir `name` is (`evK` for `evK_fbank` or `evK_lgp_gi`), None for other names."""
    if name.endswith("_" + FBANK_INPUT):
        return name[:-len(FBANK_INPUT) - 1] or None
    # the last `_lgp_`: GMM names never hold one, so a set named `x_lgp` keeps its `x_lgp_lgp_gi`
    head, sep, _ = name.rpartition("_" + LGP_PREFIX)
    return head if sep and head else None


def derived_data_dirs(set_dir: str | os.PathLike) -> list[Path]:
    """The data dirs beside `set_dir` whose names are those of its derived dirs."""
    set_dir = Path(set_dir)
    if not set_dir.parent.is_dir():
        return []
    return sorted(p for p in set_dir.parent.iterdir() if p.is_dir() and derived_from(p.name) == set_dir.name)


def set_name_problem(name: str) -> str | None:
    """Why `name` cannot name a user's set (with what to do), or None when it can."""
    if not SET_NAME.fullmatch(name):
        return (f"set names become Kaldi ids and shell words: rename {name!r} with letters, digits, '_', '-' and "
                f"'.' only, starting with a letter or digit")
    source = derived_from(name)
    if source is not None:
        return (f"{name!r} is the name the recipe gives a data dir it derives from a set {source!r} (`<set>_fbank`, "
                f"`<set>_lgp_<gmm>`): rename it, e.g. to {name.replace('_', '-')!r}")
    return None
