# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""DumpFetcher, HttpTransport and the stream checks against real HTTP servers on 127.0.0.x."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import gzip
import hashlib
import json
import os
import stat
import tracemalloc
import zlib

import pytest

from ansible_collections.labops.services.plugins.module_utils import _sql_dump_fetch as core
from ansible_collections.labops.services.plugins.module_utils import _sql_dump_fetch_stream as stream
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch import (
    DumpFetcher,
    FetchError,
    parse_checksum,
    parse_checksum_file,
)
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch_http import HttpTransport, strip_credentials
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch_stream import (
    GzipVerifier,
    StreamCheckError,
    StreamPipeline,
)

from ...http_fixtures import ConnectProxy, DumpServer, make_tls_files, second_loopback_host

TODAY = datetime.date(2026, 11, 22)
USER, PASSWORD = 'flatiron', 's3cret-Pa55word'
BUF = 64 << 10  # small buffers so that test files span many of them


def gz(data):
    return gzip.compress(data, compresslevel=1, mtime=0)


def sql_text(n_rows, seed=0):
    rows = []
    for i in range(n_rows):
        digest = hashlib.sha256(('%d-%d' % (seed, i)).encode()).hexdigest()
        rows.append('INSERT INTO subjects VALUES (%d, \'%s\', \'mouse-%s\', %d);\n' % (i, digest[:32], digest[32:44], i * 7))
    return ''.join(rows).encode()


DUMP = gz(sql_text(40000))  # ~1.9 MB of gzip, ~30 buffers of 64 KiB
assert len(DUMP) > 10 * BUF
DUMP_SHA = hashlib.sha256(DUMP).hexdigest()


def sha(data):
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    srv = DumpServer(files={'/json/2026-11-20_alyxfull.sql.gz': DUMP}).start()
    yield srv
    srv.stop()


@pytest.fixture
def other_server():
    srv = DumpServer(host=second_loopback_host()).start()
    yield srv
    srv.stop()


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def make(url, dest, sleeps=None, transport=None, **kwargs):
    kwargs.setdefault('today', lambda: TODAY)
    kwargs.setdefault('buffer_size', BUF)
    transport = transport or HttpTransport(timeout=5, use_proxy=False)
    return DumpFetcher(url=url, dest=str(dest), transport=transport, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)


def auth_transport(user=USER, password=PASSWORD, **kwargs):
    kwargs.setdefault('timeout', 5)
    kwargs.setdefault('use_proxy', False)
    return HttpTransport(username=user, password=password, **kwargs)


def listing(directory):
    return sorted(os.listdir(str(directory)))


# -- plain download, destination, files beside it ----------------------------------------------

@pytest.mark.parametrize('threaded', [True, False])
def test_download_explicit_date(server, tmp_path, threaded):
    fetcher = make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'dump.sql.gz', date='2026-11-20', threaded=threaded)
    result = fetcher.run()
    dest = tmp_path / 'dump.sql.gz'
    assert dest.read_bytes() == DUMP
    assert result['changed'] is True
    assert result['sha256'] == DUMP_SHA
    assert result['size'] == len(DUMP)
    assert result['date'] == '2026-11-20'
    assert result['url'] == server.url('/json/2026-11-20_alyxfull.sql.gz')
    assert result['attempts'] == 1 and result['resumed_from'] == 0
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert listing(tmp_path) == ['.dump.sql.gz.fetch.json', 'dump.sql.gz']
    record = json.loads((tmp_path / '.dump.sql.gz.fetch.json').read_text())
    assert stat.S_IMODE((tmp_path / '.dump.sql.gz.fetch.json').stat().st_mode) == 0o600
    assert record['complete']['digests']['sha256'] == DUMP_SHA
    assert record['complete']['size'] == len(DUMP)
    assert 'partial' not in record
    assert [e['method'] for e in server.log] == ['HEAD', 'GET']


def test_dest_directory_takes_name_from_url(server, tmp_path):
    result = make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path, date='2026-11-20').run()
    assert result['dest'] == str(tmp_path / '2026-11-20_alyxfull.sql.gz')
    assert (tmp_path / '2026-11-20_alyxfull.sql.gz').read_bytes() == DUMP


def test_missing_directory_is_an_error(server, tmp_path):
    with pytest.raises(FetchError, match='does not exist'):
        make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'nope' / 'x.gz', date='2026-11-20').run()
    assert server.log == []


def test_replaced_dest_keeps_its_mode(server, tmp_path):
    dest = tmp_path / 'dump.sql.gz'
    dest.write_bytes(b'old')
    dest.chmod(0o640)
    make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest).run()
    assert dest.read_bytes() == DUMP
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640


# -- date resolution --------------------------------------------------------------------------

