# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops_alyx_env: how the alyx image reads its environment (IBL PG* / alyx-local POSTGRES_*)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
KIT_APP = os.path.join(ROOT, 'roles', 'alyx_local', 'files', 'image', 'app', 'labops_alyx_env.py')
PASSWORD = 'it\'s a "db" pass $HOME `id` \\ é labops-test-secret '


@pytest.fixture(scope='module')
def env_mod():
    # No __pycache__ in the kit folder: build.sh hashes every file there.
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec = importlib.util.spec_from_file_location('labops_alyx_env', KIT_APP)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = saved
    return mod


def test_ibl_variables(env_mod):
    db = env_mod.database({'PGHOST': 'alyx-postgres', 'PGUSER': 'ibl_dev', 'PGDATABASE': 'alyxdb',
                           'PGPASSWORD': PASSWORD})
    assert db == {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'alyxdb', 'USER': 'ibl_dev',
                  'PASSWORD': PASSWORD, 'HOST': 'alyx-postgres', 'PORT': '5432'}


def test_alyx_local_defaults_and_password_file(env_mod, tmp_path):
    secret = tmp_path / 'db-password'
    secret.write_text(PASSWORD + '\n\n', encoding='utf-8')
    db = env_mod.database({'POSTGRES_PASSWORD_FILE': str(secret)})
    # upstream alyx-local's fixed names are the defaults; only trailing newlines are dropped
    assert (db['HOST'], db['USER'], db['NAME'], db['PORT']) == ('db', 'postgres', 'alyx', '5432')
    assert db['PASSWORD'] == PASSWORD


def test_pg_variables_win_over_postgres_ones(env_mod):
    db = env_mod.database({'PGHOST': 'a', 'POSTGRES_HOST': 'b', 'POSTGRES_PASSWORD': 'x', 'PGPASSWORD': 'y',
                           'POSTGRES_PORT': '6543', 'PGUSER': ''})
    assert (db['HOST'], db['PASSWORD'], db['PORT'], db['USER']) == ('a', 'y', '6543', 'postgres')


def test_missing_password(env_mod):
    with pytest.raises(env_mod.ConfigError, match='no database password'):
        env_mod.database({})
    assert env_mod.database({}, require_password=False)['PASSWORD'] == ''


def test_unreadable_password_file(env_mod, tmp_path):
    with pytest.raises(env_mod.ConfigError, match='cannot read secret file'):
        env_mod.database({'POSTGRES_PASSWORD_FILE': str(tmp_path / 'absent')})


@pytest.mark.parametrize('value, state', [('on', 'on'), ('off', 'off'), ('TRUE', 'on'), ('0', 'off')])
def test_pgreadonly(env_mod, value, state):
    db = env_mod.database({'PGPASSWORD': 'p', 'PGREADONLY': value})
    assert db['OPTIONS'] == {'options': '-c default_transaction_read_only=%s' % state}


def test_pgreadonly_unset_adds_no_options(env_mod):
    assert 'OPTIONS' not in env_mod.database({'PGPASSWORD': 'p'})


def test_bad_values_are_reported(env_mod):
    errors = env_mod.check({'PGREADONLY': 'maybe', 'ALYX_PORT': '80a', 'DEBUG': 'perhaps'})
    assert any('PGREADONLY' in e for e in errors)
    assert any('ALYX_PORT' in e for e in errors)
    assert any('DEBUG' in e for e in errors)
    assert any('secret key' in e for e in errors)
    assert env_mod.check({'PGPASSWORD': 'p', 'SECRET_KEY': 's'}) == []


def test_secret_key_sources(env_mod, tmp_path):
    key_file = tmp_path / 'key'
    key_file.write_text('from-file labops-test-secret\n', encoding='utf-8')
    assert env_mod.secret_key({'DJANGO_SECRET_KEY': 'a', 'SECRET_KEY': 'b'}) == 'a'
    assert env_mod.secret_key({'SECRET_KEY_FILE': str(key_file)}) == 'from-file labops-test-secret'
    assert env_mod.secret_key({}, required=False) == ''
    with pytest.raises(env_mod.ConfigError):
        env_mod.secret_key({})


def test_allowed_hosts(env_mod):
    hosts = env_mod.allowed_hosts({'ALLOWED_HOSTS': 'alyx.lab.example, django', 'DJANGO_ALLOWED_HOSTS': 'x.example',
                                   'APACHE_SERVER_NAME': 'srv.example', 'ALYX_NETWORK': 'alyx-apache'})
    assert hosts == ['alyx.lab.example', 'django', 'x.example', 'srv.example', 'alyx-apache',
                     'localhost', '127.0.0.1', '[::1]']
    assert env_mod.allowed_hosts({}) == ['localhost', '127.0.0.1', '[::1]']
    assert env_mod.allowed_hosts({'ALLOWED_HOSTS': 'localhost'}).count('localhost') == 1


def test_other_settings(env_mod):
    assert env_mod.debug({}) is False
    assert env_mod.debug({'DJANGO_DEBUG': 'True'}) is True
    assert env_mod.time_zone({'TZ': 'Europe/Lisbon'}) == 'Europe/Lisbon'
    assert env_mod.time_zone({}) == 'UTC'
    assert env_mod.port({}) == 8000
    assert env_mod.csrf_trusted_origins({'CSRF_TRUSTED_ORIGINS': 'https://a.example https://b.example'}) == [
        'https://a.example', 'https://b.example']
