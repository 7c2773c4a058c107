"""Read the container's environment into Alyx settings values (no Django import).

Shared by custom_settings.py (alyx-local's own settings hook), labops_alyx_settings.py
(the DJANGO_SETTINGS_MODULE of the image) and alyx-check-server, so the Django app, the
healthcheck and the start scripts agree on one reading of the environment.

Two upstream contracts are honoured, first match wins:
- IBL (iblalyx local-alyx-docker, `internationalbrainlab/alyx_apache`): PGHOST PGPORT
  PGUSER PGPASSWORD PGDATABASE PGREADONLY DJANGO_SECRET_KEY (and cortex-lab/alyx
  deploy/app's POSTGRES_HOST/_PORT/_USER/_PASSWORD/_DB, DJANGO_ALLOWED_HOSTS,
  APACHE_SERVER_NAME, DJANGO_DEBUG);
- alyx-local (docker branch): POSTGRES_PASSWORD_FILE (host `db`, user `postgres`,
  database `alyx` unless POSTGRES_HOST/_USER/_DB say otherwise), SECRET_KEY,
  ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, DEBUG, TIME_ZONE.
"""

import re

TRUE = ("1", "true", "t", "yes", "y", "on")
FALSE = ("0", "false", "f", "no", "n", "off", "")
# Always answered, whatever the lab configures: the image's own healthcheck and
# `docker compose exec` checks reach the server as localhost.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class ConfigError(ValueError):
    """The environment does not describe a usable configuration."""


def _first(env, *names, default=None):
    for name in names:
        value = env.get(name)
        if value not in (None, ""):
            return value
    return default


def read_secret_file(path):
    """Contents of a secret file, trailing newlines dropped (as the postgres image does);
    every other character, spaces included, belongs to the secret."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")
    except OSError as err:
        raise ConfigError(f"cannot read secret file {path}: {err.strerror}") from err


def _secret(env, names, file_names):
    value = _first(env, *names)
    if value is not None:
        return value
    path = _first(env, *file_names)
    if path is not None:
        return read_secret_file(path)
    return None


def flag(value, name="value"):
    """'on'/'true'/'1'... -> True, 'off'/'false'/'0'/''... -> False."""
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is neither on nor off")


def split_list(value):
    """'a,b c' -> ['a', 'b', 'c'] (commas and/or whitespace separate)."""
    return [item for item in re.split(r"[,\s]+", value or "") if item]


def db_password(env):
    return _secret(env, ("PGPASSWORD", "POSTGRES_PASSWORD"), ("POSTGRES_PASSWORD_FILE", "PGPASSWORD_FILE"))


def database(env, require_password=True):
    """The Django DATABASES['default'] entry the environment describes."""
    options = {}
    readonly = env.get("PGREADONLY")
    if readonly not in (None, ""):
        # iblalyx's settings_secret template: -c default_transaction_read_only=%PGREADONLY%
        state = "on" if flag(readonly, "PGREADONLY") else "off"
        options["options"] = f"-c default_transaction_read_only={state}"
    password = db_password(env)
    if password is None:
        if require_password:
            raise ConfigError(
                "no database password: set PGPASSWORD (IBL), POSTGRES_PASSWORD or "
                "POSTGRES_PASSWORD_FILE (alyx-local)"
            )
        password = ""
    port = _first(env, "PGPORT", "POSTGRES_PORT", default="5432")
    if not str(port).isdigit():
        raise ConfigError(f"database port {port!r} is not a number")
    entry = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _first(env, "PGDATABASE", "POSTGRES_DB", default="alyx"),
        "USER": _first(env, "PGUSER", "POSTGRES_USER", default="postgres"),
        "PASSWORD": password,
        "HOST": _first(env, "PGHOST", "POSTGRES_HOST", default="db"),
        "PORT": str(port),
    }
    if options:
        entry["OPTIONS"] = options
    return entry


def secret_key(env, required=True):
    value = _secret(
        env, ("DJANGO_SECRET_KEY", "SECRET_KEY"), ("DJANGO_SECRET_KEY_FILE", "SECRET_KEY_FILE")
    )
    if value is None and required:
        raise ConfigError("no Django secret key: set DJANGO_SECRET_KEY or SECRET_KEY (or *_FILE)")
    return value or ""


def allowed_hosts(env):
    hosts = split_list(env.get("ALLOWED_HOSTS")) + split_list(env.get("DJANGO_ALLOWED_HOSTS"))
    # cortex-lab/alyx deploy/app: APACHE_SERVER_NAME; iblalyx local-alyx-docker: ALYX_NETWORK
    # (the compose service name, alyx-apache).
    for name in ("APACHE_SERVER_NAME", "ALYX_NETWORK"):
        if env.get(name):
            hosts.append(env[name])
    for host in LOCAL_HOSTS:
        if host not in hosts:
            hosts.append(host)
    return hosts


def csrf_trusted_origins(env):
    return split_list(env.get("CSRF_TRUSTED_ORIGINS"))


def debug(env):
    return flag(_first(env, "DJANGO_DEBUG", "DEBUG", default="off"), "DEBUG")


def time_zone(env):
    return _first(env, "TIME_ZONE", "TZ", default="UTC")


def port(env):
    value = _first(env, "ALYX_PORT", default="8000")
    if not str(value).isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"ALYX_PORT={value!r} is not a TCP port")
    return int(value)


def check(env):
    """Every error a start script must refuse to start with, as a list of sentences."""
    errors = []
    for probe in (database, secret_key, port, debug):
        try:
            probe(env)
        except ConfigError as err:
            errors.append(str(err))
    return errors