def test_latest_skips_the_gaps(server, tmp_path):
    server.files = {'/d/2026-11-18.sql.gz': b'older' * 100, '/d/2026-11-20.sql.gz': DUMP, '/d/2026-11-16.sql.gz': b'x'}
    result = make(server.url('/d/{date}.sql.gz'), tmp_path / 'd.sql.gz', verify='none').run()
    assert result['date'] == '2026-11-20'
    assert (tmp_path / 'd.sql.gz').read_bytes() == DUMP
    heads = [e['path'] for e in server.requests('HEAD')]
    assert heads == ['/d/2026-11-22.sql.gz', '/d/2026-11-21.sql.gz', '/d/2026-11-20.sql.gz']
    assert len(server.requests('GET')) == 1


def test_latest_falls_back_to_ranged_get_when_head_is_refused(server, tmp_path):
    server.head = False
    result = make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'd.sql.gz').run()
    assert result['date'] == '2026-11-20'
    probes = [e for e in server.requests('GET') if e['headers'].get('range') == 'bytes=0-0']
    assert [e['path'] for e in probes] == ['/json/2026-11-%d_alyxfull.sql.gz' % day for day in (22, 21, 20)]
    assert [e['status'] for e in probes] == [404, 404, 206]
    assert probes[-1]['sent'] == 1  # the probe did not pull the body
    assert (tmp_path / 'd.sql.gz').read_bytes() == DUMP


def test_latest_with_nothing_in_range_lists_the_dates(server, tmp_path):
    with pytest.raises(FetchError) as info:
        make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', max_age_days=1).run()
    assert 'for any date from 2026-11-22 back to 2026-11-21' in info.value.msg
    assert '2026-11-22 (HTTP 404), 2026-11-21 (HTTP 404)' in info.value.msg
    assert info.value.context['tried'] == ['2026-11-22', '2026-11-21']
    assert listing(tmp_path) == []


@pytest.mark.parametrize('check_mode', [False, True])
@pytest.mark.parametrize('date, shown', [('2022-05-19', 'no dump for 2022-05-19 at '), ('today', 'no dump for 2026-11-22 at ')])
def test_missing_explicit_date(server, tmp_path, date, shown, check_mode):
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(b'previous dump')
    with pytest.raises(FetchError) as info:
        make(server.url('/json/{date}_alyxfull.sql.gz'), dest, date=date).run(check_mode=check_mode)
    assert info.value.context['elapsed'] >= 0 and info.value.context['date'] == date.replace('today', '2026-11-22')
    assert info.value.msg.startswith(shown)
    assert '(HTTP 404)' in info.value.msg
    assert dest.read_bytes() == b'previous dump'


@pytest.mark.parametrize('date', ['2026-13-01', '22-05-2026', 'yesterday', '2026-02-30'])
def test_bad_date(tmp_path, date):
    with pytest.raises(FetchError, match='date'):
        make('http://127.0.0.1:9/{date}.gz', tmp_path / 'x', date=date)


# -- authentication and redirects ---------------------------------------------------------------

def test_basic_auth(server, tmp_path):
    server.auth = (USER, PASSWORD)
    result = make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', transport=auth_transport()).run()
    assert result['sha256'] == DUMP_SHA
    assert all(e['status'] != 401 for e in server.log)


def test_basic_auth_after_challenge(server, tmp_path):
    server.auth = (USER, PASSWORD)
    transport = auth_transport(force_basic_auth=False)
    make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', transport=transport).run()
    assert 'authorization' not in server.log[0]['headers'] and server.log[0]['status'] == 401
    assert server.log[1]['headers']['authorization'].startswith('Basic ')
    assert (tmp_path / 'd.sql.gz').read_bytes() == DUMP


def test_credentials_in_url_are_used_and_never_shown(server, tmp_path):
    server.auth = (USER, PASSWORD)
    url = server.url('/json/{date}_alyxfull.sql.gz').replace('http://', 'http://%s:%s@' % (USER, PASSWORD))
    result = make(url, tmp_path / 'd.sql.gz').run()
    assert PASSWORD not in json.dumps(result) and USER not in result['url']
    assert PASSWORD not in (tmp_path / '.d.sql.gz.fetch.json').read_text()


@pytest.mark.parametrize('password', [None, 'wrong'])
def test_auth_failure_says_what_to_fix_without_the_secret(server, tmp_path, password):
    server.auth = (USER, PASSWORD)
    transport = auth_transport(password=password) if password else HttpTransport(timeout=5, use_proxy=False)
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(b'old')
    with pytest.raises(FetchError) as info:
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest, transport=transport).run()
    msg = info.value.msg
    assert msg.startswith('authentication failed for %s' % server.url('/json/2026-11-20_alyxfull.sql.gz'))
    assert 'check url_username/url_password' in msg
    assert PASSWORD not in msg and PASSWORD not in json.dumps(info.value.context)
    assert 'wrong' not in msg
    assert len(server.log) == 1  # not retried
    assert dest.read_bytes() == b'old'


