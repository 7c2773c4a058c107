#!/bin/sh
# labops kit nginx stand-in: with NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE set, set
# worker_processes in nginx.conf to the CPUs this container may use: the CPUs it may run
# on (nproc: affinity and cpuset), lowered to the CPU quota of its cgroup (v2 cpu.max or
# v1 cfs quota) when there is one. `auto` would count every CPU of the host.
set -eu

me=$(basename "$0")
log() { [ -n "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ] || echo "$me: $*"; }

[ -n "${NGINX_ENTRYPOINT_WORKER_PROCESSES_AUTOTUNE:-}" ] || exit 0
conf=/etc/nginx/nginx.conf
touch "$conf" 2>/dev/null || { log "info: can not modify $conf (read-only file system?)"; exit 0; }

ncpu=$(nproc)
quota='' period=''
if [ -r /sys/fs/cgroup/cpu.max ]; then
  read -r quota period </sys/fs/cgroup/cpu.max
  [ "$quota" != max ] || quota=''
elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -r /sys/fs/cgroup/cpu/cpu.cfs_period_us ]; then
  quota=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)
  period=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
  [ "$quota" -gt 0 ] || quota=''
fi
if [ -n "$quota" ] && [ "${period:-0}" -gt 0 ]; then
  by_quota=$(( (quota + period - 1) / period ))
  [ "$by_quota" -ge "$ncpu" ] || ncpu=$by_quota
fi
[ "$ncpu" -ge 1 ] || ncpu=1
sed -i -E "s/^([[:space:]]*worker_processes[[:space:]]+)[^;]*;/\\1$ncpu;/" "$conf"
log "info: worker_processes set to $ncpu in $conf"
