#!/usr/bin/env bash
# Stage 5: x-vector style embeddings (full utterance + evenly spaced crops) of a data dir.
# Options and arguments: steps/extract.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline extract "$@"
