#!/usr/bin/env bash
# Bring up a single-node SLURM (Debian bookworm, 22.05) cluster WITHOUT systemd.
#
# Usage (as root):   .ci/slurm_up.sh [--restart] [--no-test]
#   --restart   stop running daemons and start fresh even if the cluster is healthy
#   --no-test   skip the srun/sbatch smoke tests
# Env:  SLURM_UP_TIMEOUT  seconds to wait for the node to become idle (default 60)
#       SLURM_UP_SKIP_APT=1  never call apt-get (fail if binaries are missing)
#
# Idempotent: re-running on a healthy cluster with an unchanged config only
# re-runs the smoke tests.  Tear down with .ci/slurm_down.sh.
set -euo pipefail

RESTART=0
RUN_TESTS=1
for arg in "$@"; do
  case "$arg" in
    --restart) RESTART=1 ;;
    --no-test) RUN_TESTS=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "slurm_up: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

TIMEOUT="${SLURM_UP_TIMEOUT:-60}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
LOG_DIR=/var/log/slurm
CTLD_LOG="$LOG_DIR/slurmctld.log"
SLURMD_LOG="$LOG_DIR/slurmd.log"
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
T0=$(date +%s)

log() { printf '[slurm_up %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() {
  printf '[slurm_up] ERROR: %s\n' "$*" >&2
  for f in "$CTLD_LOG" "$SLURMD_LOG"; do
    if [ -f "$f" ]; then echo "----- tail -n 40 $f -----" >&2; tail -n 40 "$f" >&2; fi
  done
  if command -v sinfo >/dev/null 2>&1; then
    echo "----- sinfo -----" >&2; timeout 10 sinfo -N -l >&2 2>&1 || true
    echo "----- scontrol show node -----" >&2; timeout 10 scontrol show node >&2 2>&1 || true
  fi
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---------------------------------------------------------------- install
need_install=0
for b in slurmctld slurmd srun sbatch squeue munged munge unmunge; do
  command -v "$b" >/dev/null 2>&1 || { need_install=1; break; }
done
if [ "$need_install" -eq 1 ]; then
  [ "${SLURM_UP_SKIP_APT:-0}" = 1 ] && die "SLURM binaries missing and SLURM_UP_SKIP_APT=1"
  log "installing slurmctld slurmd slurm-client munge via apt-get"
  # keep package postinst scripts from trying to start services (no systemd here)
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt_ok=0
  for attempt in 1 2 3; do
    if apt-get update -q && apt-get install -y -q --no-install-recommends \
         slurmctld slurmd slurm-client munge; then
      apt_ok=1; break
    fi
    log "apt-get failed (attempt $attempt), retrying in 5 s"; sleep 5
  done
  [ "$own_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$apt_ok" -eq 1 ] || die "apt-get install failed"
else
  log "SLURM + munge already installed ($(slurmctld -V 2>/dev/null || echo '?'))"
fi

# ---------------------------------------------------------------- munge
log "setting up munge"
id munge >/dev/null 2>&1 || die "user 'munge' does not exist (munge package broken?)"
install -d -o munge -g munge -m 0700 /etc/munge
install -d -o munge -g munge -m 0700 /var/lib/munge
install -d -o munge -g munge -m 0700 /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
  log "munged already running and working"
else
  if [ -f /run/munge/munged.pid ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    sleep 1
  fi
  log "starting munged as user munge"
  runuser -u munge -- /usr/sbin/munged --force \
    || die "munged failed to start (see /var/log/munge/munged.log)"
  for _ in $(seq 1 20); do munge_ok && break; sleep 0.5; done
  munge_ok || die "munge -n | unmunge does not work (see /var/log/munge/munged.log)"
fi

# ---------------------------------------------------------------- config
NODE=$(hostname -s)
[ -n "$NODE" ] || die "hostname -s is empty"
CPUS=$(nproc)
MEM_TOTAL=$(free -m | awk '/^Mem:/{print $2}')
# headroom: 10% of RAM, at least 256 MiB, at most 4 GiB
HEADROOM=$(( MEM_TOTAL / 10 ))
[ "$HEADROOM" -lt 256 ] && HEADROOM=256
[ "$HEADROOM" -gt 4096 ] && HEADROOM=4096
REAL_MEM=$(( MEM_TOTAL - HEADROOM ))
[ "$REAL_MEM" -lt 256 ] && REAL_MEM=$(( MEM_TOTAL * 8 / 10 ))
# default memory for jobs that do not pass --mem (otherwise they get the whole node)
DEF_MEM=$(( REAL_MEM / CPUS ))
[ "$DEF_MEM" -gt 1024 ] && DEF_MEM=1024

# If the short hostname does not resolve, pin addresses to loopback.
if getent hosts "$NODE" >/dev/null 2>&1; then
  CTLD_HOST="$NODE"; NODE_ADDR=""
else
  log "hostname '$NODE' does not resolve; using 127.0.0.1"
  CTLD_HOST="$NODE(127.0.0.1)"; NODE_ADDR=" NodeAddr=127.0.0.1"
fi

install -d -m 0755 "$CONF_DIR" "$LOG_DIR" /var/spool/slurmd /var/spool/slurmctld
NEW_CONF=$(mktemp)
trap 'rm -f "$NEW_CONF"' EXIT
cat > "$NEW_CONF" <<EOF
# Generated by .ci/slurm_up.sh -- single-node CI cluster (no systemd, no accounting)
ClusterName=ci
SlurmctldHost=$CTLD_HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldDebug=info
SlurmdDebug=info
# scheduling
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$DEF_MEM
# timers (small = fast CI)
KillWait=5
# MinJobAge: how long finished jobs stay visible in squeue/scontrol. Keep it
# >= 300: snakemake-executor-plugin-slurm with slurm-status-command=squeue
# polls up to every 180 s and treats a job that vanished from squeue as
# still running (=> hang); it also silently falls back to sacct (which fails
# without accounting) if MinJobAge < 3 * slurm-init-seconds-before-status-checks.
MinJobAge=300
InactiveLimit=0
Waittime=0
SlurmctldTimeout=60
SlurmdTimeout=60
MessageTimeout=10
# no accounting database
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# compute node(s)
NodeName=$NODE CPUs=$CPUS RealMemory=$REAL_MEM${NODE_ADDR} State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

conf_changed=1
if [ -f "$CONF" ] && cmp -s "$NEW_CONF" "$CONF"; then conf_changed=0; fi
if [ "$conf_changed" -eq 1 ]; then
  log "writing $CONF (node=$NODE CPUs=$CPUS RealMemory=${REAL_MEM}M)"
  install -m 0644 "$NEW_CONF" "$CONF"
else
  log "$CONF unchanged (node=$NODE CPUs=$CPUS RealMemory=${REAL_MEM}M)"
fi

# ---------------------------------------------------------------- daemons
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }
# daemon alive: pid file (written a moment after the daemon forks) or exact name
daemon_alive() { pid_alive "$2" || pgrep -x "$1" >/dev/null 2>&1; }
# A daemon that exits right after forking logs its reason to syslog, not to its
# log file; re-run it in the foreground for a few seconds to show the reason.
foreground_diag() { # $1 = daemon name
  echo "----- $1 -D (foreground, 5 s) to show why it does not start -----" >&2
  timeout 5 "$1" -D 2>&1 | tail -n 15 >&2 || true
}
wait_pidfile() { # $1 = name, $2 = pidfile; daemons fork and write the pid file asynchronously
  for _ in $(seq 1 40); do pid_alive "$2" && return 0; sleep 0.25; done
  daemon_alive "$1" "$2" || foreground_diag "$1"
  die "$1 did not come up (no live pid in $2)"
}
node_state() { timeout 10 sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1; }

healthy=0
if pid_alive "$CTLD_PID" && pid_alive "$SLURMD_PID"; then
  st=$(node_state || true)
  case "$st" in
    idle|mixed|allocated|completing) healthy=1 ;;
  esac
