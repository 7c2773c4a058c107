# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/backup/files/labops_backup.py: retention as a pure function, and the program for real.

Retention is tested in-process on synthetic timestamps (the file is imported by path). Everything
else runs the program as a subprocess against temporary directories, with real commands
(``sh``, ``cat``, ``gzip``, ``zstd``, ``rsync``). The only fake is ``docker`` for stopping and
starting the app services around a restore: a shell script that records its arguments
(``LABOPS_BACKUP_DOCKER`` points the program at it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import fcntl
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.labops.services.tests.unit.utils import load_program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'backup', 'files', 'labops_backup.py')
UTC = datetime.timezone.utc


lb = load_program(SCRIPT)

needs_rsync = pytest.mark.skipif(shutil.which('rsync') is None, reason='rsync not installed (apt-get install rsync)')
needs_zstd = pytest.mark.skipif(shutil.which('zstd') is None, reason='zstd not installed (apt-get install zstd)')
COMPRESSIONS = ['none', 'gzip', pytest.param('zstd', marks=needs_zstd)]


def at(text):
    """'2025-03-10 13:00[:ss]' -> an aware UTC datetime."""
    fmt = '%Y-%m-%d %H:%M:%S' if text.count(':') == 2 else '%Y-%m-%d %H:%M'
    return datetime.datetime.strptime(text, fmt).replace(tzinfo=UTC)


# -- retention: the pure function ---------------------------------------------------------------

NIGHTLY_2025 = ['%s 03:00' % (datetime.date(2025, 1, 1) + datetime.timedelta(days=n)).isoformat() for n in range(100)]

RETENTION_CASES = [
    pytest.param(
        ['2025-03-10 01:00', '2025-03-10 13:00', '2025-03-11 01:00', '2025-03-11 23:59', '2025-03-12 00:00'],
        (2, 0, 0), ['2025-03-12 00:00', '2025-03-11 23:59'], id='several-per-day-newest-of-each-day'),
    pytest.param(
        ['2025-03-01 02:00', '2025-03-05 02:00', '2025-03-20 02:00', '2025-03-21 02:00'],
        (3, 0, 0), ['2025-03-21 02:00', '2025-03-20 02:00', '2025-03-05 02:00'], id='gaps-count-days-that-have-backups'),
    pytest.param(
        ['2025-03-01 02:00', '2025-03-01 05:00', '2025-03-02 02:00'],
        (30, 0, 0), ['2025-03-01 05:00', '2025-03-02 02:00'], id='count-beyond-history-one-per-day'),
    pytest.param(
        ['2024-12-31 23:59:59', '2025-01-01 00:00:00', '2025-01-01 00:00:01'],
        (2, 0, 0), ['2024-12-31 23:59:59', '2025-01-01 00:00:01'], id='daily-across-new-year-midnight'),
    pytest.param(
        # 2020-12-27 is Sunday of 2020-W52; 2020-12-28 .. 2021-01-03 is 2020-W53; 2021-01-04 starts 2021-W01
        ['2020-12-27 02:00', '2020-12-28 02:00', '2021-01-03 02:00', '2021-01-04 02:00'],
        (0, 3, 0), ['2021-01-04 02:00', '2021-01-03 02:00', '2020-12-27 02:00'], id='iso-week-53-across-the-year'),
    pytest.param(
        # 2018-12-31 (Monday) already belongs to 2019-W01
        ['2018-12-30 02:00', '2018-12-31 02:00', '2019-01-01 02:00'],
        (0, 2, 0), ['2019-01-01 02:00', '2018-12-30 02:00'], id='iso-week-1-starting-in-december'),
    pytest.param(
        ['2024-11-15 02:00', '2024-12-01 02:00', '2024-12-31 23:59', '2025-01-01 00:00', '2025-01-20 02:00'],
        (0, 0, 3), ['2025-01-20 02:00', '2024-12-31 23:59', '2024-11-15 02:00'], id='monthly-across-the-year'),
    pytest.param(
        ['2024-01-10 02:00', '2025-01-05 02:00', '2025-01-10 02:00'],
        (0, 0, 2), ['2025-01-10 02:00', '2024-01-10 02:00'], id='same-month-of-two-years-is-two-months'),
    pytest.param(
        ['2025-01-01 02:00', '2025-02-01 02:00', '2025-03-01 02:00'],
        (0, 0, 0), ['2025-03-01 02:00'], id='zero-counts-keep-only-the-newest'),
    pytest.param(
        ['2025-01-01 02:00', '2025-01-01 03:00', '2025-01-02 02:00'],
        (0, 1, 0), ['2025-01-02 02:00'], id='zero-daily-one-weekly'),
    pytest.param(
        ['2025-03-02 02:00', '2025-01-01 02:00', '2025-03-01 02:00', '2025-03-02 02:00'],
        (1, 0, 2), ['2025-03-02 02:00', '2025-01-01 02:00'], id='unsorted-with-duplicates'),
    pytest.param([], (7, 4, 6), [], id='no-backups'),
    pytest.param(
        NIGHTLY_2025, (7, 4, 6),
        ['2025-04-%02d 03:00' % day for day in range(4, 11)]
        + ['2025-03-30 03:00', '2025-03-23 03:00', '2025-03-31 03:00', '2025-02-28 03:00', '2025-01-31 03:00'],
        id='100-nightly-backups-7-4-6'),
]


