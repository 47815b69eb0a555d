# Sourced by run.sh and the steps: the project's Python environment and package on the path, C collation.
# Resolved through links, so a recipe dir that links path.sh, steps/ and local/ (Kaldi style) finds the checkout.
GMM_RESNEXT_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ] && [ -f "$GMM_RESNEXT_ROOT/.venv/bin/activate" ]; then
  . "$GMM_RESNEXT_ROOT/.venv/bin/activate"
fi
export PYTHONPATH="$GMM_RESNEXT_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C                     # Kaldi tables are sorted in byte order
export PYTHONUNBUFFERED=1
