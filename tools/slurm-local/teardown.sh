#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by tools/slurm-local/setup.sh (run as root).
# Jobs still queued or running are lost. The configuration and the packages stay: setup.sh
# starts the daemons again in seconds. `--quiet` prints nothing (setup.sh uses it to restart).
set -euo pipefail

quiet=0
[[ ${1:-} == --quiet ]] && quiet=1
say() { [[ $quiet -eq 1 ]] || echo "slurm-local: $*"; }

# Stop a daemon by the pid in its pid file (never by name: other clusters' daemons may run
# here) and wait until it has exited, so that a following start finds its port free.
stop() {
    local name=$1 pidfile=$2 pid
    if [[ -s $pidfile ]] && pid="$(cat "$pidfile")" && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "stopped $name ($pid)"
    fi
    rm -f "$pidfile"
}

stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
# munged keeps running unless asked: other munge clients on this machine may need it.
if [[ ${SLURM_LOCAL_STOP_MUNGE:-0} == 1 ]]; then
    stop munged /run/munge/munged.pid
fi
