# Shared harness of the kit's image tests (tests/images/kit/test_*_image.sh), sourced:
#
#   . "$(dirname "$0")/lib.sh"
#   kit_begin postgres "${1:-}"     # sets: kit, image, run_id, label, work; a network "$run_id"
#   check "description" command...  # PASS when the command succeeds
#   check_eq "description" expected command...
#   check_eq_within SECONDS "description" expected command...   # for values that settle
#   check_stop CONTAINER "how it stops" [any [LABEL]]            # docker stop within 10 s
#   relay_results "client" "$output"                             # PASS/FAIL lines of a client
#   kit_end                         # prints the summary; exit status 0 only if all passed
#
# Everything a test creates carries "$label" and is removed at exit (containers with their
# anonymous volumes, named volumes, the network, the temp folder), even on Ctrl-C.
# shellcheck shell=bash

kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run_id=labops-kit-test-$$
label="org.labops.kit.test=$run_id"
work=$(mktemp -d "${TMPDIR:-/tmp}/$run_id.XXXXXX")
failures=0 checks=0
t0=$SECONDS

say() { printf '%s\n' "$*" >&2; }
pass() { checks=$((checks + 1)); say "PASS  [$((SECONDS - t0))s] $1"; }
fail() {
  checks=$((checks + 1)); failures=$((failures + 1))
  say "FAIL  [$((SECONDS - t0))s] $1"
  [ -z "${2:-}" ] || say "      $2"
}
# check DESCRIPTION COMMAND...: pass when COMMAND succeeds.
check() {
  local d=$1 out; shift
  if out=$("$@" 2>&1); then pass "$d"; else fail "$d" "$(tail -n 5 <<<"$out")"; fi
}
# check_eq DESCRIPTION EXPECTED COMMAND...: pass when COMMAND prints EXPECTED.
check_eq() {
  local d=$1 want=$2 got; shift 2
  if got=$("$@" 2>&1) && [ "$got" = "$want" ]; then pass "$d"
  else fail "$d" "expected [$want], got [$(tail -n 5 <<<"$got")]"; fi
}
# check_eq_within SECONDS DESCRIPTION EXPECTED COMMAND...: like check_eq, for a value that is
# only eventually right (a server's periodic statistics): retried once a second until SECONDS.
check_eq_within() {
  local limit=$1 d=$2 want=$3 got end; shift 3
  end=$((SECONDS + limit))
  while :; do
    if got=$("$@" 2>&1) && [ "$got" = "$want" ]; then pass "$d"; return; fi
    [ "$SECONDS" -lt "$end" ] || break
    sleep 1
  done
  fail "$d" "expected [$want] within ${limit}s, got [$(tail -n 5 <<<"$got")]"
}

# check_stop CONTAINER WHY [any]: `docker stop -t 10` must end CONTAINER within 10 s with exit
# code 0 (with `any`: any code but 137, which is SIGKILL after the timeout). WHY says how.
check_stop() {
  local c=$1 why=$2 want=${3:-0} start ms code
  start=$(date +%s%N)
  docker stop -t 10 "$c" >/dev/null
  ms=$((($(date +%s%N) - start) / 1000000))
  code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
  if [ "$ms" -lt 10000 ] && { [ "$code" = "$want" ] || { [ "$want" = any ] && [ "$code" != 137 ]; }; }; then
    pass "docker stop${4:+ ($4)}: exit code $code after ${ms} ms ($why)"
  else
    fail "docker stop${4:+ ($4)}: exit code ${want/any/not 137} within 10 s" "exit code $code after ${ms} ms"
  fi
}

# relay_results WHAT OUTPUT: a client run inside a container printed "PASS ..." / "FAIL ..."
# lines; count each as a check, and fail "WHAT ran" when it printed none.
relay_results() {
  local line
  while IFS= read -r line; do
    case $line in
      'PASS '*) pass "${line#PASS }" ;;
      'FAIL '*) fail "${line#FAIL }" ;;
    esac
  done <<<"$2"
  grep -qE '^(PASS|FAIL) ' <<<"$2" || fail "$1 ran" "$(tail -n 5 <<<"$2")"
}

kit_cleanup() {
  local ids=()
  mapfile -t ids < <(docker ps -aq --filter "label=$label")
  [ ${#ids[@]} -eq 0 ] || docker rm -fv "${ids[@]}" >/dev/null 2>&1 || true
  mapfile -t ids < <(docker volume ls -q --filter "label=$label")
  [ ${#ids[@]} -eq 0 ] || docker volume rm -f "${ids[@]}" >/dev/null 2>&1 || true
  docker network rm "$run_id" >/dev/null 2>&1 || true
  rm -rf "$work"
}

# kit_begin NAME [IMAGE]: the image under test (built by build.sh when not given), a
# labelled network named "$run_id", and the clean-up traps.
kit_begin() {
  local name=$1
  image=${2:-}
  trap kit_cleanup EXIT
  trap 'exit 130' INT TERM
  if [ -z "$image" ]; then
    image=$(bash "$kit/build.sh" "$name" | awk -v n="$name" '$1 == n { print $NF }')
  fi
  docker image inspect "$image" >/dev/null
  say "testing image $image"
  docker network create --label "$label" "$run_id" >/dev/null
}

# volume NAME: a labelled named volume; prints its name.
volume() { docker volume create --label "$label" "$run_id-$1" >/dev/null; echo "$run_id-$1"; }

kit_end() {
  say ""
  say "$((checks - failures))/$checks checks passed in $((SECONDS - t0)) s"
  [ "$failures" -eq 0 ]
}

# wait_healthy NAME [SECONDS]: bounded wait until Docker reports the container healthy;
# fails early (with its last log lines) when it stopped.
wait_healthy() {
  local c=$run_id-$1 limit=${2:-90} start=$SECONDS status
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    status=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$c")
    case $status in
      'running healthy') return 0 ;;
      running*) sleep 0.5 ;;
      *) docker logs --tail 20 "$c" >&2; return 1 ;;
    esac
  done
  docker logs --tail 20 "$c" >&2
  return 1
}

# wait_exit NAME SECONDS: print the container's exit code once it stopped by itself, or
# "still running after Ns".
wait_exit() {
  local c=$run_id-$1 limit=$2 start=$SECONDS
  while [ $((SECONDS - start)) -lt "$limit" ]; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$c")" = false ]; then
      docker inspect -f '{{.State.ExitCode}}' "$c"
      return 0
    fi
    sleep 0.5
  done
  echo "still running after ${limit}s"
}
