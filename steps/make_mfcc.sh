#!/usr/bin/env bash
# Stage 1: MFCC + energy VAD of a data dir into Kaldi ark/scp, in --nj jobs.
# Options and arguments: steps/make_mfcc.sh --help
. "$(dirname "$0")/../path.sh"
exec python -m pipeline make-mfcc "$@"
