#!/usr/bin/env bash
# Stage 6: cosine / AS-Norm scoring of every trials list, EER, minDCF, DET plots, results table.
# Options and arguments: steps/score.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline score "$@"
