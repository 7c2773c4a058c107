#!/usr/bin/env bash
set -e
spawn-fcgi -u www-data -s /var/run/fcgiwrap.socket /usr/sbin/fcgiwrap
exec nginx -g 'daemon off;'
