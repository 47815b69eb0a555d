#!/usr/bin/env bash
# Installs the Python environment the recipe and the tests run in, once (later calls return at once).
#
# - Inside an active virtualenv or conda env, installs into it; otherwise creates ./.venv.
# - Installs setup.cfg's install_requires (+ test extras with --test). torch is pinned to the CPU wheel
#   torch==2.13.0 only when no torch is importable, so a user's own CUDA build is kept.
# - As root on Debian/Ubuntu, installs python3-venv if venv is missing; otherwise says what to install.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$root"
extras=""
[ "${1:-}" = "--test" ] && extras="test"
TORCH_PIN="torch==2.13.0"
python=${PYTHON:-python3}

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  py=$(command -v python)
else
  if [ ! -x .venv/bin/python ]; then
    if ! $python -m venv --help >/dev/null 2>&1 || ! $python -c 'import ensurepip' 2>/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip
      else
        echo "steps/install.sh: Python's venv module is missing. Install it (Debian/Ubuntu:" \
             "'sudo apt-get install python3-venv'), or activate an environment of your own and rerun." >&2
        exit 1
      fi
    fi
    echo "steps/install.sh: creating the environment in $root/.venv"
    $python -m venv .venv
  fi
  py=$root/.venv/bin/python
fi

# The requirement list lives in setup.cfg alone; the stamp remembers what was installed from which list.
reqs=$($py - "$extras" <<'PY'
import configparser, sys
cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
lines = cfg["options"]["install_requires"].split("\n")
extras = sys.argv[1]
if extras:
    lines += cfg["options.extras_require"][extras].split("\n")
print(" ".join(r.strip() for r in lines if r.strip()))
PY
)
stamp="$($py -c 'import sys; print(sys.prefix)')/.gmm-resnext-installed"
want=$(echo "$reqs" | sha1sum | cut -c1-16)
if [ -f "$stamp" ] && grep -qx "$want" "$stamp"; then
  exit 0
fi
echo "steps/install.sh: installing Python packages into $($py -c 'import sys; print(sys.prefix)')"
$py -m pip install -q --upgrade pip
if ! $py -c 'import torch' 2>/dev/null; then
  $py -m pip install -q "$TORCH_PIN"
fi
# shellcheck disable=SC2086
$py -m pip install -q $reqs
echo "$want" >> "$stamp"
echo "steps/install.sh: done ($($py -c 'import torch; print("torch", torch.__version__)'))"
