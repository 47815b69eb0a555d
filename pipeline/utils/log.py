"""Logs for people: one line per step with counts and times, to the console and to `exp/.../log/*.log`."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def get_logger(name: str, log_file: str | os.PathLike | None = None) -> logging.Logger:
    """A logger that prints to stderr and, if given, appends to `log_file` (created with its directory)."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) for h in logger.handlers):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
        logger.addHandler(stream)
    if log_file is not None:
        log_file = Path(log_file)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == log_file.resolve()
                   for h in logger.handlers):
            handler = logging.FileHandler(log_file)
            handler.setFormatter(logging.Formatter(FORMAT))
            logger.addHandler(handler)
    return logger