def test_redirect_to_another_host_does_not_leak_credentials(server, other_server, tmp_path):
    server.auth = (USER, PASSWORD)
    other_server.files = {'/mirror/dump.sql.gz': DUMP}
    server.redirects = {'/json/2026-11-20_alyxfull.sql.gz': other_server.url('/mirror/dump.sql.gz')}
    transport = auth_transport(headers={'Authorization': 'Bearer do-not-leak', 'X-Lab': 'ibl'})
    result = make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', transport=transport, date='2026-11-20').run()
    assert result['sha256'] == DUMP_SHA
    assert other_server.log, 'the redirect was not followed'
    for entry in other_server.log:
        assert 'authorization' not in entry['headers']
        assert entry['headers'].get('x-lab') == 'ibl'
    assert all(e['headers'].get('authorization') for e in server.log)


def test_user_range_header_cannot_break_the_download(server, tmp_path):
    transport = HttpTransport(headers={'Range': 'bytes=0-9', 'X-Lab': 'ibl'}, timeout=5, use_proxy=False)
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', transport=transport).run()
    assert result['sha256'] == DUMP_SHA
    assert all('range' not in e['headers'] and e['headers']['x-lab'] == 'ibl' for e in server.log)


def test_redirect_on_same_origin_keeps_credentials(server, tmp_path):
    server.auth = (USER, PASSWORD)
    server.redirects = {'/latest.sql.gz': '/json/2026-11-20_alyxfull.sql.gz'}
    result = make(server.url('/latest.sql.gz'), tmp_path / 'd.sql.gz', transport=auth_transport()).run()
    assert result['sha256'] == DUMP_SHA and result['date'] is None


def test_redirect_loop_is_bounded(server, tmp_path):
    server.redirects = {'/a': '/b', '/b': '/a'}
    with pytest.raises(FetchError, match='more than 10 redirects'):
        make(server.url('/a'), tmp_path / 'd').run()
    assert len(server.log) == 11


# -- resume -------------------------------------------------------------------------------------

def test_cut_mid_body_resumes_with_range(server, tmp_path):
    cut = 700000
    server.cuts = [cut]
    sleeps = Sleeps()
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', sleeps=sleeps, backoff=0.5).run()
    assert (tmp_path / 'd.sql.gz').read_bytes() == DUMP
    gets = server.requests('GET')
    assert [e['status'] for e in gets] == [200, 206]
    assert gets[1]['headers']['range'] == 'bytes=%d-' % cut
    assert gets[1]['headers']['if-range'] == '"%s"' % hashlib.sha1(DUMP).hexdigest()[:16]  # the ETag it got
    assert gets[1]['sent'] == len(DUMP) - cut  # only the remainder
    assert server.body_bytes() == len(DUMP)
    assert result['resumed_from'] == cut and result['attempts'] == 2
    assert result['sha256'] == DUMP_SHA
    assert sleeps == [0.5]


def test_cut_without_range_support_starts_again(server, tmp_path):
    server.ranges = False
    server.cuts = [500000]
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz').run()
    assert (tmp_path / 'd.sql.gz').read_bytes() == DUMP
    gets = server.requests('GET')
    assert [e['status'] for e in gets] == [200, 200]
    assert gets[1]['headers']['range'] == 'bytes=500000-'  # asked, but the server sent it all
    assert result['resumed_from'] == 0 and result['attempts'] == 2 and result['sha256'] == DUMP_SHA


def test_progress_does_not_use_up_retries(server, tmp_path):
    server.cuts = [200000, 200000, 200000]
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', retries=1).run()
    assert result['attempts'] == 4 and result['resumed_from'] == 600000
    assert server.body_bytes() == len(DUMP)
    assert (tmp_path / 'd.sql.gz').read_bytes() == DUMP


def test_resume_across_runs(server, tmp_path):
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(b'yesterday')
    server.cuts = [900000]
    with pytest.raises(FetchError, match='failed after 1 attempt: the body ended at byte 900000 of %d' % len(DUMP)):
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest, retries=0).run()
    assert dest.read_bytes() == b'yesterday'
    part = tmp_path / 'd.sql.gz.part'
    assert part.stat().st_size == 900000
    assert stat.S_IMODE(part.stat().st_mode) == 0o600
    server.log[:] = []
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest).run()
    assert dest.read_bytes() == DUMP and result['sha256'] == DUMP_SHA
    aligned = 900000 - 900000 % 4096  # resumes from a 4 KiB boundary (O_DIRECT alignment)
    assert result['resumed_from'] == aligned and result['attempts'] == 1
    assert server.requests('GET')[0]['headers']['range'] == 'bytes=%d-' % aligned
    assert server.body_bytes() == len(DUMP) - aligned
    assert not part.exists()


