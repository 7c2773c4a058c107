#!/usr/bin/env bash
set -e
. "$(dirname "$0")/tools.sh"
user=$(get_user_of_results)
touch /var/vidjil/vidjil.log /var/vidjil/vidjil-debug.log
chown -R "$user" /var/vidjil/vidjil* /usr/share/vidjil/server/web2py/applications/vidjil/databases
exec /usr/local/bin/gosu "$user" /usr/bin/uwsgi --ini /etc/uwsgi/apps-enabled/web2py.ini
