"""The base of every error a user can act on: bad input data, a bad config, a stage whose inputs are missing.

Each module raises its own subclass (DataDirError, AudioError, ConfigError, ...) with a message that names the
file, the line or the key and says what to do. The command line prints such an error as one line and exits 1;
any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations


class PipelineError(Exception):
    """An error in what the user gave or ran, not in the code; the message says where and what to do."""