def test_stale_part_of_a_changed_file_is_not_reused(server, tmp_path):
    dest = tmp_path / 'd.sql.gz'
    server.cuts = [900000]
    with pytest.raises(FetchError):
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest, retries=0).run()
    new = gz(sql_text(40000, seed=1))
    server.files['/json/2026-11-20_alyxfull.sql.gz'] = new
    server.log[:] = []
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest).run()
    assert dest.read_bytes() == new and result['resumed_from'] == 0
    assert 'range' not in server.requests('GET')[0]['headers']


def test_if_range_protects_a_resume_when_the_file_changes_between_attempts(server, tmp_path):
    """The ETag changes between the cut and the retry: If-Range makes the server send the new file whole."""
    dest = tmp_path / 'd.sql.gz'
    new = gz(sql_text(30000, seed=2))
    server.cuts = [300000]
    fetcher = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest)
    original_sleep = fetcher.sleep

    def swap(seconds):
        server.files['/json/2026-11-20_alyxfull.sql.gz'] = new
        original_sleep(seconds)
    fetcher.sleep = swap
    result = fetcher.run()
    gets = server.requests('GET')
    assert gets[1]['headers']['range'] == 'bytes=300000-' and gets[1]['headers']['if-range']
    assert gets[1]['status'] == 200
    assert dest.read_bytes() == new and result['sha256'] == sha(new) and result['resumed_from'] == 0


def test_resume_false_discards_the_part(server, tmp_path):
    server.cuts = [300000, 300000]
    with pytest.raises(FetchError):
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', retries=1, resume=False).run()
    assert [e['headers'].get('range') for e in server.requests('GET')] == [None, None]
    assert listing(tmp_path) == []


def test_complete_part_answered_416(server, tmp_path):
    padded = DUMP + b'\0' * (-len(DUMP) % 4096)  # gzip allows zero padding; a whole number of 4 KiB blocks
    server.files['/json/2026-11-20_alyxfull.sql.gz'] = padded
    dest = tmp_path / 'd.sql.gz'
    server.cuts = [len(padded) - 1]
    with pytest.raises(FetchError):
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest, retries=0).run()
    # finish the part by hand: the next run finds it complete and asks for a range past the end
    with open(str(dest) + '.part', 'ab') as f:
        f.write(padded[-1:])
    server.log[:] = []
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest).run()
    assert server.requests('GET')[0]['status'] == 416 and server.body_bytes() == 0
    assert dest.read_bytes() == padded and result['sha256'] == sha(padded)


# -- retries -------------------------------------------------------------------------------------

def test_retries_with_exponential_backoff_then_fail(server, tmp_path):
    server.statuses = [502] * 10
    sleeps = Sleeps()
    with pytest.raises(FetchError) as info:
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', sleeps=sleeps, retries=3, backoff=1).run()
    assert 'failed after 4 attempts' in info.value.msg and 'HTTP 502' in info.value.msg
    assert sleeps == [1, 2, 4]
    assert len(server.log) == 4


def test_transient_errors_are_retried(server, tmp_path):
    server.statuses = [503, 500]
    sleeps = Sleeps()
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', sleeps=sleeps, backoff=0.25).run()
    assert result['sha256'] == DUMP_SHA and sleeps == [0.25, 0.5]


def test_connection_refused_is_retried_then_reported(tmp_path):
    srv = DumpServer().start()
    url = srv.url('/x/{date}.gz')
    srv.stop()
    sleeps = Sleeps()
    with pytest.raises(FetchError, match='failed after 3 attempts'):
        make(url, tmp_path / 'x.gz', sleeps=sleeps, retries=2, date='2026-11-20').run()
    assert len(sleeps) == 2


# -- checks --------------------------------------------------------------------------------------

def corrupt(data):
    damaged = bytearray(data)
    middle = len(damaged) // 2
    damaged[middle:middle + 64] = bytes(64)
    return bytes(damaged)


