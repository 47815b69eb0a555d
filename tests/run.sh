#!/usr/bin/env bash
# The test suite, from a fresh machine: installs what it needs (Python environment; as root, the Debian
# packages the tests use), then runs pytest. Extra arguments go to pytest, e.g. tests/run.sh -k datadir
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps/install.sh --test
tests/slurm/install_slurm.sh
local/install_demo_voices.sh || echo "tests/run.sh: demo voices not installed; tests that synthesise speech will be skipped" >&2
. ./path.sh
python -m pytest -q "$@"
