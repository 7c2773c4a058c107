# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops.services.sql_dump_fetch end to end: main() in-process against a real HTTP server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import gzip
import hashlib
import json
import os
import stat

import pytest

from ansible_collections.labops.services.plugins.modules import sql_dump_fetch

from ...http_fixtures import DumpServer
from ...utils import patch_module_args, run_module

USER, PASSWORD = 'flatiron', 'Tr0ub4dor&3-secret'
DUMP = gzip.compress(b''.join(b'INSERT INTO t VALUES (%d);\n' % i for i in range(50000)), compresslevel=1, mtime=0)
DUMP_SHA = hashlib.sha256(DUMP).hexdigest()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    today = datetime.datetime.now(datetime.timezone.utc).date()
    srv = DumpServer(auth=(USER, PASSWORD))
    srv.today = today.isoformat()
    srv.files = {'/json/%s_alyxfull.sql.gz' % today.isoformat(): DUMP,
                 '/json/%s_alyxfull.sql.gz' % (today - datetime.timedelta(days=3)).isoformat(): b'old'}
    srv.start()
    yield srv
    srv.stop()


def args(server, dest, **extra):
    base = {'url': server.url('/json/{date}_alyxfull.sql.gz'), 'dest': str(dest),
            'url_username': USER, 'url_password': PASSWORD, 'timeout': 5}
    base.update(extra)
    return base


def test_check_run_check_run(server, tmp_path):
    dest = tmp_path / 'alyx.sql.gz'
    first = run_module(sql_dump_fetch, args(server, dest), check_mode=True)
    assert first['changed'] is True and first['date'] == server.today and not dest.exists()
    assert os.listdir(str(tmp_path)) == []

    second = run_module(sql_dump_fetch, args(server, dest))
    assert second['changed'] is True
    assert second['sha256'] == DUMP_SHA and second['size'] == len(DUMP) and dest.read_bytes() == DUMP
    assert second['attempts'] == 1 and second['resumed_from'] == 0 and second['elapsed'] >= 0
    assert second['url'] == server.url('/json/%s_alyxfull.sql.gz' % server.today)

    third = run_module(sql_dump_fetch, args(server, dest), check_mode=True)
    assert third['changed'] is False

    gets_before = len(server.requests('GET'))
    fourth = run_module(sql_dump_fetch, args(server, dest))
    assert fourth['changed'] is False and fourth['sha256'] == DUMP_SHA
    assert len(server.requests('GET')) == gets_before


def test_file_attributes_without_downloading_again(server, tmp_path):
    dest = tmp_path / 'alyx.sql.gz'
    result = run_module(sql_dump_fetch, args(server, dest, mode='0640'))
    assert result['changed'] is True and stat.S_IMODE(dest.stat().st_mode) == 0o640
    gets = len(server.requests('GET'))
    assert run_module(sql_dump_fetch, args(server, dest, mode='0644'), check_mode=True)['changed'] is True
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    result = run_module(sql_dump_fetch, args(server, dest, mode='0644'))
    assert result['changed'] is True and stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert run_module(sql_dump_fetch, args(server, dest, mode='0644'))['changed'] is False
    assert len(server.requests('GET')) == gets


def test_new_file_is_private_by_default(server, tmp_path):
    dest = tmp_path / 'alyx.sql.gz'
    run_module(sql_dump_fetch, args(server, dest))
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_diff(server, tmp_path):
    dest = tmp_path / 'alyx.sql.gz'
    result = run_module(sql_dump_fetch, args(server, dest), diff=True)
    assert result['diff']['before'] == {'path': str(dest), 'state': 'absent'}
    assert result['diff']['after']['sha256'] == DUMP_SHA
    again = run_module(sql_dump_fetch, args(server, dest), diff=True)
    assert again['diff']['before'] == again['diff']['after']


def test_dest_directory(server, tmp_path):
    result = run_module(sql_dump_fetch, args(server, tmp_path, date=server.today))
    assert result['dest'] == str(tmp_path / ('%s_alyxfull.sql.gz' % server.today))