@pytest.mark.parametrize('name, body, reason', [
    ('corrupt', corrupt(DUMP), 'corrupt gzip stream'),
    ('truncated', DUMP[:len(DUMP) // 2], 'truncated gzip stream'),
    ('not-gzip', sql_text(100), 'corrupt gzip stream'),
])
def test_bad_gzip_is_never_put_in_place(server, tmp_path, name, body, reason):
    server.files = {'/bad.sql.gz': body}
    dest = tmp_path / 'dump.sql.gz'
    dest.write_bytes(b'the good old dump')
    with pytest.raises(FetchError) as info:
        make(server.url('/bad.sql.gz'), dest).run()
    assert reason in info.value.msg and 'the download was discarded' in info.value.msg
    assert dest.read_bytes() == b'the good old dump'
    assert listing(tmp_path) == ['dump.sql.gz']


def test_verify_none_accepts_what_it_gets(server, tmp_path):
    server.files = {'/bad.sql.gz': corrupt(DUMP)}
    result = make(server.url('/bad.sql.gz'), tmp_path / 'd.sql.gz', verify='none').run()
    assert result['sha256'] == sha(corrupt(DUMP))


def test_verify_gzip_on_any_name(server, tmp_path):
    server.files = {'/dump.bin': b'plain text'}
    with pytest.raises(FetchError, match='gzip'):
        make(server.url('/dump.bin'), tmp_path / 'd.bin', verify='gzip').run()
    assert make(server.url('/dump.bin'), tmp_path / 'd.bin').run()['changed']


def test_checksum_literal(server, tmp_path):
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', checksum='sha256:' + DUMP_SHA.upper()).run()
    assert result['sha256'] == DUMP_SHA


@pytest.mark.parametrize('algorithm', ['sha256', 'sha512', 'md5'])
def test_checksum_mismatch(server, tmp_path, algorithm):
    wrong = hashlib.new(algorithm, b'something else').hexdigest()
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(b'old')
    with pytest.raises(FetchError) as info:
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest, checksum='%s:%s' % (algorithm, wrong)).run()
    assert info.value.msg.startswith('checksum mismatch for %s: expected %s %s, got %s' % (
        server.url('/json/2026-11-20_alyxfull.sql.gz'), algorithm, wrong, hashlib.new(algorithm, DUMP).hexdigest()))
    assert dest.read_bytes() == b'old' and listing(tmp_path) == ['d.sql.gz']


@pytest.mark.parametrize('content', [
    '{sha}  2026-11-20_alyxfull.sql.gz\n',
    '0000000000000000000000000000000000000000000000000000000000000000  2026-11-19_alyxfull.sql.gz\n'
    '{sha} *2026-11-20_alyxfull.sql.gz\n',
    'SHA256 (2026-11-20_alyxfull.sql.gz) = {sha}\n',
    '{sha}\n',
    '# sums\n{sha}  ./json/2026-11-20_alyxfull.sql.gz\n',
])
def test_checksum_file(server, tmp_path, content):
    server.files['/json/2026-11-20_alyxfull.sql.gz.sha256'] = content.format(sha=DUMP_SHA).encode()
    result = make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'd.sql.gz',
                  checksum='sha256:' + server.url('/json/{date}_alyxfull.sql.gz.sha256')).run()
    assert result['sha256'] == DUMP_SHA and result['date'] == '2026-11-20'


def test_checksum_file_without_our_line(server, tmp_path):
    server.files['/sums.txt'] = b'%s  other.sql.gz\n%s  more.sql.gz\n' % (DUMP_SHA.encode(), DUMP_SHA.encode())
    with pytest.raises(FetchError, match='no sha256 checksum for 2026-11-20_alyxfull.sql.gz in'):
        make(server.url('/json/{date}_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', checksum='sha256:' + server.url('/sums.txt')).run()
    assert server.requests('GET') == [e for e in server.log if e['path'] == '/sums.txt']


def test_checksum_file_missing(server, tmp_path):
    with pytest.raises(FetchError, match='no checksum file at'):
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), tmp_path / 'd.sql.gz', checksum='sha256:' + server.url('/nope.sha256')).run()


@pytest.mark.parametrize('spec, message', [
    ('abc', 'checksum must be'),
    ('crc32:1234', 'not supported'),
    ('sha256:1234', 'is not a sha256 digest'),
    ('sha256:' + 'g' * 64, 'is not a sha256 digest'),
])
def test_bad_checksum_spec(spec, message):
    with pytest.raises(FetchError, match=message):
        parse_checksum(spec)


def test_parse_checksum_file_prefers_the_exact_name():
    text = 'aaaa  x/dump.gz\nbbbb  dump.gz\ncccc  y/dump.gz\n'
    assert parse_checksum_file(text, 'dump.gz') == 'bbbb'
    assert parse_checksum_file('aaaa  x/dump.gz\ncccc  y/dump.gz\n', 'dump.gz') == 'aaaa'  # else the first in a directory
    assert parse_checksum_file('cccc', 'whatever') == 'cccc'
    assert parse_checksum_file('', 'dump.gz') is None


# -- idempotence and check mode --------------------------------------------------------------------

def test_second_run_costs_one_head_and_no_rehash(server, tmp_path, monkeypatch):
    url = server.url('/json/{date}_alyxfull.sql.gz')
    dest = tmp_path / 'd.sql.gz'
    assert make(url, dest, date='2026-11-20').run()['changed'] is True
    server.log[:] = []
    monkeypatch.setattr(core, 'hash_file', lambda *a, **k: pytest.fail('dest was re-hashed'))
    result = make(url, dest, date='2026-11-20').run()
    assert result['changed'] is False and result['sha256'] == DUMP_SHA and result['attempts'] == 0
    assert [e['method'] for e in server.log] == ['HEAD']


