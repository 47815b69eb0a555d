#!/usr/bin/env bash
# Stop the single-node Slurm started by start_slurm.sh DIR: cancel its jobs (so no slurmstepd outlives slurmd),
# then end slurmd, slurmctld and munged by the pids that start_slurm.sh recorded. Safe to run twice.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir=$(realpath -m "$1")
export SLURM_CONF="$dir/slurm.conf"

if [ -f "$dir/slurmctld.pid.run" ] && kill -0 "$(cat "$dir/slurmctld.pid.run")" 2> /dev/null; then
  timeout 10 scancel --full --quiet --user=root 2> /dev/null || true
  for _ in $(seq 50); do
    [ -z "$(timeout 5 squeue -h -o %i 2> /dev/null)" ] && break
    sleep 0.2
  done
fi

# All three at once: each takes about 2 s to shut down.
pids=()
for daemon in slurmd slurmctld munged; do
  pid_file="$dir/$daemon.pid.run"
  [ -f "$pid_file" ] || continue
  pid=$(cat "$pid_file")
  kill -TERM "$pid" 2> /dev/null && pids+=("$pid")
  rm -f "$pid_file"
done
for _ in $(seq 50); do
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2> /dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -KILL "$pid" 2> /dev/null; done
exit 0