@pytest.mark.parametrize('stamps, counts, expected', RETENTION_CASES)
def test_retention_keeps_the_expected_backups(stamps, counts, expected):
    kept = lb.retain([at(s) for s in stamps], *counts)
    assert sorted(kept) == sorted(at(s) for s in expected)


def test_retention_gives_the_reasons():
    kept = lb.retain([at(s) for s in NIGHTLY_2025], 7, 4, 6)
    assert kept[at('2025-04-10 03:00')] == ['newest', 'daily', 'weekly', 'monthly']
    assert kept[at('2025-04-06 03:00')] == ['daily', 'weekly']
    assert kept[at('2025-03-31 03:00')] == ['monthly']
    assert kept[at('2025-03-30 03:00')] == ['weekly']


def _reference_retain(stamps, daily, weekly, monthly):
    """Independent formulation: group by period, take the newest periods, the newest stamp of each."""
    kept = {max(stamps)} if stamps else set()
    for count, period_of in ((daily, lambda s: s.date()), (weekly, lambda s: s.isocalendar()[:2]),
                             (monthly, lambda s: (s.year, s.month))):
        groups = {}
        for stamp in stamps:
            groups.setdefault(period_of(stamp), []).append(stamp)
        newest_first = sorted(groups.values(), key=max, reverse=True)
        kept.update(max(group) for group in newest_first[:count])
    return kept


@pytest.mark.parametrize('seed', range(25))
def test_retention_matches_a_reference_on_random_histories(seed):
    rng = random.Random(seed)
    start = at('2019-11-01 00:00')
    stamps = [start + datetime.timedelta(seconds=rng.randrange(0, 3 * 366 * 86400)) for _index in range(rng.randrange(0, 400))]
    counts = (rng.randrange(0, 12), rng.randrange(0, 8), rng.randrange(0, 14))
    kept = set(lb.retain(stamps, *counts))
    assert kept == _reference_retain(stamps, *counts)
    assert len(kept) <= 1 + sum(counts)
    assert not stamps or max(stamps) in kept


# -- artifact names -------------------------------------------------------------------------------

def _store(extension='dump'):
    config = lb.Config.from_data(_config_data('/tmp/nowhere', extension=extension))
    return lb.ArtifactStore(config)


@pytest.mark.parametrize('name, compression', [
    ('20250101T020000Z.dump', 'none'), ('20250101T020000Z.dump.gz', 'gzip'), ('20250101T020000Z.dump.zst', 'zstd'),
])
def test_our_names_are_recognised(name, compression):
    artifact = _store().parse(name)
    assert artifact.stamp == at('2025-01-01 02:00') and artifact.compression == compression


@pytest.mark.parametrize('name', [
    '20250101T020000Z.dump.bak', '20250101T020000Z.sql', '20251301T020000Z.dump', 'latest.dump',
    '.20250101T020000Z.dump.partial', '20250101T020000Z.dump.sha256', '20250101T020000.dump', 'x20250101T020000Z.dump',
])
def test_other_names_are_not_ours(name):
    assert _store().parse(name) is None


# -- the program, for real --------------------------------------------------------------------------

def _config_data(tmp, **overrides):
    data = {
        'service': 'demo',
        'job': 'db',
        'command': ['sh', '-c', 'printf data'],
        'output': 'stdout',
        'extension': 'dump',
        'compress': 'none',
        'backup_root': os.path.join(str(tmp), 'backups'),
        'retention': {'daily': 7, 'weekly': 4, 'monthly': 6},
        'restore': {
            'command': ['sh', '-c', 'cat > "$0"', os.path.join(str(tmp), 'restored')],
            'input': 'stdin',
            'project_dir': os.path.join(str(tmp), 'project'),
            'stop_services': [],
        },
        'copy_to': None,
    }
    data.update(overrides)
    return data


