#!/usr/bin/env bash
# Installs Debian's Slurm and munge for tests/test_parallel.py (which starts a one-node Slurm on loopback).
# As root with apt-get only; elsewhere the Slurm tests skip and say why.
set -euo pipefail
command -v slurmctld >/dev/null && command -v munged >/dev/null && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "tests/slurm/install_slurm.sh: not root (or no apt-get): Slurm tests will skip;" \
       "to run them: sudo apt-get install slurm-wlm munge" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
