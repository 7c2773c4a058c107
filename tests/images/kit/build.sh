#!/usr/bin/env bash
# Offline image kit: build (once) the images that stand in for upstream ones on machines
# that cannot pull, and tag them under the upstream names compose files use.
#
# Usage: tests/images/kit/build.sh [NAME...]     (no NAME: every image of the kit)
#   base       Debian 13 minbase + ca-certificates, debootstrap + docker import  (base/)
#              (an image whose folder holds a file `suite`, e.g. `bookworm`, gets a base of
#              that Debian suite instead, made the same way: datalab-api needs Python 3.11;
#              a file `build-args` holds KEY=VALUE build arguments, part of the hash)
#   NAME       every other folder here with a Dockerfile (postgres, mysql, nginx, rabbitmq,
#              mongo, jupyter, ...: see docs/testing.md for what each stands in for), or
#              with a file `context` naming, relative to the repository, a build context
#              kept elsewhere in the project (alyx: the alyx_local role's image, built by
#              the role for a lab and by the kit for the tests from the same files)
#
# Every image is tagged labops/kit-NAME:<hash> and labelled org.labops.kit.hash=<hash>,
# where <hash> covers the files of its folder (except upstream-tags) and the base's hash;
# nothing is built when that tag exists. Then it is tagged labops/kit-NAME:latest and
# under each name in NAME/upstream-tags. An upstream tag that already names an image
# which is not from this kit (a real upstream image someone loaded) is left alone, with a
# warning, unless LABOPS_KIT_FORCE_TAGS=1.
#
# stdout: one line per NAME asked for:  NAME TAG... IMAGE_ID
#   (TAG... = the upstream tags set; for base, which has none, its kit tag).
# stderr: progress.  Environment: LABOPS_KIT_REPO (default labops/kit).
set -euo pipefail

kit=$(cd "$(dirname "$0")" && pwd)
images=$(dirname "$kit")
# The Debian suite of the base unless an image's folder names another in its file `suite`.
default_suite=trixie
repo=${LABOPS_KIT_REPO:-labops/kit}
# Field separator of the hash input; not a character file names here contain.
sep=$'\x1f'

log() { echo "kit: $*" >&2; }

