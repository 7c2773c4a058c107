"""alyx-local's settings hook, filled from the environment.

alyx.base.settings (alyx-local 3.1.8) does `sys.path.append("/app/extra_configuration")`
then `from custom_settings import *` before anything else, and alyx.misc.models imports
DEFAULT_LAB_NAME and TIME_ZONE from it: upstream renders this file from a template at
install time (see alyx/ressources/docker/django_server/custom_settings.py in the wheel);
this image reads the same names from the environment instead (labops_alyx_env).
"""

import os as _os
import socket as _socket

import labops_alyx_env as _env

DEBUG = _env.debug(_os.environ)
TIME_ZONE = _env.time_zone(_os.environ)
DEFAULT_LAB_NAME = _os.environ.get("ALYX_DEFAULT_LAB_NAME") or "defaultlab"
# The start scripts refuse to run without a key; build-time steps (collectstatic) and
# `alyx-manage help` do not need one.
SECRET_KEY = _env.secret_key(_os.environ, required=False)
ALLOWED_HOSTS = _env.allowed_hosts(_os.environ)
CSRF_TRUSTED_ORIGINS = _env.csrf_trusted_origins(_os.environ)
NARRATIVE_TEMPLATES = {}
DBBACKUP_HOSTNAME = _os.environ.get("DB_BACKUP_HOSTNAME") or _socket.gethostname()
# Upstream's start-up `auto_restore` may run `dbrestore` over the live database when this is
# true; this image never calls auto_restore and keeps the switch off.
AUTO_RESTORE_ON_STARTUP = False
