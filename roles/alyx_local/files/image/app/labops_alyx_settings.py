"""DJANGO_SETTINGS_MODULE of the image: alyx-local's own settings, then the database from
the environment (labops_alyx_env) instead of upstream's fixed `db`/`postgres`/`alyx`.

alyx.base.settings itself is imported unchanged. When it runs in a container (/.dockerenv
exists) it reads POSTGRES_PASSWORD_FILE and fails without it; the IBL contract gives the
password as PGPASSWORD instead, so for that import only an empty placeholder file is named
when POSTGRES_PASSWORD_FILE is unset. The real DATABASES entry is set below.
"""

import os

import labops_alyx_env as _env

_PLACEHOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "no-password-file")
_named_placeholder = not os.environ.get("POSTGRES_PASSWORD_FILE")
if _named_placeholder:
    os.environ["POSTGRES_PASSWORD_FILE"] = _PLACEHOLDER
try:  # upstream's settings module, unchanged: every name it defines
    from alyx.base.settings import *  # noqa: F401,F403 pylint: disable=wildcard-import,unused-wildcard-import
finally:
    if _named_placeholder:
        del os.environ["POSTGRES_PASSWORD_FILE"]

# A missing password only fails where the database is used (migrate, the server), so that
# `collectstatic` at build time and `alyx-manage help` work without one.
DATABASES = {"default": _env.database(os.environ, require_password=False)}

# Upstream names django_redis, which alyx-local does not install and nothing in it uses;
# a process-local cache keeps `caches["default"]` importable.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# alyx-local's URLs plus cortex-lab/alyx's `/auth-token` (where ONE clients ask).
ROOT_URLCONF = "labops_alyx_urls"

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (nginx of the alyx_local
# role, the shared reverse proxy): only when the lab says every request comes through it.
if _env.flag(os.environ.get("ALYX_TRUST_X_FORWARDED_PROTO", "off"), "ALYX_TRUST_X_FORWARDED_PROTO"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
