#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (Debian/Ubuntu, run as root), so that the
# workflow's SLURM profile can be run for real: `make test` then runs tests/test_slurm.py.
#
#   sudo tools/slurm-local/setup.sh      # install, configure, start; prints one status line
#   sudo tools/slurm-local/teardown.sh   # stop the daemons
#
# Idempotent: a second run finds the daemons up and returns in a second or two. There is no
# systemd in containers and CI runners, so the daemons are started directly, in the background.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
conf=/etc/slurm/slurm.conf
log() { echo "slurm-local: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (the daemons and apt-get need it)"

# --- packages ------------------------------------------------------------------------------
# slurm-wlm brings slurmctld, slurmd and the client commands; munge authenticates them.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
    log "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# --- munge ---------------------------------------------------------------------------------
# munged refuses a key that others can read, or one not owned by the user it runs as.
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating the munge key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else  # munge < 0.5.14
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "starting munged"
    # A munged killed without cleanup leaves its pid and socket behind and refuses to start.
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n </dev/null | unmunge >/dev/null || die "munged does not answer"
fi

# --- configuration -------------------------------------------------------------------------
# The node has this machine's CPUs (nproc: what this process may use, e.g. a CI runner's
# share) and the memory slurmd itself detects.
cpus="$(nproc)"
memory="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')"
[[ -n $memory ]] || die "slurmd -C did not report RealMemory"
new="$(sed -e "s/@CPUS@/$cpus/" -e "s/@MEMORY@/$memory/" "$here/slurm.conf.in")"
changed=0
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$new" ]]; then
    install -d /etc/slurm
    printf '%s\n' "$new" >"$conf"
    changed=1
fi
install -d /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

# --- daemons -------------------------------------------------------------------------------
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [[ $changed -eq 1 ]] && { running /run/slurmctld.pid || running /run/slurmd.pid; }; then
    log "configuration changed: restarting the daemons"
    "$here/teardown.sh" --quiet
fi
if ! running /run/slurmctld.pid; then
    log "starting slurmctld"
    # Without -D the daemon forks into the background and writes its pid file. -c: a fresh
    # start discards the jobs of an earlier session (their Snakemake parents are gone), so a
    # test run finds the node free.
    slurmctld -c
fi
if ! running /run/slurmd.pid; then
    log "starting slurmd"
    # -N: the node is called localhost whatever this machine's hostname is.
    slurmd -N localhost
fi

# --- wait until jobs run -------------------------------------------------------------------
# slurmd registers within a few seconds; a node left DOWN by an earlier run is resumed.
state=""
for _ in $(seq 120); do
    state="$(sinfo -h -n localhost -o '%T' 2>/dev/null || true)"
    case "$state" in
        idle* | mixed* | allocated* | completing*) break ;;
        down* | drain*) scontrol update nodename=localhost state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
done
case "$state" in
    idle* | mixed* | allocated* | completing*) ;;
    *) die "node localhost is '${state:-absent}' (see /var/log/slurm/slurmd.log and slurmctld.log)" ;;
esac
if ! out="$(timeout 60 srun --partition=debug --time=1 --ntasks=1 hostname 2>&1)"; then
    die "srun hostname failed: $out"
fi

echo "slurm-local: up: partition debug, node localhost ($cpus CPUs, $memory MB, $state)," \
    "srun ran on $out; config $conf"
