#!/usr/bin/env bash
# Stage 2: fit the gender-independent, male and female diagonal GMMs on a training data dir.
# Options and arguments: steps/fit_gmm.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline fit-gmm "$@"
