# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/spyglass_export/files/labops_spyglass_export_load.py, for real.

The parsing helpers are tested in-process (the file is imported by path). Everything else runs
the program as a subprocess, as the role does on the host, against a private MariaDB server
(tests/unit/mariadb_server.py: Debian's mariadb-server binaries) with the generated Spyglass-like
export (tests/fixtures/spyglass_export/generate_export.py) sanitised by the collection's
mysql_export_sanitize class. In the role the client is
``docker compose exec -T db sh -c 'MYSQL_PWD=... exec mysql -uroot --binary-mode'``; here it is
the server's own ``mariadb`` client with the same options. Every table is compared with the
generator's manifest: row count and a fingerprint of every value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

from ..mariadb_server import MariaDBServer
from ansible_collections.labops.services.plugins.module_utils._mysql_export_sanitize import (
    MysqlExportSanitizer,
    SanitizeOptions,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'spyglass_export', 'files', 'labops_spyglass_export_load.py')
GENERATOR = os.path.join(ROOT, 'tests', 'fixtures', 'spyglass_export', 'generate_export.py')
DATABASES = ('common_interval', 'common_lab', 'common_nwbfile', 'common_session', 'spikesorting_recording')


def _import(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


loader = _import(SCRIPT, 'labops_spyglass_export_load')
generator = _import(GENERATOR, 'generate_export')
with open(os.path.join(ROOT, 'roles', 'spyglass_export', 'defaults', 'main.yml')) as _defaults:
    # The role's own default column lengths (upstream's list).
    SPYGLASS_LENGTHS = yaml.safe_load(_defaults)['spyglass_export_column_lengths']


# -- in-process: reading the client's errors ----------------------------------------------------

@pytest.mark.parametrize('stderr, expected', [
    ('ERROR 1071 (42000) at line 31: Specified key was too long; max key length is 3072 bytes\n',
     {'code': '1071', 'state': '42000', 'line': 31, 'message': 'Specified key was too long; max key length is 3072 bytes'}),
    ('--------------\nCREATE TABLE a (\n--------------\n\nERROR 1064 (42000) at line 7: You have an error\n',
     {'code': '1064', 'state': '42000', 'line': 7, 'message': 'You have an error'}),
    ("ERROR 2002 (HY000): Can't connect to local server through socket '/x' (2)\n",
     {'code': '2002', 'state': 'HY000', 'line': None, 'message': "Can't connect to local server through socket '/x' (2)"}),
    ('mysql: [Warning] something\nERROR 1273 (HY000) at line 2: Unknown collation\nERROR 9 at line 3: later\n',
     {'code': '1273', 'state': 'HY000', 'line': 2, 'message': 'Unknown collation'}),
])
def test_parse_client_error(stderr, expected):
    assert loader.parse_client_error(stderr) == expected


@pytest.mark.parametrize('stderr', ['', 'service "db" is not running\n', 'ERRORS happen\n', 'an ERROR 1071 in prose\n'])
def test_parse_client_error_none(stderr):
    assert loader.parse_client_error(stderr) is None


@pytest.mark.parametrize('chunk', [1, 3, 7, 1 << 20])
def test_line_excerpt(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(loader, 'CHUNK', chunk)
    path = tmp_path / 'f.sql'
    path.write_bytes(b'first\n\nthird line\r\n' + b'x' * 500 + b'\nlast')
    assert loader.line_excerpt(str(path), 1) == 'first'
    assert loader.line_excerpt(str(path), 2) == ''
    assert loader.line_excerpt(str(path), 3) == 'third line'
    assert loader.line_excerpt(str(path), 4, limit=10) == 'x' * 10 + '...'
    assert loader.line_excerpt(str(path), 5) == 'last'
    assert loader.line_excerpt(str(path), 6) is None
    assert loader.line_excerpt(str(path), 0) is None
    assert loader.line_excerpt(str(tmp_path / 'missing'), 1) is None


# -- the program against MariaDB -----------------------------------------------------------------

@pytest.fixture(scope='module')
def server(tmp_path_factory):
    with MariaDBServer.start(str(tmp_path_factory.mktemp('mariadb'))) as started:
        yield started


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('export'))
    manifest = generator.generate(out)
    return out, manifest


class Env(object):
    def __init__(self, server, generated, tmp_path):
        self.server = server
        self.source, self.manifest = generated
        self.tmp = tmp_path
        self.sanitized = tmp_path / 'sanitized'
        self.sanitized.mkdir()
        self.markers = tmp_path / 'loaded'
        self.config = tmp_path / 'load.json'
        self.client = [server.binaries['client'], '--no-defaults', '--socket=' + server.socket, '--user=root',
                       '--binary-mode', '--default-character-set=utf8mb4']
        server.client(['-e', 'SET FOREIGN_KEY_CHECKS = 0; ' + ' '.join(
            'DROP DATABASE IF EXISTS `%s`;' % database for database in DATABASES)])

    def sanitise(self, names, folder='export', column_lengths=None):
        paths = []
        for name in names:
            dest = str(self.sanitized / name)
            MysqlExportSanitizer(os.path.join(self.source, folder, name), dest=dest, options=SanitizeOptions(
                column_lengths=SPYGLASS_LENGTHS if column_lengths is None else column_lengths)).run()
            paths.append(dest)
        return paths

    def configure(self, files, client=None):
        self.config.write_text(json.dumps({'files': files, 'markers': str(self.markers),
                                           'client': client or self.client}))

    def run(self, command='load', *extra):
        proc = subprocess.run([sys.executable, SCRIPT, command, str(self.config)] + list(extra),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300, check=False)
        return proc

    def ok(self, command='load', *extra):
        proc = self.run(command, *extra)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ''
        return json.loads(proc.stdout)

    def fingerprints(self):
        found = {}
        for table in self.manifest['tables']:
            rows = self.server.query("SET SESSION group_concat_max_len = 1073741824, time_zone = '+00:00'; "
                                     + table['fingerprint_sql'])
            found[(table['database'], table['table'])] = (int(rows[0][0]), rows[0][1])
        return found

    def expected(self):
        return dict(((t['database'], t['table']), (t['count'], t['fingerprint'])) for t in self.manifest['tables'])

    def markers_present(self):
        return sorted(p[:-5] for p in os.listdir(str(self.markers)) if p.endswith('.json')) \
            if self.markers.exists() else []


@pytest.fixture
def env(server, generated, tmp_path):
    return Env(server, generated, tmp_path)


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_loads_the_export_once_in_order_with_every_value_intact(env):
    files = env.sanitise(env.manifest['files'])
    env.configure(files)

    before = env.ok('status')
    assert before['pending'] == env.manifest['files']
    assert before['already_loaded'] == []
    assert not env.markers.exists()  # status changes nothing

    report = env.ok()
    assert report['loaded'] == env.manifest['files']
    assert env.fingerprints() == env.expected()
    # The later export of interval_list replaced the earlier one: the files ran in order.
    check = env.manifest['order_check']
    assert env.server.query('SELECT COUNT(*) FROM `%s`.`%s`' % (check['database'], check['table'])) == \
        [[str(check['count_if_loaded_in_order'])]]
    # The words upstream's sed strips survived in the data, and the DDL lost its latin1 option.
    words = env.manifest['charset_words']
    assert env.server.query("SELECT COUNT(*) FROM `%s`.`%s` WHERE `%s` = '%s'" % (
        words['database'], words['table'], words['column'], words['value'])) == [['1']]
    assert env.server.query("SELECT CHARACTER_SET_NAME, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "
                            "WHERE TABLE_SCHEMA = 'common_nwbfile' AND TABLE_NAME = 'nwbfile' "
                            "AND COLUMN_NAME = 'nwb_file_name'") == [['utf8mb4', '64']]
    assert SPYGLASS_LENGTHS['nwb_file_name'] == 64 and len(SPYGLASS_LENGTHS) == 12

    assert env.markers_present() == sorted(sha256(f) for f in files)
    marker = json.loads((env.markers / (sha256(files[1]) + '.json')).read_text())
    assert marker['file'] == env.manifest['files'][1] and marker['position'] == 2 and marker['sha256'] == sha256(files[1])

    # A second run loads nothing: a row written since is still there (a reload would drop the table).
    env.server.query("INSERT INTO common_lab.lab_team VALUES ('sentinel', 'written after the load')")
    again = env.ok()
    assert again['loaded'] == [] and again['already_loaded'] == env.manifest['files']
    assert env.ok('status')['pending'] == []
    assert env.server.query("SELECT COUNT(*) FROM common_lab.lab_team WHERE team_name = 'sentinel'") == [['1']]


def test_without_column_lengths_the_server_error_names_file_and_line(env):
    files = env.sanitise(env.manifest['files'], column_lengths={})
    env.configure(files)
    proc = env.run()
    too_long = env.manifest['too_long_without_column_lengths']
    assert proc.returncode == 1
    assert proc.stdout == ''
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('labops-spyglass-export-load: error: %s line %d: ERROR 1071 (42000): Specified key was too long'
                               % (too_long['file'], too_long['line']))
    assert '[near: CREATE TABLE `__spike_sorting_recording` (]' in lines[0]
    assert 'spyglass_export_column_lengths' in lines[0]
    assert lines[0].endswith('; not marked as loaded; not attempted: %s' % env.manifest['files'][1])
    assert env.markers_present() == []
    assert env.ok('status')['pending'] == env.manifest['files']


def test_a_failing_later_file_leaves_what_was_loaded_intact(env):
    good = env.sanitise(env.manifest['files'])
    env.configure(good)
    env.ok()
    expected = env.fingerprints()

    broken = env.manifest['broken']
    files = env.sanitise(env.manifest['files'] + [broken['file']], folder='export-broken')
    assert files[:2] == good
    env.configure(files)
    assert env.ok('status')['pending'] == [broken['file']]
    proc = env.run()
    assert proc.returncode == 1
    assert proc.stderr.startswith('labops-spyglass-export-load: error: %s line %d: ERROR 1071 (42000): '
                                  % (broken['file'], broken['line']))
    assert proc.stderr.rstrip().endswith('not marked as loaded')
    assert env.markers_present() == sorted(sha256(f) for f in good)
    assert env.fingerprints() == expected == env.expected()

    # Fixed (the broken file removed from the export): nothing to load.
    env.configure(good)
    assert env.ok()['loaded'] == []


def test_a_changed_file_reloads_it_and_every_file_after_it(env):
    files = env.sanitise(env.manifest['files'])
    env.configure(files)
    env.ok()
    with open(files[0], 'ab') as handle:
        handle.write(b'-- re-exported\n')
    status = env.ok('status')
    assert status['pending'] == env.manifest['files'] and status['already_loaded'] == []
    report = env.ok()
    # The first file alone would have put back the 36 earlier rows of interval_list.
    assert report['loaded'] == env.manifest['files']
    assert env.fingerprints() == env.expected()
    assert len(env.markers_present()) == 3  # the old marker of the first file stays, harmless

    # A new file at the end: only it loads.
    extra = env.tmp / 'sanitized' / '_Populate_Demo2026_zz.sql'
    extra.write_text("CREATE DATABASE IF NOT EXISTS common_lab; USE common_lab;\n"
                     "INSERT INTO lab_team VALUES ('late', 'from a later export');\n")
    env.configure(files + [str(extra)])
    assert env.ok()['loaded'] == [extra.name]
    assert env.ok()['loaded'] == []

    # --all loads everything again, in order.
    assert env.ok('load', '--all')['loaded'] == env.manifest['files'] + [extra.name]


def test_a_client_that_cannot_run_is_reported(env, tmp_path):
    files = env.sanitise(env.manifest['files'][:1])
    env.configure(files, client=['sh', '-c', 'cat >/dev/null; echo \'service "db" is not running\' >&2; exit 1'])
    proc = env.run()
    assert proc.returncode == 1
    assert proc.stderr == ('labops-spyglass-export-load: error: %s: the client exited with status 1: '
                           'service "db" is not running; not marked as loaded\n' % env.manifest['files'][0])
    env.configure(files, client=[str(tmp_path / 'no-such-client')])
    proc = env.run()
    assert proc.returncode == 1 and 'cannot run' in proc.stderr


def test_only_the_end_of_a_huge_stderr_is_kept(env):
    files = env.sanitise(env.manifest['files'][:1])
    env.configure(files, client=['sh', '-c', 'cat >/dev/null; head -c 3000000 /dev/zero | tr "\\0" x >&2; '
                                 'echo >&2; echo "ERROR 1064 (42000) at line 5: boom" >&2; exit 1'])
    proc = env.run()
    assert proc.returncode == 1
    assert 'line 5: ERROR 1064 (42000): boom [near: ' in proc.stderr
    assert len(proc.stderr) < 2000


def test_a_second_load_at_the_same_time_is_refused(env):
    files = env.sanitise(env.manifest['files'][:1])
    env.configure(files)
    with open(str(env.tmp / '.load.lock'), 'a') as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        proc = env.run()
    assert proc.returncode == 1 and 'another load' in proc.stderr
    assert env.ok()['loaded'] == [env.manifest['files'][0]]


@pytest.mark.parametrize('config, message', [
    ({'files': ['relative.sql'], 'markers': '/m', 'client': ['mysql']}, 'files must be a list of absolute paths'),
    ({'files': ['/a/x.sql', '/b/x.sql'], 'markers': '/m', 'client': ['mysql']}, 'distinct names'),
    ({'files': [], 'markers': 'm', 'client': ['mysql']}, 'markers must be an absolute path'),
    ({'files': [], 'markers': '/m', 'client': 'mysql'}, 'client must be a non-empty list'),
    ([], 'must be a JSON object'),
])
def test_bad_configuration(tmp_path, config, message):
    path = tmp_path / 'load.json'
    path.write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, SCRIPT, 'status', str(path)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 2 and message in proc.stderr


def test_usage_errors(tmp_path):
    for argv in ([], ['frobnicate', 'x'], ['status', str(tmp_path / 'missing.json')]):
        proc = subprocess.run([sys.executable, SCRIPT] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
        assert proc.returncode == 2, argv
        assert proc.stderr.startswith('labops-spyglass-export-load: error: ')


def test_a_missing_file_is_an_error(env, tmp_path):
    env.configure([str(tmp_path / 'gone.sql')])
    proc = env.run('status')
    assert proc.returncode == 1 and 'cannot read' in proc.stderr and 'gone.sql' in proc.stderr


def test_generator_is_deterministic(tmp_path):
    first = generator.generate(str(tmp_path / 'a'))
    second = generator.generate(str(tmp_path / 'b'))
    assert first == second
    for folder in ('export', 'export-broken'):
        for name in os.listdir(str(tmp_path / 'a' / folder)):
            assert sha256(str(tmp_path / 'a' / folder / name)) == sha256(str(tmp_path / 'b' / folder / name))
