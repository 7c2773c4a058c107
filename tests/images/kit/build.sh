#!/usr/bin/env bash
# Offline image kit: build (once) the images that stand in for upstream ones on machines
# that cannot pull, and tag them under the upstream names compose files use.
#
# Usage: tests/images/kit/build.sh [NAME...]     (no NAME: every image of the kit)
#   base       Debian 13 minbase + ca-certificates, debootstrap + docker import  (base/)
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
suite=trixie
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
  { echo "kit base suite=$suite"; folder_digest "$kit/base"; sha256sum <"$images/debian_mirror.py"; } | short
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

build_base() {
  local hash tag start
  hash=$(base_hash)
  tag="$repo-base:$hash"
  if ! docker image inspect "$tag" >/dev/null 2>&1; then
    ensure_debootstrap
    start=$SECONDS
    bash "$kit/base/make-image.sh" "$suite" "$(python3 "$images/debian_mirror.py")" "$tag" "$hash"
    log "built $tag in $((SECONDS - start)) s"
  else
    log "$tag exists: not rebuilt"
  fi
  BASE_TAG=$tag BASE_HASH=$hash
}

build_derived() {
  local name=$1 hash tag start ctx
  ctx=$(context_dir "$name")
  hash=$({ echo "kit $name base=$BASE_HASH"; folder_digest "$ctx"; } | short)
  tag="$repo-$name:$hash"
  BUILT_TAG=$tag
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag exists: not rebuilt"
    return 0
  fi
  start=$SECONDS
  log "building $tag from $ctx (base $BASE_TAG)"
  # Without the buildx plugin the CLI can only use the classic builder.
  if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
  fi
  # Machines (and labs) behind a TLS-inspecting proxy trust extra CAs; images whose build
  # fetches over HTTPS (pip) declare ARG EXTRA_CA_CERTS and use them for that step only.
  local ca_args=()
  if grep -q '^ARG EXTRA_CA_CERTS' "$ctx/Dockerfile" &&
     compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    ca_args=(--build-arg "EXTRA_CA_CERTS=$(cat /usr/local/share/ca-certificates/*.crt)")
  fi
  docker build "${ca_args[@]}" \
    --build-arg "BASE=$BASE_TAG" \
    --label "org.labops.kit.name=$name" \
    --label "org.labops.kit.hash=$hash" \
    --label "org.labops.kit.base=$BASE_TAG" \
    --tag "$tag" "$ctx" >&2
  log "built $tag in $((SECONDS - start)) s"
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
  local names=("$@") name jobs out pids=() failed=0 i
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

  build_base
  # Derived images only share the base, so they build side by side, LABOPS_JOBS (default 2)
  # at a time: their builds wait on apt and pip downloads as much as on the CPU. Each one's
  # stdout line is kept and printed in the order asked.
  jobs=${LABOPS_JOBS:-2}
  out=$(mktemp -d)
  for i in "${!names[@]}"; do
    name=${names[$i]}
    if [ "$name" = base ]; then
      docker tag "$BASE_TAG" "$repo-base:latest"
      echo "base $BASE_TAG $(image_id "$BASE_TAG")" >"$out/$i"
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
