#!/usr/bin/env bash
# Stage 3: normalised LGP archives of a data dir under one GMM.
# Options and arguments: steps/make_lgp.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline make-lgp "$@"
