#!/usr/bin/env bash
# Start a single-node Slurm on this machine: munged + slurmctld + slurmd, all as root, on loopback, with every
# file (config, munge key and socket, state, spool, logs, pid files) under DIR. Used by tests/test_parallel.py,
# and by hand to try `--cmd slurm`:
#
#   tests/slurm/start_slurm.sh /tmp/slurm [SLURMCTLD_PORT [SLURMD_PORT]]
#   export SLURM_CONF=/tmp/slurm/slurm.conf
#   ...   # sbatch, squeue, ./run.sh --cmd slurm
#   tests/slurm/stop_slurm.sh /tmp/slurm
#
# Needs Debian's `apt-get install slurm-wlm munge` (Slurm 22.05 on bookworm). No cgroups, no accounting database:
# processes are tracked through /proc (proctrack/linuxproc), which works inside a container.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 DIR [SLURMCTLD_PORT [SLURMD_PORT]]" >&2
  exit 2
fi
dir=$(realpath -m "$1")
ctld_port=${2:-16817}
slurmd_port=${3:-16818}

for bin in munged slurmctld slurmd sbatch sinfo; do
  if ! command -v "$bin" > /dev/null; then
    echo "$0: '$bin' not found; install Slurm and munge: apt-get install slurm-wlm munge" >&2
    exit 3
  fi
done

mkdir -p "$dir"/{munge,state,spool,log}
chmod 755 "$dir"
chmod 711 "$dir/munge"  # munged wants its socket dir traversable, its key private
if [ ! -f "$dir/munge/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
fi

# MinJobAge=4 keeps `sbatch --wait` polling every 2 s (it sleeps longer when job records live longer), which
# keeps the tests fast; the record still outlives that poll. config_overrides accepts the CPU count as given.
cat > "$dir/slurm.conf" <<EOF
ClusterName=gmmtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=4
KillWait=2
NodeName=gmmnode NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=gmmnode Default=YES MaxTime=INFINITE State=UP
EOF

# Foreground daemons (-F, -D) sent to the background here, so that their pids are ours to stop.
munged -F -f --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munge/munged.pid" --seed-file="$dir/munge/munged.seed" --log-file="$dir/log/munged.log" \
  > "$dir/log/munged.out" 2>&1 < /dev/null &
echo $! > "$dir/munged.pid.run"
for _ in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
if [ ! -S "$dir/munge/munge.socket" ]; then
  echo "$0: munged did not start; $dir/log/munged.out says:" >&2
  cat "$dir/log/munged.out" >&2
  exit 1
fi

slurmctld -D -i -f "$dir/slurm.conf" > "$dir/log/slurmctld.out" 2>&1 < /dev/null &
echo $! > "$dir/slurmctld.pid.run"
slurmd -D -f "$dir/slurm.conf" -N gmmnode > "$dir/log/slurmd.out" 2>&1 < /dev/null &
echo $! > "$dir/slurmd.pid.run"

export SLURM_CONF="$dir/slurm.conf"
for _ in $(seq 150); do
  if [ "$(sinfo -h -o %t 2> /dev/null)" = "idle" ]; then
    echo "export SLURM_CONF=$dir/slurm.conf"
    exit 0
  fi
  sleep 0.2
done
echo "$0: the Slurm node did not become idle within 30 s; sinfo says: $(sinfo -h -o '%t %E' 2>&1)" >&2
tail -n 20 "$dir"/log/*.out >&2
exit 1
