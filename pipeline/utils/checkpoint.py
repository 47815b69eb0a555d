"""Checkpoints: written atomically with a content hash beside them, read with `torch.load(weights_only=True)` only,
averaged for the final model.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts (model and optimizer state, RNG states as
uint8 tensors, the config): everything `weights_only` accepts, so loading one can never run code hidden in a
pickle. Its sha256 is recorded in `<file>.sha256` when it is written and checked when it is read, so a file whose
bytes changed since (a flipped block loads fine and gives wrong scores) is refused. A file that is missing,
truncated, corrupt, changed or holds other objects raises CheckpointError naming it.
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import PipelineError
from pipeline.utils.atomic import IntegrityError, atomic_file, checksum_path, verify_checksum, write_checksum

EPOCH_PATTERN = re.compile(r"^(?P<prefix>.*?)epoch_(?P<epoch>\d+)\.pt$")


class CheckpointError(PipelineError, RuntimeError):
    """A checkpoint that cannot be used; the message names the file and what to do."""


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write `state` to `path` via a temp file and rename, so a crash never leaves a half checkpoint; then its
    content hash."""
    path = Path(path)
    checksum_path(path).unlink(missing_ok=True)  # no hash of the old file may vouch for the new one
    with atomic_file(path, "wb", durable=True) as handle:
        torch.save(state, handle)
    write_checksum(path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; never unpickles arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found (has stage 4, training, run for this model?)")
    try:
        verify_checksum(path)
    except IntegrityError as err:
        raise CheckpointError(f"checkpoint {err}") from err
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for bad files: zip, pickle, key, EOF and runtime errors
        message = str(err)
        # A disallowed GLOBAL names a class or function the file wanted to call: a pickle of arbitrary objects.
        offending = next((line.strip() for line in message.splitlines() if "Unsupported global" in line), None)
        if isinstance(err, pickle.UnpicklingError) and offending:
            offending = offending.split(" was not an allowed")[0]
            raise CheckpointError(f"checkpoint {path} holds objects other than tensors and plain data; refusing to "
                                  f"unpickle it (only files written by this toolkit are loaded): {offending}") from err
        lines = [line.strip() for line in message.splitlines() if line.strip()] or [""]
        detail = next((line for line in lines if line.startswith("Unsupported")), lines[0])
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {detail}); "
                              f"delete it and rerun training with --resume") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, expected a dict")
    return state


def epoch_checkpoints(directory: str | os.PathLike, prefix: str = "") -> list[tuple[int, Path]]:
    """(epoch, path) of `<prefix>epoch_<n>.pt` files in `directory`, in epoch order."""
    found = []
    for path in Path(directory).glob(f"{prefix}epoch_*.pt"):
        match = EPOCH_PATTERN.match(path.name)
        if match and match["prefix"] == prefix:
            found.append((int(match["epoch"]), path))
    return sorted(found)


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point entries; integer entries (BatchNorm batch counts) from the last."""
    if not states:
        raise ValueError("nothing to average")
    keys = states[-1].keys()
    for state in states:
        if state.keys() != keys:
            raise CheckpointError("cannot average checkpoints of different models (their parameter names differ)")
    averaged = {}
    for key, last in states[-1].items():
        if torch.is_floating_point(last):
            total = torch.zeros_like(last, dtype=torch.float64)
            for state in states:
                total += state[key].to(torch.float64)
            averaged[key] = (total / len(states)).to(last.dtype)
        else:
            averaged[key] = last.clone()
    return averaged


def average_checkpoints(paths: list[Path], key: str = "model") -> dict[str, torch.Tensor]:
    """Mean of the `key` state dicts of several checkpoints (the last K epochs give the final model)."""
    return average_state_dicts([load_checkpoint(p)[key] for p in paths])