fi

if [ "$healthy" -eq 1 ] && [ "$conf_changed" -eq 0 ] && [ "$RESTART" -eq 0 ]; then
  log "cluster already running and healthy (node $NODE is '$st'); not restarting"
else
  if pid_alive "$CTLD_PID" || pid_alive "$SLURMD_PID" \
     || pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    log "stopping existing slurm daemons"
    "$(dirname "$0")/slurm_down.sh" --quiet || true
  fi
  log "starting slurmctld"
  # -c: drop saved job state from previous runs => clean start
  slurmctld -c || die "slurmctld failed to start"
  for _ in $(seq 1 20); do
    timeout 5 scontrol ping 2>/dev/null | grep -q UP && break
    sleep 0.5
  done
  if ! timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
    daemon_alive slurmctld "$CTLD_PID" || foreground_diag slurmctld
    die "slurmctld not responding to 'scontrol ping'"
  fi
  log "starting slurmd"
  slurmd || die "slurmd failed to start"
  wait_pidfile slurmd "$SLURMD_PID"
fi

# ---------------------------------------------------------------- wait idle
log "waiting up to ${TIMEOUT}s for node $NODE to become idle"
deadline=$(( $(date +%s) + TIMEOUT ))
resumed=0
while :; do
  st=$(node_state || true)
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    *drain*|down*|fail*)
      # ReturnToService=2 normally handles DOWN; DRAIN needs an explicit resume
      if [ "$resumed" -eq 0 ] && daemon_alive slurmd "$SLURMD_PID"; then
        log "node state '$st' -> scontrol update state=resume"
        timeout 10 scontrol update nodename="$NODE" state=resume 2>/dev/null || true
        resumed=1
      fi ;;
  esac
  daemon_alive slurmctld "$CTLD_PID" || die "slurmctld died"
  daemon_alive slurmd "$SLURMD_PID" || die "slurmd died"
  [ "$(date +%s)" -ge "$deadline" ] && die "node $NODE not idle after ${TIMEOUT}s (state: '${st:-?}')"
  sleep 1
