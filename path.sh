# Sourced by run.sh and the steps: the project's Python environment and package on the path, C collation.
# Resolved through links, so a recipe dir that links path.sh, steps/ and local/ (Kaldi style) finds the checkout.
GMM_RESNEXT_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# Not .venv/bin/activate: it names the directory the environment was made in, so a moved or copied checkout would
# run the old place's environment (or none, once that is gone).
if [ -z "${VIRTUAL_ENV:-}" ] && [ -z "${CONDA_PREFIX:-}" ] && [ -x "$GMM_RESNEXT_ROOT/.venv/bin/python" ]; then
  export VIRTUAL_ENV="$GMM_RESNEXT_ROOT/.venv"
  export PATH="$VIRTUAL_ENV/bin:$PATH"
fi
export PYTHONPATH="$GMM_RESNEXT_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export LC_ALL=C                     # Kaldi tables are sorted in byte order
export PYTHONUNBUFFERED=1
