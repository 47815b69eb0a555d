#!/usr/bin/env bash
# The test suite, from a fresh machine: installs what it needs (Python environment; as root, the Debian
# packages the tests use), then runs pytest. Extra arguments go to pytest, e.g. tests/run.sh -k datadir.
# tests/run.sh --fast leaves out the end-to-end tests (marker e2e: run.sh on a tiny recipe, the demo corpus, the job
# engines, the install): the loop to run while editing; CI runs everything.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps/install.sh --test
tests/slurm/install_slurm.sh
local/install_demo_voices.sh || echo "tests/run.sh: demo voices not installed; tests that synthesise speech will be skipped" >&2
local/install_ffmpeg.sh || echo "tests/run.sh: ffmpeg not installed; the VoxCeleb2 m4a tests and the rehearsal will be skipped" >&2
. ./path.sh
if [ "${1:-}" = --fast ]; then
  shift
  set -- -m "not e2e" "$@"
fi
# Spread over the cores (pytest-xdist), at most 4 workers, longest tests first and idle workers taking half of a
# busy one's queue (tests/conftest.py); the trained recipe the end-to-end tests share is built by one of them.
# `tests/run.sh -n 0 ...` runs everything in one process.
# One thread per process (torch, BLAS) unless you set them: the workers already fill the cores, and more threads
# only contend.
workers=$(nproc)
[ "$workers" -gt 4 ] && workers=4
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} python -m pytest -q -n "$workers" --dist worksteal "$@"
