#!/usr/bin/env bash
# Stop the single-node CI SLURM cluster started by .ci/slurm_up.sh.
# Usage (as root): .ci/slurm_down.sh [--quiet] [--munge]
#   --munge   also stop munged (default: leave it running)
# Cancels all jobs, then stops slurmd and slurmctld. Safe to run repeatedly.
set -uo pipefail

QUIET=0
STOP_MUNGE=0
for arg in "$@"; do
  case "$arg" in
    --quiet) QUIET=1 ;;
    --munge) STOP_MUNGE=1 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "slurm_down: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
log() { [ "$QUIET" -eq 1 ] || echo "[slurm_down] $*"; }

CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

# pids of a daemon: from its pid file and by exact process name
daemon_pids() { # $1 = name, $2 = pidfile
  { [ -f "$2" ] && cat "$2" 2>/dev/null; pgrep -x "$1" 2>/dev/null; } | sort -u | while read -r p; do
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
  done
}

stop_daemon() { # $1 = name, $2 = pidfile
  local pids
  pids=$(daemon_pids "$1" "$2" | tr '\n' ' ')
  if [ -z "${pids// /}" ]; then log "$1 not running"; rm -f "$2"; return 0; fi
  log "stopping $1 (pid $pids)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 30); do
    [ -z "$(daemon_pids "$1" "$2")" ] && break
    sleep 0.5
  done
  pids=$(daemon_pids "$1" "$2" | tr '\n' ' ')
  if [ -n "${pids// /}" ]; then
    log "$1 still alive after 15 s, sending SIGKILL ($pids)"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
  fi
  rm -f "$2"
}

if command -v scancel >/dev/null 2>&1 && [ -n "$(daemon_pids slurmctld "$CTLD_PID")" ]; then
  if timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
    njobs=$(timeout 10 squeue -h -o %i 2>/dev/null | wc -l)
    if [ "${njobs:-0}" -gt 0 ]; then
      log "cancelling $njobs job(s)"
      # shellcheck disable=SC2046
      timeout 10 scancel --quiet $(timeout 10 squeue -h -o %i 2>/dev/null) 2>/dev/null || true
      # give slurmd a moment to kill the job steps (KillWait is small)
      for _ in $(seq 1 20); do
        [ "$(timeout 5 squeue -h -t R,CG,PD -o %i 2>/dev/null | wc -l)" -eq 0 ] && break
        sleep 0.5
      done
    fi
  fi
fi

stop_daemon slurmd "$SLURMD_PID"
stop_daemon slurmctld "$CTLD_PID"
# leftover job step daemons
for p in $(pgrep -x slurmstepd 2>/dev/null); do
  log "killing leftover slurmstepd $p"; kill -KILL "$p" 2>/dev/null || true
done

if [ "$STOP_MUNGE" -eq 1 ]; then
  stop_daemon munged /run/munge/munged.pid
fi
log "done"
