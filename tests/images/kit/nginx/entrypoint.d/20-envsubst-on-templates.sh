#!/usr/bin/env bash
# labops kit nginx stand-in: render the templates of the upstream image's contract.
#   $NGINX_ENVSUBST_TEMPLATE_DIR (default /etc/nginx/templates)/**/*$NGINX_ENVSUBST_TEMPLATE_SUFFIX
#   (default .template) -> $NGINX_ENVSUBST_OUTPUT_DIR (default /etc/nginx/conf.d)/**/* without
#   the suffix; *$NGINX_ENVSUBST_STREAM_TEMPLATE_SUFFIX (default .stream-template) ->
#   $NGINX_ENVSUBST_STREAM_OUTPUT_DIR (default /etc/nginx/stream-conf.d), with a
#   `stream { include ...; }` block appended to nginx.conf when it has none.
# Only ${NAME} and $NAME of variables set in the environment are replaced (names matching
# the extended regex NGINX_ENVSUBST_FILTER, when set); nginx's own variables ($host,
# $remote_addr, ...) and unset names stay as written.
set -euo pipefail

me=$(basename "$0")
log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$me: $*"; }

template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
stream_suffix=${NGINX_ENVSUBST_STREAM_TEMPLATE_SUFFIX:-.stream-template}
stream_output_dir=${NGINX_ENVSUBST_STREAM_OUTPUT_DIR:-/etc/nginx/stream-conf.d}
filter=${NGINX_ENVSUBST_FILTER:-}
main_conf=/etc/nginx/nginx.conf

[ -d "$template_dir" ] || exit 0

# The variables envsubst may replace: every exported name (bash's own `_` aside).
defined=''
while IFS= read -r name; do
  [ "$name" != _ ] || continue
  [[ $name =~ $filter ]] && defined+="\${$name} "
done < <(compgen -e)

# render SUFFIX OUTPUT_DIR
render() {
  local suffix=$1 out_dir=$2 template relative out
  while IFS= read -r -d '' template; do
    relative=${template#"$template_dir/"}
    out="$out_dir/${relative%"$suffix"}"
    mkdir -p "$(dirname "$out")"
    log "Running envsubst on $template to $out"
    envsubst "$defined" <"$template" >"$out"
  done < <(find -L "$template_dir" -type f -name "*$suffix" -print0 | LC_ALL=C sort -z)
}

if [ ! -w "$output_dir" ]; then
  log "ERROR: $template_dir exists, but $output_dir is not writable"
  exit 0
fi
render "$suffix" "$output_dir"

if [ -n "$(find -L "$template_dir" -type f -name "*$stream_suffix" -print -quit)" ]; then
  mkdir -p "$stream_output_dir" 2>/dev/null || true
  if [ ! -w "$stream_output_dir" ]; then
    log "ERROR: $template_dir exists, but $stream_output_dir is not writable"
    exit 0
  fi
  if grep -Eq '^[[:space:]]*stream[[:space:]]*\{' "$main_conf"; then
    log "$main_conf has a stream block; include $stream_output_dir/*.conf in it to use the stream templates"
  elif touch "$main_conf" 2>/dev/null; then
    log "Appending a stream block to $main_conf that includes $stream_output_dir/*.conf"
    printf '\n# added by %s (labops kit) for the stream templates\nstream {\n    include %s/*.conf;\n}\n' \
      "$me" "$stream_output_dir" >>"$main_conf"
  else
    log "info: can not modify $main_conf (read-only file system?)"
    exit 0
  fi
  render "$stream_suffix" "$stream_output_dir"
fi
