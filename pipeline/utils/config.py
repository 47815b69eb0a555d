"""One YAML per experiment, overridable from the command line, frozen next to its outputs."""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

import yaml

from pipeline.errors import PipelineError
from pipeline.utils.atomic import atomic_file


class ConfigError(PipelineError, ValueError):
    """A config file or an override is malformed."""


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a YAML config and apply `dotted.key=value` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config {path} not found")
    with open(path, encoding="utf-8") as handle:
        cfg = yaml.safe_load(handle) or {}
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of `cfg` with each `a.b.c=value` set; unknown intermediate keys are created."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key.sub=value")
        dotted, raw = item.split("=", 1)
        node = cfg
        keys = dotted.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {key!r} is not a mapping")
        node[keys[-1]] = yaml.safe_load(raw)
    return cfg


def save_config(cfg: dict[str, Any], path: str | os.PathLike) -> None:
    """Freeze a config as YAML (atomically), for later stages and for people to read."""
    with atomic_file(path) as handle:
        yaml.safe_dump(cfg, handle, sort_keys=False, default_flow_style=None)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of config sections and input facts, to tell whether finished work is still valid."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]
