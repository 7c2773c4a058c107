#!/usr/bin/env bash
# Run several test commands side by side, at most LABOPS_JOBS (default 2) at a time, each
# with its output kept in its own file and printed whole when it ends (so lines of two
# runs never interleave). Exit 1 when any failed, after all have run, naming them.
#
# Usage: tests/scripts/parallel.sh LABEL -- CMD ARG... ::: ITEM...
#   runs `CMD ARG... ITEM` for every ITEM, in the order given (put the longest first).
# Example: tests/scripts/parallel.sh molecule -- bash tests/scripts/molecule-scenario.sh ::: backup docker
set -uo pipefail

label=$1; shift
[ "${1:-}" = "--" ] || { echo "usage: $0 LABEL -- CMD ARG... ::: ITEM..." >&2; exit 2; }
shift
cmd=()
while [ $# -gt 0 ] && [ "$1" != ":::" ]; do cmd+=("$1"); shift; done
[ "${1:-}" = ":::" ] || { echo "usage: $0 LABEL -- CMD ARG... ::: ITEM..." >&2; exit 2; }
shift
items=("$@")
jobs=${LABOPS_JOBS:-2}
outdir=${LABOPS_LOG_DIR:-.build/logs}/parallel-$label
rm -rf "$outdir"; mkdir -p "$outdir"

declare -A pid_item=()
failed=()
start_all=$SECONDS

finish_one() {
  # Wait for any one running job, print its output, record a failure.
  local done_pid rc item key
  wait -n -p done_pid; rc=$?
  item=${pid_item[$done_pid]}
  unset "pid_item[$done_pid]"
  key=${item##*/}
  cat "$outdir/$key.out"
  if [ "$rc" -ne 0 ]; then
    failed+=("$item")
    echo "== $label $item: FAILED (exit $rc)"
  else
    echo "== $label $item: passed in $(cat "$outdir/$key.time")s"
  fi
}

for item in "${items[@]}"; do
  while [ "${#pid_item[@]}" -ge "$jobs" ]; do finish_one; done
  echo "== $label $item: started"
  key=${item##*/}
  (
    t0=$SECONDS
    "${cmd[@]}" "$item" >"$outdir/$key.out" 2>&1; rc=$?
    echo $((SECONDS - t0)) >"$outdir/$key.time"
    exit "$rc"
  ) &
  pid_item[$!]=$item
done
while [ "${#pid_item[@]}" -gt 0 ]; do finish_one; done

echo "== $label: ${#items[@]} run(s), ${jobs} at a time, $((SECONDS - start_all))s wall"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "== $label: FAILED: ${failed[*]}"
  exit 1
fi