# Names of the kit: base first, then every folder with a Dockerfile or a context file.
all_names() {
  echo base
  local d
  for d in "$kit"/*/; do
    d=${d%/}
    [ "$(basename "$d")" != base ] || continue
    if [ -f "$d/Dockerfile" ] || [ -f "$d/context" ]; then basename "$d"; fi
  done
}

# The build context of NAME: its folder, or the folder its `context` file names.
context_dir() {
  local name=$1 rel
  if [ -f "$kit/$name/context" ]; then
    rel=$(sed -n '/^[^#]/{p;q}' "$kit/$name/context")
    (cd "$images/../.." && cd "$rel" && pwd)
  else
    echo "$kit/$name"
  fi
}

# Content digest of a folder: relative path, permission bits and contents of every file
# and link target, in a fixed order. upstream-tags is not part of the image, so left out.
folder_digest() {
  (
    cd "$1"
    find . \( -type f -o -type l \) ! -name upstream-tags ! -name README.md -print0 | LC_ALL=C sort -z |
      while IFS= read -r -d '' f; do
        if [ -L "$f" ]; then
          printf '%s%sL%s%s\n' "$f" "$sep" "$sep" "$(readlink "$f")"
        else
          printf '%s%s%s%s%s\n' "$f" "$sep" "$(stat -c %a "$f")" "$sep" "$(sha256sum <"$f" | cut -c1-64)"
        fi
      done
  ) | sha256sum | cut -c1-64
}

short() { sha256sum | cut -c1-16; }

image_id() { docker image inspect -f '{{.Id}}' "$1"; }

ensure_engine() {
  docker info >/dev/null 2>&1 && return 0
  bash "$images/../scripts/ensure-engine.sh"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  log "installing debootstrap (apt)"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}

base_hash() {
  local suite=$1
  { echo "kit base suite=$suite"; folder_digest "$kit/base"; sha256sum <"$images/debian_mirror.py"; } | short
}

# The Debian suite NAME's base is made of.
suite_of() {
  local name=$1 suite=$default_suite
  if [ "$name" != base ] && [ -f "$kit/$name/suite" ]; then
    suite=$(sed -n '/^[a-z]/{p;q}' "$kit/$name/suite")
  fi
  echo "$suite"
}

# Tag under labops/kit-NAME:latest and every name of NAME/upstream-tags; prints the
# upstream tags actually set, space separated.
tag_upstream() {
  local name=$1 tag=$2 id=$3 up other applied=()
  docker tag "$tag" "$repo-$name:latest"
  [ -f "$kit/$name/upstream-tags" ] || return 0
  while read -r up _; do
    case $up in ''|'#'*) continue ;; esac
    # An image without our name label under that tag is someone's real one: keep it.
    if other=$(docker image inspect -f '{{.Id}} {{json .Config.Labels}}' "$up" 2>/dev/null) &&
       [[ $other != *'"org.labops.kit.name":'* ]] && [ "${LABOPS_KIT_FORCE_TAGS:-0}" != 1 ]; then
      log "NOT tagging $up: it names an image that is not from this kit (${other%% *});" \
          "remove that tag or set LABOPS_KIT_FORCE_TAGS=1"
      continue
    fi
    docker tag "$tag" "$up"
    applied+=("$up")
  done <"$kit/$name/upstream-tags"
  echo "${applied[*]}"
}

# build_base SUITE: make (when missing) the base of that suite; sets BASE_TAG_<suite> and
# BASE_HASH_<suite>.
build_base() {
  local suite=$1 hash tag start
  hash=$(base_hash "$suite")
  tag="$repo-base:$hash"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    ensure_debootstrap
    start=$SECONDS
    bash "$kit/base/make-image.sh" "$suite" "$(python3 "$images/debian_mirror.py")" "$tag" "$hash"
    log "built $tag in $((SECONDS - start)) s"
  else
    log "$tag exists: not rebuilt"
  fi
  [ "$suite" = "$default_suite" ] || docker tag "$tag" "$repo-base:$suite"
  printf -v "BASE_TAG_$suite" %s "$tag"
  printf -v "BASE_HASH_$suite" %s "$hash"
}

build_derived() {
  local name=$1 hash tag start ctx suite base_tag base_hash base_tag_var base_hash_var
  ctx=$(context_dir "$name")
  suite=$(suite_of "$name")
  base_tag_var="BASE_TAG_$suite" base_hash_var="BASE_HASH_$suite"
  base_tag=${!base_tag_var} base_hash=${!base_hash_var}
  hash=$({ echo "kit $name base=$base_hash"; folder_digest "$ctx"; build_args_of "$name"; } | short)
  tag="$repo-$name:$hash"
  BUILT_TAG=$tag
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag exists: not rebuilt"
    return 0
  fi
  start=$SECONDS
  log "building $tag from $ctx (base $base_tag)"
  # Without the buildx plugin the CLI can only use the classic builder.
  if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
  fi
  # Machines (and labs) behind a TLS-inspecting proxy trust extra CAs; images whose build
  # fetches over HTTPS (pip) declare ARG EXTRA_CA_CERTS and use them for that step only.
  local build_args=()
  if grep -q '^ARG EXTRA_CA_CERTS' "$ctx/Dockerfile" &&
     compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    build_args=(--build-arg "EXTRA_CA_CERTS=$(cat /usr/local/share/ca-certificates/*.crt)")
  fi
  local arg
  while IFS= read -r arg; do build_args+=(--build-arg "$arg"); done < <(build_args_of "$name")
  docker build "${build_args[@]}" \
    --build-arg "BASE=$base_tag" \
    --label "org.labops.kit.name=$name" \
    --label "org.labops.kit.hash=$hash" \
    --label "org.labops.kit.base=$base_tag" \
    --tag "$tag" "$ctx" >&2
  log "built $tag in $((SECONDS - start)) s"
}

# The KEY=VALUE lines of NAME's file `build-args` (none when it has none).
build_args_of() {
  [ -f "$kit/$1/build-args" ] || return 0
  sed -n '/^[A-Za-z_][A-Za-z0-9_]*=/p' "$kit/$1/build-args"
}

# build_one NAME: build (when missing) and tag one derived image; prints its stdout line.
build_one() {
  local name=$1 id tags
  build_derived "$name"
  id=$(image_id "$BUILT_TAG")
  tags=$(tag_upstream "$name" "$BUILT_TAG" "$id")
  echo "$name ${tags:+$tags }$id"
}

main() {
  local names=("$@") name jobs out pids=() failed=0 i base_tag_var
  [ ${#names[@]} -gt 0 ] || mapfile -t names < <(all_names)
  for name in "${names[@]}"; do
    if [ "$name" != base ] && [ ! -f "$kit/$name/Dockerfile" ] && [ ! -f "$kit/$name/context" ]; then
      log "unknown image '$name' (known: $(all_names | tr '\n' ' '))"
      exit 2
    fi
  done

  ensure_engine
  # Two builds of the same image at once (several people share these machines) would
  # both bootstrap; the second waits and then finds the image.
  exec 9>"${TMPDIR:-/tmp}/labops-kit-build.lock"
  flock -w 3600 9 || { log "another kit build holds the lock for an hour; giving up"; exit 1; }

  # Every base the asked images need, one after the other (each is a debootstrap).
  local suites
  suites=$(for name in "${names[@]}"; do suite_of "$name"; done | sort -u)
  for suite in $suites; do build_base "$suite"; done
  # Derived images only share the base, so they build side by side, LABOPS_JOBS (default 2)
  # at a time: their builds wait on apt and pip downloads as much as on the CPU. Each one's
  # stdout line is kept and printed in the order asked.
  jobs=${LABOPS_JOBS:-2}
  out=$(mktemp -d)
  for i in "${!names[@]}"; do
    name=${names[$i]}
    if [ "$name" = base ]; then
      base_tag_var="BASE_TAG_$default_suite"
      docker tag "${!base_tag_var}" "$repo-base:latest"
      echo "base ${!base_tag_var} $(image_id "${!base_tag_var}")" >"$out/$i"
      continue
    fi
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
    build_one "$name" >"$out/$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  for i in "${!names[@]}"; do cat "$out/$i" 2>/dev/null || true; done
  rm -rf "$out"
  [ "$failed" = 0 ] || { log "some images failed to build (see above)"; exit 1; }
}

main "$@"