class Job(object):
    """A job config in tmp_path and the program run on it as a subprocess."""

    def __init__(self, tmp_path, **overrides):
        self.tmp = tmp_path
        self.data = _config_data(tmp_path, **overrides)
        self.config_path = str(tmp_path / 'job.json')
        self.restored = tmp_path / 'restored'
        self.docker_log = tmp_path / 'docker.log'
        (tmp_path / 'project').mkdir()

    @property
    def dir(self):
        return os.path.join(self.data['backup_root'], self.data['service'], self.data['job'])

    def write(self):
        with open(self.config_path, 'w') as handle:
            json.dump(self.data, handle)
        os.chmod(self.config_path, 0o600)

    def start(self, action, *args, **kwargs):
        self.write()
        env = dict(os.environ, LABOPS_BACKUP_DOCKER=str(self.tmp / 'fake-docker'))
        env.update(kwargs.pop('env', {}))
        return subprocess.Popen([sys.executable, '-I', '-S', SCRIPT, action, self.config_path] + list(args), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, **kwargs)

    def run(self, action, *args, **kwargs):
        process = self.start(action, *args, **kwargs)
        out, err = process.communicate(timeout=60)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def files(self):
        """{name: (bytes, mtime_ns)} of everything in the job directory."""
        if not os.path.isdir(self.dir):
            return {}
        result = {}
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            with open(path, 'rb') as handle:
                result[name] = (handle.read(), os.stat(path).st_mtime_ns)
        return result

    def artifacts(self):
        store = lb.ArtifactStore(lb.Config.from_data(self.data))
        return sorted(name for name in os.listdir(self.dir) if store.parse(name))

    def add_backup(self, stamp, content=b'old', checksum=True, suffix=''):
        """A synthetic earlier backup named for ``stamp`` ('2025-03-10 02:00')."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        name = '%s.%s%s' % (at(stamp).strftime('%Y%m%dT%H%M%SZ'), self.data['extension'], suffix)
        path = os.path.join(self.dir, name)
        with open(path, 'wb') as handle:
            handle.write(content)
        if checksum:
            with open(path + '.sha256', 'w') as handle:
                handle.write('%s  %s\n' % (hashlib.sha256(content).hexdigest(), name))
        return name

    def fake_docker(self, fail_on=''):
        script = self.tmp / 'fake-docker'
        script.write_text('#!/bin/sh\nprintf "docker %%s\\n" "$*" >> "%s"\ncase " $* " in *" %s "*) exit 1;; esac\nexit 0\n'
                          % (self.docker_log, fail_on or 'no-such-action'))
        script.chmod(0o755)

    def docker_calls(self):
        return self.docker_log.read_text().splitlines() if self.docker_log.exists() else []


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _sha256_file(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _assert_one_error_line(result, *fragments):
    errors = [line for line in result.stderr.splitlines() if line.startswith('labops-backup: ') and ': error: ' in line]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], result.stderr
    assert 'Traceback' not in result.stderr
    return errors[0]


def _payload():
    """Every byte value, and enough of them to fill several pipe buffers."""
    return bytes(range(256)) * 16 + os.urandom(300000) + b'\x00\n\r\xff'


def test_run_writes_artifact_checksum_and_private_modes(tmp_path):
    job = Job(tmp_path)
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    name = os.path.basename(path)
    assert os.path.dirname(path) == job.dir
    assert lb.ArtifactStore(lb.Config.from_data(job.data)).parse(name) is not None
    with open(path, 'rb') as handle:
        assert handle.read() == b'data'
    with open(path + '.sha256') as handle:
        assert handle.read() == '%s  %s\n' % (hashlib.sha256(b'data').hexdigest(), name)
    for directory in (job.data['backup_root'], os.path.dirname(job.dir), job.dir):
        assert _mode(directory) == 0o700
    assert _mode(path) == 0o600 and _mode(path + '.sha256') == 0o600
    assert sorted(os.listdir(job.dir)) == [name, name + '.sha256']
    # sha256sum agrees with the checksum file
    check = subprocess.run(['sha256sum', '-c', name + '.sha256'], cwd=job.dir, stdout=subprocess.PIPE, check=False)
    assert check.returncode == 0


def test_existing_job_directory_is_tightened_to_0700(tmp_path):
    job = Job(tmp_path)
    os.makedirs(job.dir)
    os.chmod(job.dir, 0o755)
    assert job.run('run').returncode == 0
    assert _mode(job.dir) == 0o700


def test_a_taken_second_is_skipped(tmp_path):
    job = Job(tmp_path)
    store = lb.ArtifactStore(lb.Config.from_data(job.data))
    job.add_backup('2025-03-01 02:00:00')
    with open(os.path.join(job.dir, '.20250301T020001Z.dump.gz.partial'), 'w'):
        pass  # a backup in progress also holds its second
    clock = iter([at('2025-03-01 02:00:00'), at('2025-03-01 02:00:01'), at('2025-03-01 02:00:02')])
    sleeps = []
    assert store.new_name('.gz', clock=lambda: next(clock), sleep=sleeps.append) == '20250301T020002Z.dump.gz'
    assert len(sleeps) == 2 and all(0 < pause <= 1.01 for pause in sleeps)
    with pytest.raises(lb.BackupError, match='cannot find a free file name'):
        store.new_name('', clock=lambda: at('2025-03-01 02:00:00'), sleep=sleeps.append)  # a clock that does not move


def test_same_second_does_not_overwrite(tmp_path):
    job = Job(tmp_path)
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    taken = [job.add_backup((now + datetime.timedelta(seconds=n)).strftime('%Y-%m-%d %H:%M:%S'), b'earlier')
             for n in (0, 1)]
    before = job.files()
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    name = os.path.basename(result.stdout.strip())
    assert name not in taken and name > max(taken)
    assert job.files()[name][0] == b'data'
    # the earlier ones were not overwritten; retention (one per day) removed them afterwards
    for old in taken:
        assert before[old][0] == b'earlier' and 'remove %s' % old in result.stderr


FAILING = ['sh', '-c', 'printf partial-data; echo "pg_dump: error: connection refused" >&2; exit 3']
SILENT = ['sh', '-c', 'exit 0']


@pytest.mark.parametrize('command, fragment, compress', [
    (FAILING, 'exited with status 3', 'none'),
    (FAILING, 'exited with status 3', 'gzip'),
    pytest.param(FAILING, 'exited with status 3', 'zstd', marks=needs_zstd),
    (SILENT, 'wrote nothing', 'none'),
    # gzip and zstd turn no input into a non-empty file: emptiness is checked on the decompressed data
    (SILENT, 'wrote nothing', 'gzip'),
    pytest.param(SILENT, 'wrote nothing', 'zstd', marks=needs_zstd),
    (['sh', '-c', 'printf x; kill -9 $$'], 'killed by signal SIGKILL', 'none'),
    (['/nonexistent/pg_dump'], 'cannot start the backup command', 'gzip'),
])
def test_failed_backup_leaves_previous_backups_untouched_and_prunes_nothing(tmp_path, command, fragment, compress):
    job = Job(tmp_path, command=command, compress=compress, retention={'daily': 1, 'weekly': 0, 'monthly': 0})
    for day in ('2025-03-01', '2025-03-02', '2025-03-03'):
        job.add_backup(day + ' 02:00')
    job.add_backup('2025-03-03 01:00', checksum=False)
    with open(os.path.join(job.dir, 'README.txt'), 'w') as handle:
        handle.write('not ours')
    before = job.files()
    result = job.run('run')
    assert result.returncode == 1
    line = _assert_one_error_line(result, 'demo/db', 'backup failed', fragment, 'nothing was pruned')
    assert result.stdout == ''
    assert job.files() == before  # same names, bytes and mtimes: no partial left, nothing pruned
    if 'status 3' in fragment:
        assert 'pg_dump: error: connection refused' in result.stderr  # the command's stderr reaches the journal
        assert result.stderr.index('connection refused') < result.stderr.index(line)


def test_path_output(tmp_path):
    job = Job(tmp_path, output='path', command=['sh', '-c', 'echo "to the journal"; printf "%s" "$BACKUP_OUTPUT" > "$BACKUP_OUTPUT"'])
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    assert 'to the journal' in result.stderr and result.stdout.count('\n') == 1
    path = result.stdout.strip()
    with open(path) as handle:
        given = handle.read()
    assert os.path.dirname(given) == job.dir and os.path.basename(given).startswith('.')
    assert _mode(path) == 0o600
    assert sorted(os.listdir(job.dir)) == [os.path.basename(path), os.path.basename(path) + '.sha256']


@pytest.mark.parametrize('command, fragment, compress', [
    (['sh', '-c', 'true'], '$BACKUP_OUTPUT is empty', 'none'),
    (['sh', '-c', 'true'], '$BACKUP_OUTPUT is empty', 'gzip'),
    (['sh', '-c', 'rm -f "$BACKUP_OUTPUT"'], 'left no file', 'none'),
    (['sh', '-c', 'printf x > "$BACKUP_OUTPUT"; exit 4'], 'exited with status 4', 'gzip'),
])
def test_path_output_failures(tmp_path, compress, command, fragment):
    job = Job(tmp_path, output='path', compress=compress, command=command)
    job.add_backup('2025-03-01 02:00')
    before = job.files()
    result = job.run('run')
    assert result.returncode == 1
    _assert_one_error_line(result, fragment)
    assert job.files() == before


def test_missing_compressor_is_a_clear_error_before_anything_runs(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    os.symlink(shutil.which('sh'), str(bin_dir / 'sh'))
    marker = tmp_path / 'ran'
    job = Job(tmp_path, compress='zstd', command=['sh', '-c', 'touch "$0"; printf data', str(marker)])
    result = job.run('run', env={'PATH': str(bin_dir)})
    assert result.returncode == 1
    _assert_one_error_line(result, 'compress "zstd" needs the zstd program', 'install the zstd package')
    assert not marker.exists() and not os.path.exists(job.dir)


@pytest.mark.parametrize('output', ['stdout', 'path'])
def test_failing_compressor_fails_the_run(tmp_path, output):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'zstd').write_text('#!/bin/sh\ncat > /dev/null\necho "zstd: write error" >&2\nexit 1\n')
    (bin_dir / 'zstd').chmod(0o755)
    job = Job(tmp_path, compress='zstd', output=output)
    if output == 'path':
        job.data['command'] = ['sh', '-c', 'printf data > "$BACKUP_OUTPUT"']
    job.add_backup('2025-03-01 02:00')
    before = job.files()
    result = job.run('run', env={'PATH': '%s:%s' % (bin_dir, os.environ['PATH'])})
    assert result.returncode == 1
    _assert_one_error_line(result, 'the compressor (%s) exited with status 1' % (bin_dir / 'zstd'))
    assert job.files() == before


def test_successful_run_prunes_by_retention(tmp_path):
    job = Job(tmp_path, retention={'daily': 2, 'weekly': 0, 'monthly': 0})
    old = [job.add_backup('2025-03-%02d 02:00' % day) for day in (1, 2, 3)]
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    new = os.path.basename(result.stdout.strip())
    assert job.artifacts() == sorted([old[2], new])
    assert sorted(os.listdir(job.dir)) == sorted([old[2], old[2] + '.sha256', new, new + '.sha256'])
    assert 'remove %s' % old[0] in result.stderr and 'keep %s (daily)' % old[2] in result.stderr


def test_prune_removes_only_ours(tmp_path):
    job = Job(tmp_path, retention={'daily': 1, 'weekly': 1, 'monthly': 2})
    names = {stamp: job.add_backup(stamp) for stamp in (
        '2025-01-15 02:00', '2025-01-31 02:00', '2025-02-20 02:00', '2025-02-26 02:00', '2025-02-27 02:00')}
    gz = job.add_backup('2025-02-10 02:00', suffix='.gz')
    foreign = ['notes.txt', '20250101T020000Z.dump.bak', 'latest.dump', '20250101T020000Z.sql']
    for name in foreign:
        with open(os.path.join(job.dir, name), 'w') as handle:
            handle.write('not ours')
    fresh_partial = '.%s.partial' % names['2025-02-27 02:00'].replace('0227', '0228')
    stale_partial = '.20250101T020000Z.dump.partial'
    orphan_old, orphan_fresh = '20241201T020000Z.dump.sha256', '20241202T020000Z.dump.sha256'
    for name in (fresh_partial, stale_partial, orphan_old, orphan_fresh):
        with open(os.path.join(job.dir, name), 'w') as handle:
            handle.write('x')
    two_days_ago = time.time() - 2 * 86400
    for name in (stale_partial, orphan_old):
        os.utime(os.path.join(job.dir, name), (two_days_ago, two_days_ago))

    dry = job.run('prune', '--dry-run')
    assert dry.returncode == 0, dry.stderr
    assert 'would remove %s' % names['2025-01-15 02:00'] in dry.stdout
    assert len(job.files()) == 5 * 2 + 2 + len(foreign) + 4  # nothing removed

    result = job.run('prune')
    assert result.returncode == 0, result.stderr
    # newest + daily + weekly: 02-27; monthly: 02-27 (Feb), 01-31 (Jan)
    kept = [names['2025-02-27 02:00'], names['2025-01-31 02:00']]
    assert job.artifacts() == sorted(kept)
    expected = set(kept) | {name + '.sha256' for name in kept} | set(foreign) | {fresh_partial, orphan_fresh}
    assert set(os.listdir(job.dir)) == expected
    assert 'keep %s (newest, daily, weekly, monthly)' % names['2025-02-27 02:00'] in result.stdout
    assert 'remove %s' % gz in result.stdout and 'remove %s' % stale_partial in result.stdout


def test_prune_waits_for_nobody_and_refuses_while_locked(tmp_path):
    job = Job(tmp_path)
    job.add_backup('2025-03-01 02:00')
    fd = os.open(job.dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for action in ('run', 'prune'):
            result = job.run(action)
            assert result.returncode == 1
            _assert_one_error_line(result, 'in progress')
    finally:
        os.close(fd)
    assert job.run('prune').returncode == 0


def test_sigterm_removes_the_partial_file_and_fails(tmp_path):
    job = Job(tmp_path, command=['sh', '-c', 'printf partial-data; exec sleep 30'])
    job.add_backup('2025-03-01 02:00')
    before = job.files()
    process = job.start('run')
    deadline = time.time() + 10
    while time.time() < deadline:
        partials = [name for name in os.listdir(job.dir) if name.endswith('.partial')]
        if partials and os.path.getsize(os.path.join(job.dir, partials[0])) > 0:
            break
        time.sleep(0.02)
    else:
        process.kill()
        pytest.fail('the backup never started writing')
    signalled = time.time()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert time.time() - signalled < lb.CHILD_STOP_SECONDS / 2  # the command got SIGTERM at once, no kill needed
    assert process.returncode == 1
    _assert_one_error_line(subprocess.CompletedProcess([], 1, out, err), 'interrupted by SIGTERM')
    assert job.files() == before


def test_list_newest_first_with_checksum_state(tmp_path):
    job = Job(tmp_path)
    first = job.add_backup('2025-03-01 02:00', b'1' * 2048)
    second = job.add_backup('2025-03-02 02:00', checksum=False)
    third = job.add_backup('2025-03-03 02:00', suffix='.gz')
    result = job.run('list')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ['NAME', 'BYTES', 'SIZE', 'SHA256']
    assert [line.split()[0] for line in lines[1:]] == [third, second, first]
    assert lines[1].split()[-1] == 'yes' and lines[2].split()[-1] == 'MISSING'
    assert lines[3].split()[1:] == ['2048', '2.0', 'KiB', 'yes']


def test_list_without_backups(tmp_path):
    result = Job(tmp_path).run('list')
    assert result.returncode == 0 and result.stdout.startswith('no backups of demo/db')


def test_verify(tmp_path):
    job = Job(tmp_path)
    old = job.add_backup('2025-03-01 02:00', b'old')
    new = job.add_backup('2025-03-02 02:00', b'new')
    result = job.run('verify')
    assert result.returncode == 0 and result.stdout.startswith('OK %s' % os.path.join(job.dir, new))
    with open(os.path.join(job.dir, old), 'ab') as handle:
        handle.write(b'!')
    result = job.run('verify', old)
    assert result.returncode == 1
    _assert_one_error_line(result, 'checksum mismatch for %s' % os.path.join(job.dir, old))
    os.unlink(os.path.join(job.dir, new + '.sha256'))
    _assert_one_error_line(job.run('verify'), 'has no checksum file')
    _assert_one_error_line(job.run('verify', 'latest.dump'), 'is not a backup of demo/db')


@pytest.mark.parametrize('mode', ['stdout-stdin', 'path-path'])
@pytest.mark.parametrize('compress', COMPRESSIONS)
def test_artifact_round_trip_gives_back_exactly_the_bytes(tmp_path, mode, compress):
    """Back up binary data (stdout or $BACKUP_OUTPUT), check what is stored, restore it (stdin or $BACKUP_INPUT)."""
    payload = _payload()
    source = tmp_path / 'source.bin'
    source.write_bytes(payload)
    job = Job(tmp_path, compress=compress)
    if mode == 'stdout-stdin':
        job.data['command'] = ['cat', str(source)]
    else:
        job.data.update(output='path', command=['sh', '-c', 'cat "$0" > "$BACKUP_OUTPUT"', str(source)])
        job.data['restore'].update(input='path', command=['sh', '-c', 'cat "$BACKUP_INPUT" > "$0"', str(job.restored)])
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    assert path.endswith('.dump' + {'none': '', 'gzip': '.gz', 'zstd': '.zst'}[compress])
    with open(path, 'rb') as handle:
        stored = handle.read()
    if compress == 'none':
        assert stored == payload
    elif compress == 'gzip':
        assert gzip.decompress(stored) == payload
    else:
        assert subprocess.run(['zstd', '-dc'], input=stored, stdout=subprocess.PIPE, check=True).stdout == payload
    with open(path + '.sha256') as handle:
        assert handle.read().split()[0] == hashlib.sha256(stored).hexdigest()
    assert sorted(os.listdir(job.dir)) == sorted([os.path.basename(path), os.path.basename(path) + '.sha256'])

    result = job.run('restore', '--yes')
    assert result.returncode == 0, result.stderr
    assert job.restored.read_bytes() == payload
    assert sorted(os.listdir(job.dir)) == sorted([os.path.basename(path), os.path.basename(path) + '.sha256'])


def test_restore_chooses_newest_by_default_or_the_named_one(tmp_path):
    job = Job(tmp_path)
    one = job.add_backup('2025-03-01 02:00', b'one')
    job.add_backup('2025-03-02 02:00', b'two')
    assert job.run('restore', '--yes').returncode == 0
    assert job.restored.read_bytes() == b'two'
    assert job.run('restore', one, '--yes').returncode == 0
    assert job.restored.read_bytes() == b'one'
    copy = tmp_path / 'elsewhere'
    copy.mkdir()
    for name in (one, one + '.sha256'):
        shutil.copy(os.path.join(job.dir, name), str(copy / name))
    job.restored.unlink()
    assert job.run('restore', str(copy / one), '--yes').returncode == 0
    assert job.restored.read_bytes() == b'one'


def test_restore_refuses_without_yes(tmp_path):
    job = Job(tmp_path)
    job.data['restore']['stop_services'] = ['web']
    job.fake_docker()
    job.add_backup('2025-03-01 02:00')
    result = job.run('restore')
    assert result.returncode == 2
    _assert_one_error_line(result, 'add --yes to confirm')
    assert not job.restored.exists() and job.docker_calls() == []


@pytest.mark.parametrize('damage', ['corrupt', 'no-checksum', 'wrong-name-in-checksum'])
def test_restore_refuses_an_unverified_artifact_without_running_anything(tmp_path, damage):
    job = Job(tmp_path)
    job.data['restore']['stop_services'] = ['web']
    job.fake_docker()
    name = job.add_backup('2025-03-01 02:00', b'precious')
    path = os.path.join(job.dir, name)
    if damage == 'corrupt':
        with open(path, 'r+b') as handle:
            handle.write(b'P')
    elif damage == 'no-checksum':
        os.unlink(path + '.sha256')
    else:
        with open(path + '.sha256', 'w') as handle:
            handle.write('%s  other.dump\n' % hashlib.sha256(b'precious').hexdigest())
    result = job.run('restore', '--yes')
    assert result.returncode == 1
    fragment = {'corrupt': 'checksum mismatch', 'no-checksum': 'no checksum file',
                'wrong-name-in-checksum': 'is the checksum of other.dump'}[damage]
    _assert_one_error_line(result, fragment)
    assert not job.restored.exists() and job.docker_calls() == []


def test_restore_stops_and_starts_services_around_the_restore(tmp_path):
    job = Job(tmp_path)
    log = str(job.docker_log)
    job.data['restore'].update(stop_services=['web', 'worker'],
                               command=['sh', '-c', 'cat > /dev/null; echo restore >> "$0"', log])
    job.fake_docker()
    job.add_backup('2025-03-01 02:00')
    result = job.run('restore', '--yes')
    assert result.returncode == 0, result.stderr
    project = job.data['restore']['project_dir']
    assert job.docker_calls() == [
        'docker compose --project-directory %s stop web worker' % project,
        'restore',
        'docker compose --project-directory %s start web worker' % project,
    ]


def test_failed_restore_still_starts_the_services_and_reports_the_status(tmp_path):
    job = Job(tmp_path)
    job.data['restore'].update(stop_services=['web', 'worker'], command=['sh', '-c', 'cat > /dev/null; exit 5'])
    job.fake_docker()
    job.add_backup('2025-03-01 02:00')
    result = job.run('restore', '--yes')
    assert result.returncode == 1
    _assert_one_error_line(result, 'restore failed', 'exited with status 5')
    project = job.data['restore']['project_dir']
    assert job.docker_calls() == ['docker compose --project-directory %s %s web worker' % (project, action)
                                  for action in ('stop', 'start')]


def test_failed_stop_runs_no_restore_but_starts_the_services(tmp_path):
    job = Job(tmp_path)
    job.data['restore']['stop_services'] = ['web']
    job.fake_docker(fail_on='stop')
    job.add_backup('2025-03-01 02:00')
    result = job.run('restore', '--yes')
    assert result.returncode == 1
    _assert_one_error_line(result, 'docker compose stop web exited with status 1')
    assert not job.restored.exists()
    assert [call.split()[-2] for call in job.docker_calls()] == ['stop', 'start']


@needs_rsync
def test_copy_to_a_local_rsync_target(tmp_path):
    target = tmp_path / 'mirror'
    job = Job(tmp_path, copy_to={'rsync': str(target)})
    old = job.add_backup('2025-03-01 02:00')
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    new = os.path.basename(result.stdout.strip())
    copied = target / 'demo' / 'db'
    assert sorted(os.listdir(str(copied))) == sorted([old, old + '.sha256', new, new + '.sha256'])
    assert (copied / new).read_bytes() == b'data'
    assert subprocess.run(['sha256sum', '-c', new + '.sha256'], cwd=str(copied), stdout=subprocess.PIPE, check=False).returncode == 0


@needs_rsync
def test_failed_copy_fails_the_run_but_keeps_the_new_backup(tmp_path):
    target = tmp_path / 'missing' / 'deeper' / 'mirror'
    job = Job(tmp_path, copy_to={'rsync': str(target), 'args': ['-a']})
    result = job.run('run')
    assert result.returncode == 1
    path = result.stdout.strip()
    _assert_one_error_line(result, 'copy to %s failed' % target, 'the new backup %s is kept locally' % path)
    with open(path, 'rb') as handle:
        assert handle.read() == b'data'
    assert job.run('verify').returncode == 0


@pytest.mark.parametrize('change, fragment', [
    (lambda d: d.pop('command'), "key 'command' is missing"),
    (lambda d: d.update(command='pg_dump -Fc'), "key 'command' must be a list of strings"),
    (lambda d: d.update(command=[]), "key 'command' must not be empty"),
    (lambda d: d.update(output='file'), "key 'output' must be one of stdout, path"),
    (lambda d: d.update(compress='bzip2'), "key 'compress' must be one of none, gzip, zstd"),
    (lambda d: d.update(retension={}), "key 'retension' is not a known key"),
    (lambda d: d['retention'].update(daily=-1), "key 'retention.daily' must be an integer >= 0"),
    (lambda d: d['retention'].update(weekly=True), "key 'retention.weekly' must be an integer >= 0"),
    (lambda d: d['retention'].pop('monthly'), "key 'retention.monthly' is missing"),
    (lambda d: d.update(service='../etc'), "key 'service'"),
    (lambda d: d.update(job=''), "key 'job' must be a non-empty string"),
    (lambda d: d.update(extension='dump/x'), "key 'extension'"),
    (lambda d: d.update(extension='sha256'), "key 'extension' must not end in"),
    (lambda d: d.update(backup_root='var/backups'), "key 'backup_root' must be an absolute path"),
    (lambda d: d['restore'].update(input='file'), "key 'restore.input' must be one of stdin, path"),
    (lambda d: d['restore'].update(stop_services=['web'], project_dir=None), "key 'restore.project_dir'"),
    (lambda d: d['restore'].update(stop_services='web'), "key 'restore.stop_services' must be a list"),
    (lambda d: d.update(copy_to={'rsync': ''}), "key 'copy_to.rsync' must be a non-empty string"),
    (lambda d: d.update(copy_to={'rsync': 'h:/x', 'delete': True}), "key 'copy_to.delete' is not a known key"),
    (lambda d: d.update(restore=['x']), "key 'restore' must be a JSON object"),
])
def test_bad_config_names_the_key(tmp_path, change, fragment):
    job = Job(tmp_path)
    change(job.data)
    job.write()
    with pytest.raises(lb.BackupError) as failure:
        lb.Config.load(job.config_path)
    assert str(failure.value).startswith('config %s: ' % job.config_path)
    assert fragment in str(failure.value)


def test_bad_config_fails_the_run_before_anything_happens(tmp_path):
    marker = tmp_path / 'ran'
    job = Job(tmp_path, command=['sh', '-c', 'touch "$0"; printf data', str(marker)])
    job.data['retention']['daily'] = '7'
    result = job.run('run')
    assert result.returncode == 1
    _assert_one_error_line(result, 'config %s' % job.config_path, "key 'retention.daily' must be an integer >= 0, got \"7\"")
    assert not (tmp_path / 'backups').exists() and not marker.exists()


def test_unreadable_or_invalid_config(tmp_path):
    missing = subprocess.run([sys.executable, '-I', '-S', SCRIPT, 'run', str(tmp_path / 'nope.json')],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert missing.returncode == 1
    _assert_one_error_line(missing, 'cannot read config')
    bad = tmp_path / 'bad.json'
    bad.write_text('{"service": "demo",}')
    invalid = subprocess.run([sys.executable, '-I', '-S', SCRIPT, 'list', str(bad)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert invalid.returncode == 1
    _assert_one_error_line(invalid, 'is not valid JSON')


def test_no_restore_section(tmp_path):
    job = Job(tmp_path, restore=None)
    job.add_backup('2025-03-01 02:00')
    result = job.run('restore', '--yes')
    assert result.returncode == 1
    _assert_one_error_line(result, 'no "restore" section')


@pytest.mark.parametrize('argv', [[], ['backup', 'x.json'], ['prune', 'x.json', '--force']])
def test_usage_errors_exit_2(argv):
    result = subprocess.run([sys.executable, '-I', '-S', SCRIPT] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, check=False)
    assert result.returncode == 2
    assert 'usage' in result.stderr and 'Traceback' not in result.stderr


# -- metrics and list --json (read by the status role) ------------------------------------------

def _metrics(path):
    """{'name{labels}': value} of a textfile, checking every sample has HELP and TYPE lines."""
    samples, declared = {}, set()
    with open(path) as handle:
        for line in handle.read().splitlines():
            if line.startswith('# TYPE '):
                declared.add(line.split()[2])
            elif not line.startswith('#'):
                key, value = line.rsplit(' ', 1)
                assert key.split('{')[0] in declared, line
                samples[key] = int(value)
    return samples


def test_run_writes_the_metrics_file_on_success_and_on_failure(tmp_path):
    metrics = tmp_path / 'textfile' / 'labops_backup_demo_db.prom'
    metrics.parent.mkdir()
    job = Job(tmp_path, metrics_file=str(metrics))
    old = job.add_backup('2025-03-10 02:00')
    before = int(time.time())
    result = job.run('run')
    assert result.returncode == 0, result.stderr
    newest = os.path.basename(result.stdout.strip())
    labels = '{service="demo",job="db"}'
    values = _metrics(str(metrics))
    assert values['labops_backup_last_run_success' + labels] == 1
    assert values['labops_backup_artifacts' + labels] == 2
    assert values['labops_backup_newest_bytes' + labels] == 4
    stamp = lb.parse_stamp(newest.split('.')[0])
    assert values['labops_backup_newest_timestamp_seconds' + labels] == int(stamp.timestamp())
    assert before <= values['labops_backup_last_run_timestamp_seconds' + labels] <= time.time() + 1
    assert _mode(str(metrics)) == 0o644

    job.data['command'] = ['sh', '-c', 'exit 3']
    result = job.run('run')
    assert result.returncode == 1
    _assert_one_error_line(result, 'backup failed')
    values = _metrics(str(metrics))
    assert values['labops_backup_last_run_success' + labels] == 0
    assert values['labops_backup_newest_timestamp_seconds' + labels] == int(stamp.timestamp())
    assert sorted(os.listdir(str(metrics.parent))) == ['labops_backup_demo_db.prom']
    assert old in job.artifacts()


def test_a_metrics_file_that_cannot_be_written_does_not_fail_the_backup(tmp_path):
    job = Job(tmp_path, metrics_file=str(tmp_path / 'missing-folder' / 'x.prom'))
    result = job.run('run')
    assert result.returncode == 0
    assert 'could not write the metrics file' in result.stderr
    assert len(job.artifacts()) == 1


def test_metrics_file_must_be_an_absolute_path(tmp_path):
    with pytest.raises(lb.BackupError, match="'metrics_file' must be an absolute path"):
        lb.Config.from_data(_config_data(tmp_path, metrics_file='relative.prom'))


def test_list_json_gives_the_artifacts_newest_first(tmp_path):
    job = Job(tmp_path)
    first = job.add_backup('2025-03-10 02:00', content=b'12345')
    second = job.add_backup('2025-03-11 02:00', checksum=False)
    result = job.run('list', '--json')
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [item['name'] for item in listed] == [second, first]
    assert listed[1] == {'name': first, 'path': os.path.join(job.dir, first), 'bytes': 5,
                         'timestamp': int(at('2025-03-10 02:00').timestamp()), 'checksum': True}
    assert listed[0]['checksum'] is False
    (tmp_path / 'other').mkdir()
    assert json.loads(Job(tmp_path / 'other').run('list', '--json').stdout) == []
