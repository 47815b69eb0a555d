#!/usr/bin/env bash
# Stage 4: train one model of the config: one process, or through torchrun + DDP on several GPUs (--gpus N) and
# several nodes (--nnodes M --node-rank R --rdzv HOST:PORT, the same command on every node; HOST is node 0's).
# usage: steps/train.sh [--gpus N] [--nnodes M --node-rank R --rdzv HOST:PORT] --config conf/X.yaml --model NAME
#                       --exp-dir exp/NAME [--resume] [-o key=value]...
set -euo pipefail
. "$(dirname "$0")/../path.sh"
gpus=1; nnodes=1; node_rank=0; rdzv=""
while [ $# -gt 0 ]; do
  case "$1" in
    --gpus) gpus=$2; shift 2 ;;
    --nnodes) nnodes=$2; shift 2 ;;
    --node-rank) node_rank=$2; shift 2 ;;
    --rdzv) rdzv=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ "$nnodes" -gt 1 ]; then
  if [ -z "$rdzv" ] || [ "${rdzv##*:}" = "$rdzv" ]; then
    echo "$0: --nnodes $nnodes needs --rdzv HOST:PORT (node 0's address and a free port, the same on every node)" >&2
    exit 1
  fi
  # Static rendezvous: node 0 hosts it at HOST:PORT, every node says which one it is.
  exec torchrun --nnodes "$nnodes" --node-rank "$node_rank" --nproc-per-node "$gpus" \
    --master-addr "${rdzv%:*}" --master-port "${rdzv##*:}" -m pipeline train "$@"
fi
if [ "$gpus" -gt 1 ]; then
  exec torchrun --standalone --nproc-per-node "$gpus" -m pipeline train "$@"
fi
exec python -m pipeline train "$@"
