#!/usr/bin/env bash
# Snakemake's status command for PBS Pro: print running, success or failed for job id $1.
set -u
info=$(qstat -xf "$1" 2>/dev/null) || { echo running; exit 0; }  # a hiccup: ask again later
state=$(awk -F' = ' '/job_state/ {print $2}' <<<"$info")
if [ "$state" != F ]; then echo running; exit 0; fi
code=$(awk -F' = ' '/Exit_status/ {print $2}' <<<"$info")
if [ "${code:-1}" = 0 ]; then echo success; else echo failed; fi