def test_check_mode_writes_nothing(server, tmp_path):
    url = server.url('/json/{date}_alyxfull.sql.gz')
    dest = tmp_path / 'd.sql.gz'
    result = make(url, dest).run(check_mode=True)
    assert result['changed'] is True and result['date'] == '2026-11-20' and result['size'] == len(DUMP)
    assert 'would download' in result['msg']
    assert listing(tmp_path) == [] and server.requests('GET') == []
    make(url, dest).run()
    before = dict((p, os.stat(str(tmp_path / p)).st_mtime_ns) for p in listing(tmp_path))
    assert make(url, dest).run(check_mode=True)['changed'] is False
    assert dict((p, os.stat(str(tmp_path / p)).st_mtime_ns) for p in listing(tmp_path)) == before


@pytest.mark.parametrize('change', ['etag', 'size', 'local', 'sidecar', 'force'])
def test_downloads_again_when_something_changed(server, tmp_path, change):
    url = server.url('/json/2026-11-20_alyxfull.sql.gz')
    dest = tmp_path / 'd.sql.gz'
    make(url, dest).run()
    kwargs = {}
    if change == 'etag':
        server.etags['/json/2026-11-20_alyxfull.sql.gz'] = '"new-build"'
    elif change == 'size':
        server.files['/json/2026-11-20_alyxfull.sql.gz'] = DUMP + b'\0' * 10
    elif change == 'local':
        with open(str(dest), 'r+b') as f:
            f.write(b'X')
    elif change == 'sidecar':
        os.unlink(str(tmp_path / '.d.sql.gz.fetch.json'))
    else:
        kwargs['force'] = True
    server.log[:] = []
    result = make(url, dest, **kwargs).run()
    assert result['changed'] is True and len(server.requests('GET')) == 1


def test_checksum_makes_a_foreign_file_idempotent(server, tmp_path):
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(DUMP)  # put there by something else: no download record
    result = make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest, checksum='sha256:' + DUMP_SHA).run()
    assert result['changed'] is False and result['sha256'] == DUMP_SHA
    assert server.log == []


def test_remote_gone_but_dest_complete(server, tmp_path):
    url = server.url('/json/{date}_alyxfull.sql.gz')
    dest = tmp_path / 'd.sql.gz'
    make(url, dest, date='2026-11-20').run()
    server.files = {}
    result = make(url, dest, date='2026-11-20').run()
    assert result['changed'] is False and 'remote copy is gone' in result['msg']


# -- local failures ------------------------------------------------------------------------------------

def test_not_enough_space_is_found_before_downloading(server, tmp_path, monkeypatch):
    class Fs(object):
        f_bavail, f_frsize = 10, 4096
    monkeypatch.setattr(core.os, 'statvfs', lambda path: Fs())
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(b'old')
    with pytest.raises(FetchError, match=r'no space left for .* it needs %d more bytes, 40960 are free' % len(DUMP)):
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest).run()
    assert server.requests('GET') == [] and dest.read_bytes() == b'old'


