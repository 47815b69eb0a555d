"""Randomness that does not depend on how work is split: one independent stream per (seed, key, ...).

A job that augments (or synthesises) an utterance draws from `rng_for(seed, utt, purpose)`, so the result is the
same whatever `--nj`, the engine, or the order in which jobs run.
"""
from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same in every process (Python's `hash` is salted per process)."""
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")


def rng_for(seed: int, *keys: str | int) -> np.random.Generator:
    """The random stream of (seed, keys...): strings are hashed, integers used as they are."""
    return np.random.default_rng([seed] + [k if isinstance(k, int) else stable_hash(k) for k in keys])
