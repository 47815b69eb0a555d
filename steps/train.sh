#!/usr/bin/env bash
# Stage 4: train one model of the config; with --gpus N > 1 (or several nodes) through torchrun + DDP.
# usage: steps/train.sh [--gpus N] --config conf/X.yaml --model NAME --exp-dir exp/NAME [--resume] [-o key=value]
. "$(dirname "$0")/../path.sh"
gpus=1
if [ "${1:-}" = "--gpus" ]; then gpus=$2; shift 2; fi
if [ "$gpus" -gt 1 ]; then
  exec torchrun --standalone --nproc_per_node "$gpus" -m pipeline train "$@"
fi
exec python -m pipeline train "$@"
