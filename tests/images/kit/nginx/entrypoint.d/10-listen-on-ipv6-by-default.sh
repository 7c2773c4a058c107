#!/bin/sh
# labops kit nginx stand-in: add an IPv6 listen line to the default site, as the upstream
# image does, when the kernel has IPv6 and /etc/nginx/conf.d/default.conf is still the
# image's own file (a changed or mounted file is left alone).
set -eu

me=$(basename "$0")
log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$me: $*"; }

conf=/etc/nginx/conf.d/default.conf
sum=/usr/local/share/labops-kit/default.conf.sha256

[ -f /proc/net/if_inet6 ] || { log "info: ipv6 not available"; exit 0; }
[ -f "$conf" ] || { log "info: $conf is not a file or does not exist"; exit 0; }
touch "$conf" 2>/dev/null || { log "info: can not modify $conf (read-only file system?)"; exit 0; }
if grep -q 'listen *\[::\]:80;' "$conf"; then
  log "info: IPv6 listen already enabled"
  exit 0
fi
sha256sum --check --status "$sum" 2>/dev/null || {
  log "info: $conf differs from the image's version, left as it is"
  exit 0
}
sed -i 's/^\( *\)listen  *80;$/&\n\1listen       [::]:80;/' "$conf"
log "info: Enabled listen on IPv6 in $conf"
