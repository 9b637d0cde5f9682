#!/usr/bin/env bash
# Snakemake's status command for LSF: print running, success or failed for job id $1.
set -u
state=$(bjobs -noheader -o stat "$1" 2>/dev/null) || { echo running; exit 0; }
case "$state" in
  DONE) echo success ;;
  EXIT) echo failed ;;
  *) echo running ;;  # PEND, RUN, SSUSP, ... (and a hiccup: ask again later)
esac