@pytest.mark.parametrize('how', ['option', 'url'])
def test_failure_never_shows_the_password(server, tmp_path, how):
    server.auth = (USER, PASSWORD + 'x')  # the password given below is wrong
    if how == 'option':
        module_args = args(server, tmp_path / 'd.sql.gz')
    else:
        module_args = args(server, tmp_path / 'd.sql.gz', url_username=None, url_password=None)
        module_args['url'] = module_args['url'].replace('http://', 'http://%s:%s@' % (USER, PASSWORD))
    result = run_module(sql_dump_fetch, module_args, expect_failure=True)
    assert result['msg'].startswith('authentication failed for http://127.0.0.1:')
    assert 'check url_username/url_password' in result['msg']
    assert PASSWORD not in json.dumps(result)
    assert result['status_code'] == 401


def test_real_module_output_masks_a_password_in_the_url(server, tmp_path, capsys):
    """The real exit path (not the patched one): JSON on stdout, ``invocation`` included."""
    server.auth = (USER, PASSWORD + 'x')
    module_args = args(server, tmp_path / 'd.sql.gz', url_username=None, url_password=None)
    module_args['url'] = module_args['url'].replace('http://', 'http://%s:%s@' % (USER, PASSWORD))
    with patch_module_args(module_args):
        with pytest.raises(SystemExit):
            sql_dump_fetch.main()
    out = capsys.readouterr().out
    result = json.loads(out)
    assert result['failed'] is True and 'authentication failed' in result['msg']
    assert 'url' in result['invocation']['module_args']
    assert PASSWORD not in out


def test_missing_date_message(server, tmp_path):
    result = run_module(sql_dump_fetch, args(server, tmp_path / 'd.sql.gz', date='2022-05-19'), expect_failure=True)
    assert result['msg'] == 'no dump for 2022-05-19 at %s (HTTP 404)' % server.url('/json/2022-05-19_alyxfull.sql.gz')
    assert result['date'] == '2022-05-19'


def test_latest_within_max_age(server, tmp_path):
    del server.files['/json/%s_alyxfull.sql.gz' % server.today]
    result = run_module(sql_dump_fetch, args(server, tmp_path / 'd', max_age_days=2, verify='none'), expect_failure=True)
    assert 'for any date from' in result['msg'] and 'max_age_days=2' in result['msg']
    result = run_module(sql_dump_fetch, args(server, tmp_path / 'd', max_age_days=3, verify='none'))
    assert result['changed'] and (tmp_path / 'd').read_bytes() == b'old'


@pytest.mark.parametrize('extra, message', [
    ({'date': 'yesterday'}, 'date must be YYYY-MM-DD, today or latest'),
    ({'checksum': 'sha256:abc'}, 'is not a sha256 digest'),
    ({'url': 'ftp://127.0.0.1/x'}, 'url must be an http, https or file URL'),
    ({'retries': -1}, 'retries must be 0 or more'),
    ({'timeout': 0}, 'timeout must be a positive number of seconds'),
])
def test_bad_arguments(server, tmp_path, extra, message):
    result = run_module(sql_dump_fetch, args(server, tmp_path / 'd', **extra), expect_failure=True)
    assert message in result['msg']
    assert server.log == []


def test_corrupt_download_keeps_the_old_file(server, tmp_path):
    dest = tmp_path / 'alyx.sql.gz'
    dest.write_bytes(b'yesterday')
    damaged = bytearray(DUMP)
    damaged[len(damaged) // 2] ^= 0xff
    server.files['/json/%s_alyxfull.sql.gz' % server.today] = bytes(damaged)
    result = run_module(sql_dump_fetch, args(server, dest), expect_failure=True)
    assert 'gzip stream' in result['msg'] and 'discarded' in result['msg']
    assert dest.read_bytes() == b'yesterday'
    assert sorted(os.listdir(str(tmp_path))) == ['alyx.sql.gz']