def test_disk_full_while_writing(server, tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    written = [0]

    def pwrite(fd, data, offset):
        if written[0] > 300000:
            raise OSError(errno.ENOSPC, 'No space left on device')
        n = real_pwrite(fd, data, offset)
        written[0] += n
        return n
    monkeypatch.setattr(stream.os, 'pwrite', pwrite)
    dest = tmp_path / 'd.sql.gz'
    dest.write_bytes(b'old')
    with pytest.raises(FetchError, match='no space left on device writing .*d.sql.gz.part at byte') as info:
        make(server.url('/json/2026-11-20_alyxfull.sql.gz'), dest).run()
    assert 'resumed' in info.value.msg
    assert dest.read_bytes() == b'old'
    assert len(server.requests('GET')) == 1  # a full disk is not retried


# -- TLS, file:// and proxies ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp('tls'))


def test_https_with_ca_path(tls_files, tmp_path):
    ca, cert, key = tls_files
    srv = DumpServer(files={'/d.sql.gz': DUMP}, tls=(cert, key)).start()
    try:
        result = make(srv.url('/d.sql.gz'), tmp_path / 'd.sql.gz', transport=HttpTransport(ca_path=ca, timeout=5, use_proxy=False)).run()
        assert result['sha256'] == DUMP_SHA
        with pytest.raises(FetchError) as info:
            make(srv.url('/d.sql.gz'), tmp_path / 'e.sql.gz').run()
        assert info.value.msg.startswith('TLS failure talking to 127.0.0.1:%d' % srv.port)
        assert 'certificate' in info.value.msg and 'ca_path' in info.value.msg
        insecure = HttpTransport(validate_certs=False, timeout=5, use_proxy=False)
        assert make(srv.url('/d.sql.gz'), tmp_path / 'f.sql.gz', transport=insecure).run()['sha256'] == DUMP_SHA
    finally:
        srv.stop()


def test_file_url_with_resume(tmp_path):
    src = tmp_path / 'mirror'
    src.mkdir()
    (src / '2026-11-21_alyxfull.sql.gz').write_bytes(DUMP)
    out = tmp_path / 'out'
    out.mkdir()
    part = out / '2026-11-21_alyxfull.sql.gz.part'
    first = make('file://%s/{date}_alyxfull.sql.gz' % src, out)
    assert first.run(check_mode=True)['date'] == '2026-11-21'
    result = first.run()
    assert result['sha256'] == DUMP_SHA and result['date'] == '2026-11-21'
    assert make('file://%s/{date}_alyxfull.sql.gz' % src, out).run()['changed'] is False
    # a partial transfer left by an earlier run continues
    os.unlink(str(out / '2026-11-21_alyxfull.sql.gz'))
    record = json.loads((out / '.2026-11-21_alyxfull.sql.gz.fetch.json').read_text())
    remote = make('file://%s/{date}_alyxfull.sql.gz' % src, out).remote('file://%s/2026-11-21_alyxfull.sql.gz' % src, None)
    record['partial'] = {'url': 'file://%s/2026-11-21_alyxfull.sql.gz' % src, 'etag': remote.etag,
                         'last_modified': remote.last_modified, 'size': remote.size}
    (out / '.2026-11-21_alyxfull.sql.gz.fetch.json').write_text(json.dumps(record))
    part.write_bytes(DUMP[:123456])
    result = make('file://%s/{date}_alyxfull.sql.gz' % src, out).run()
    assert result['resumed_from'] == 122880 and result['sha256'] == DUMP_SHA


def test_http_proxy_from_environment(server, other_server, tmp_path, monkeypatch):
    # other_server plays the proxy: it gets the absolute URI and serves the path it names.
    other_server.files = {'/json/2026-11-20_alyxfull.sql.gz': DUMP}
    monkeypatch.setenv('http_proxy', other_server.base)
    target = 'http://dumps.invalid/json/2026-11-20_alyxfull.sql.gz'
    result = make(target, tmp_path / 'd.sql.gz', transport=HttpTransport(timeout=5)).run()
    assert result['sha256'] == DUMP_SHA
    assert all(e.get('proxied') for e in other_server.log) and other_server.log[0]['path'] == target
    seen = len(other_server.log)
    monkeypatch.setenv('no_proxy', 'dumps.invalid')
    with pytest.raises(FetchError, match='cannot get http://dumps.invalid/'):  # direct, and .invalid does not resolve
        make(target, tmp_path / 'e.sql.gz', transport=HttpTransport(timeout=5), retries=0).run()
    assert len(other_server.log) == seen


def test_https_through_connect_proxy(tls_files, tmp_path, monkeypatch):
    ca, cert, key = tls_files
    srv = DumpServer(files={'/d.sql.gz': DUMP}, tls=(cert, key), auth=(USER, PASSWORD)).start()
    proxy = ConnectProxy().start()
    try:
        monkeypatch.setenv('https_proxy', proxy.url.replace('http://', 'http://pxuser:pxpass@'))
        result = make(srv.url('/d.sql.gz'), tmp_path / 'd.sql.gz', transport=auth_transport(ca_path=ca, use_proxy=True)).run()
        assert result['sha256'] == DUMP_SHA
        assert [lines[0] for lines in proxy.log] == ['CONNECT 127.0.0.1:%d HTTP/1.0' % srv.port] * 2  # HEAD, GET
        # the proxy gets its own credentials, and never the site's (they travel inside TLS)
        assert all('Proxy-Authorization: Basic cHh1c2VyOnB4cGFzcw==' in lines for lines in proxy.log)
        assert not any(line.lower().startswith('authorization') for lines in proxy.log for line in lines)
    finally:
        proxy.stop()
        srv.stop()


@pytest.mark.parametrize('url, public', [
    ('https://u:p@host/x', 'https://host/x'),
    ('https://u@host:8443/x?y=1', 'https://host:8443/x?y=1'),
    ('https://host/x', 'https://host/x'),
    ('file:///tmp/a', 'file:///tmp/a'),
])
def test_strip_credentials(url, public):
    assert strip_credentials(url) == public


# -- stream checks ----------------------------------------------------------------------------------------

def feed_all(verifier, data, step):
    for i in range(0, len(data), step):
        verifier.update(data[i:i + step])
    verifier.finish()


@pytest.mark.parametrize('step', [1, 7, 4096, 1 << 20])
def test_gzip_verifier_accepts_members_and_zero_padding(step):
    data = gzip.compress(b'a' * 5000, mtime=0) + gzip.compress(b'b' * 3000, mtime=0) + b'\0' * 10
    verifier = GzipVerifier()
    feed_all(verifier, data, step)
    assert verifier.members == 2 and verifier.output_size == 8000


@pytest.mark.parametrize('data, message', [
    (b'', 'empty file'),
    (gzip.compress(b'x' * 1000)[:-3], 'truncated gzip stream'),
    (gzip.compress(b'x' * 1000) + b'garbage', 'data after the end'),
    (gzip.compress(b'x' * 1000) + b'\0\0junk', 'data after the end'),
    (gzip.compress(b'x' * 1000)[:-8] + b'\0\0\0\0' + gzip.compress(b'x' * 1000)[-4:], 'corrupt gzip stream'),
])
@pytest.mark.parametrize('step', [1, 3, 1 << 16])
def test_gzip_verifier_rejects(data, message, step):
    with pytest.raises(StreamCheckError, match=message):
        feed_all(GzipVerifier(), data, step)


def test_gzip_verifier_memory_is_bounded_on_a_bomb():
    bomb = gzip.compress(b'\0' * (48 << 20), compresslevel=1)
    assert len(bomb) < (1 << 20)
    verifier = GzipVerifier()
    tracemalloc.start()
    try:
        verifier.update(bomb)  # one call; the output is thrown away in 1 MiB steps
        verifier.finish()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert verifier.output_size == 48 << 20
    assert peak < 6 << 20


@pytest.mark.parametrize('direct', [True, False])
@pytest.mark.parametrize('threaded', [True, False])
def test_pipeline_writes_checks_and_restarts(tmp_path, threaded, direct):
    path = str(tmp_path / 'f.part')
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        pipe = StreamPipeline(fd, 0, ['sha256', 'md5'], gzip=True, buffers=3, buffer_size=8192, threaded=threaded, direct=direct)
        feed(pipe, DUMP[:50000])  # a start that is forgotten
        pipe.restart()
        feed(pipe, DUMP)
        assert pipe.finish() == {'sha256': DUMP_SHA, 'md5': hashlib.md5(DUMP).hexdigest()}
        pipe.close()
    finally:
        os.close(fd)
    with open(path, 'rb') as f:
        assert f.read() == DUMP


def test_pipeline_uses_o_direct_until_the_tail(tmp_path):
    if not stream.O_DIRECT:
        pytest.skip('no O_DIRECT on this platform')
    fd = os.open(str(tmp_path / 'f.part'), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        pipe = StreamPipeline(fd, 0, ['sha256'], buffers=2, buffer_size=8192, threaded=False, direct=True)
        if not pipe.direct:
            pytest.skip('the file system of tmp_path refuses O_DIRECT')
        feed(pipe, b'x' * 16384)
        assert pipe.direct  # aligned so far
        feed(pipe, b'y' * 100)
        assert not pipe.direct  # the unaligned tail went through the page cache
        assert pipe.finish()['sha256'] == sha(b'x' * 16384 + b'y' * 100)
    finally:
        os.close(fd)


def test_pipeline_falls_back_when_o_direct_writes_are_refused(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    refused = []

    def pwrite(fd, data, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & stream.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, 'Invalid argument')
        return real_pwrite(fd, data, offset)
    monkeypatch.setattr(stream.os, 'pwrite', pwrite)
    path = str(tmp_path / 'f.part')
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        pipe = StreamPipeline(fd, 0, ['sha256'], buffers=2, buffer_size=8192, threaded=True, direct=True)
        if not pipe.direct:
            pipe.close()
            pytest.skip('the file system of tmp_path refuses O_DIRECT already at fcntl')
        feed(pipe, DUMP)
        assert pipe.finish()['sha256'] == DUMP_SHA
        assert not pipe.direct
    finally:
        os.close(fd)
    assert refused == [0]  # refused once, then buffered
    with open(path, 'rb') as f:
        assert f.read() == DUMP


def feed(pipe, data):
    view = memoryview(data)
    while len(view):
        buf = pipe.acquire()
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        pipe.submit(buf, n)
        view = view[n:]


def test_pipeline_stops_on_the_first_check_error(tmp_path):
    fd = os.open(str(tmp_path / 'f.part'), os.O_RDWR | os.O_CREAT, 0o600)
    pipe = StreamPipeline(fd, 0, ['sha256'], gzip=True, buffers=2, buffer_size=4096, threaded=True)
    try:
        with pytest.raises(StreamCheckError):
            feed(pipe, b'not gzip at all' * 1000)
            pipe.finish()
    finally:
        pipe.close()
        os.close(fd)


def test_zlib_is_what_we_think():
    # wbits=31 checks the gzip trailer (CRC-32 and length): the verifier relies on it.
    data = bytearray(gzip.compress(b'hello world' * 100, mtime=0))
    data[-8] ^= 1
    with pytest.raises(zlib.error):
        zlib.decompressobj(31).decompress(bytes(data))
