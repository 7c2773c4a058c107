#!/usr/bin/env bash
# Run one Molecule scenario the way CI does: create, prepare, converge, idempotence
# (changed=0), check mode on the converged host (changed=0, which `molecule check` alone does
# not assert), verify; destroy always, and remove the host's /var/lib/docker volume.
# Usage: tests/scripts/molecule-scenario.sh SCENARIO
set -uo pipefail
scenario=$1
logdir=${LABOPS_LOG_DIR:-.build/logs}
export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1 ANSIBLE_NOCOLOR=1
# Every run at -v, so that a secret leaking into task results shows up in the log.
export ANSIBLE_VERBOSITY=${ANSIBLE_VERBOSITY:-1}
mkdir -p "$logdir"
# The docker scenario proves Docker's installation on the bare test host; every other scenario
# starts from the host with Debian's Docker packages preinstalled (the docker role, run in their
# prepare step, then only configures and starts it).
if [ "$scenario" != docker ] && [ -n "${LABOPS_TESTHOST_DOCKER_IMAGE:-}" ]; then
  export LABOPS_TESTHOST_IMAGE=$LABOPS_TESTHOST_DOCKER_IMAGE
fi
log="$logdir/molecule-$scenario.log"

cleanup() {
  molecule destroy -s "$scenario" >>"$log" 2>&1 || true
  docker volume rm -f "labops-$scenario-docker" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step() {
  local name=$1; shift
  local start=$SECONDS
  if "$@" >>"$log" 2>&1; then
    printf '  %-28s ok   %4ss\n' "$scenario $name" $((SECONDS - start))
  else
    printf '  %-28s FAIL %4ss (log: %s)\n' "$scenario $name" $((SECONDS - start)) "$log"
    tail -n 60 "$log"
    exit 1
  fi
}

recap_unchanged() {
  # The last PLAY RECAP of the log must show changed=0 and failed=0 on every host.
  local recap
  recap=$(awk '/PLAY RECAP/{buf=""} /ok=[0-9]+ +changed=/{buf=buf $0 "\n"} END{printf "%s", buf}' "$log")
  [ -n "$recap" ] || { echo "no PLAY RECAP found" >>"$log"; return 1; }
  if grep -Eq 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' <<<"$recap"; then
    echo "check mode is not clean:" >>"$log"; echo "$recap" >>"$log"; return 1
  fi
}

: >"$log"
# A host left by an interrupted run would make `create` reuse stale state: remove it first
# (faster than `molecule destroy`, which needs molecule's own state to know it), and forget
# molecule's record of it (its ephemeral folder), so `create` really creates. Not
# `molecule reset`: the docker driver's reset ignores -s and stops and prunes EVERY
# molecule container on the machine, which kills the scenarios running alongside.
docker rm -f "labops-$scenario" >/dev/null 2>&1 || true
docker volume rm -f "labops-$scenario-docker" >/dev/null 2>&1 || true
rm -rf "${ANSIBLE_HOME:-$HOME/.ansible}"/tmp/molecule.*."$scenario"
# Secrets a scenario generates (ansible.builtin.password lookups, as inventories/lab does) go to
# this folder: a fresh set per run, and every value is looked for in the output below.
secrets_dir=.build/secrets/$scenario
rm -rf "$secrets_dir"

in_sequence() {
  # A scenario whose molecule.yml lists a test_sequence without STEP proves it otherwise (the
  # site scenario's second run is AWX's "deploy all" job in verify).
  python3 - "molecule/$scenario/molecule.yml" "$1" <<'PY'
import sys, yaml
sequence = (yaml.safe_load(open(sys.argv[1])).get("scenario") or {}).get("test_sequence")
sys.exit(0 if sequence is None or sys.argv[2] in sequence else 1)
PY
}

step create    molecule create -s "$scenario"
step prepare   molecule prepare -s "$scenario"
step converge  molecule converge -s "$scenario"
if in_sequence idempotence; then
  step idempotence molecule idempotence -s "$scenario"
fi
step check     molecule converge -s "$scenario" -- --check
step check-clean recap_unchanged
step verify    molecule verify -s "$scenario"

no_secret_in_log() {
  # Test secrets all contain this marker; Ansible must never print one (no_log, redaction).
  if grep -n 'labops-test-secret' "$log" >"$log.secrets"; then
    echo "a test secret reached Ansible's output:" >>"$log"; cat "$log.secrets" >>"$log"; return 1
  fi
  # And none of the values the run generated (ansible.builtin.password's files: the value, then
  # " salt=..." when it was asked to encrypt).
  local file value
  for file in "$secrets_dir"/*; do
    [ -f "$file" ] || continue
    value=$(<"$file"); value=${value%% *}
    if [ -n "$value" ] && grep -qF -- "$value" "$log"; then
      echo "the generated secret in $file reached Ansible's output (the value is not repeated here)" >>"$log"
      return 1
    fi
  done
}
step no-secret-in-output no_secret_in_log