done
log "node $NODE is '$st'"
timeout 10 sinfo || true

# ---------------------------------------------------------------- smoke tests
if [ "$RUN_TESTS" -eq 1 ]; then
  RUNTIME_ERR=$(mktemp)
  log "smoke test: srun -N1 hostname"
  # stdout only: srun says "queued and waiting for resources" on stderr when jobs are pending
  out=$(timeout 60 srun -N1 hostname 2>"$RUNTIME_ERR") || die "srun failed: $out $(cat "$RUNTIME_ERR")"
  [ "$out" = "$(hostname)" ] || [ "$out" = "$NODE" ] || die "srun returned unexpected output: $out"
  log "  srun ok: $out"

  log "smoke test: sbatch --wait --wrap 'echo ok'"
  tmpd=$(mktemp -d)
  if ! timeout 90 sbatch --wait -o "$tmpd/out.txt" --wrap 'echo ok' >"$tmpd/sbatch.txt" 2>&1; then
    cat "$tmpd/sbatch.txt" >&2; rm -rf "$tmpd"; die "sbatch --wait failed"
  fi
  grep -qx ok "$tmpd/out.txt" || { cat "$tmpd/out.txt" >&2; rm -rf "$tmpd"; die "sbatch job output is not 'ok'"; }
  log "  sbatch ok ($(cat "$tmpd/sbatch.txt"))"
  rm -rf "$tmpd"

  if [ "$CPUS" -ge 2 ]; then
    log "smoke test: 2 x (sbatch -c1 --mem=64) must run concurrently"
    j1=$(sbatch --parsable -c1 --mem=64 -o /dev/null --wrap 'sleep 30') || die "sbatch -c1 --mem=64 failed"
    j2=$(sbatch --parsable -c1 --mem=64 -o /dev/null --wrap 'sleep 30') || { scancel "$j1"; die "sbatch -c1 --mem=64 failed"; }
    nrun=0
    for _ in $(seq 1 40); do
      nrun=$(timeout 5 squeue -h -j "$j1,$j2" -t R -o %i 2>/dev/null | wc -l)
      [ "$nrun" -eq 2 ] && break
      sleep 0.5
    done
    timeout 10 scancel "$j1" "$j2" 2>/dev/null || true
    # leave the node idle (cancelled jobs sit in COMPLETING for up to KillWait)
    for _ in $(seq 1 30); do
      [ "$(timeout 5 squeue -h -j "$j1,$j2" -t R,CG,PD -o %i 2>/dev/null | wc -l)" -eq 0 ] && break
      sleep 0.5
    done
    [ "$nrun" -eq 2 ] || die "two 1-CPU jobs did not run concurrently (squeue: $(squeue -h -j "$j1,$j2" -o '%i %T %r' | tr '\n' ';'))"
    log "  concurrency ok (jobs $j1 $j2 ran together)"
  fi
fi

log "SLURM cluster is up: node=$NODE CPUs=$CPUS RealMemory=${REAL_MEM}M partition=debug"
