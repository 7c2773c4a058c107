# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/alyx/files/labops_alyx_db.py against a real PostgreSQL.

Every test runs the program as a subprocess, as the role does on the host, against a private
PostgreSQL cluster (tests/unit/postgres_server.py: Debian's postgresql server binaries). The
dumps are real ``pg_dump`` output of a source database in that cluster. In the role, ``psql``
is ``docker compose exec -T alyx-postgres psql -U <user>`` and the after-load steps run
``manage.py`` in the web container; here ``psql`` is the cluster's own client, the after-load
steps are psql commands that leave a trace in the database they were given, and stopping or
starting the web service is a shell script that appends its name to a log.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import gzip
import json
import os
import subprocess
import sys
import time

import pytest

from ..postgres_server import PostgresServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'alyx', 'files', 'labops_alyx_db.py')
SHA = 'ab' * 32


@pytest.fixture(scope='module')
def server():
    with PostgresServer.start() as started:
        yield started


@pytest.fixture
def env(server, tmp_path):
    """A clean cluster (every database but postgres dropped) and a config for database `alyx`."""
    for name in server.databases() - {'postgres'}:
        server.psql('DROP DATABASE %s WITH (FORCE)' % name)
    server.psql("SELECT format('DROP ROLE %I', rolname) FROM pg_roles WHERE rolname IN ('ibl_dev', 'reader')\\gexec")
    return Env(server, tmp_path)


class Env(object):
    def __init__(self, server, tmp_path):
        self.server = server
        self.tmp = tmp_path
        self.events = tmp_path / 'events.log'
        self.marker = tmp_path / 'state' / 'dump-loaded.json'
        self.config_path = tmp_path / 'db.json'
        self.config = {
            'psql': server.client_argv(),
            'database': 'alyx',
            'owner': 'postgres',
            'roles': ['ibl_dev'],
            'steps': [self.migrate_step()],
            'stop': self.recorder('stop'),
            'start': self.recorder('start'),
            'marker': str(self.marker),
        }
        self.write_config()

    def recorder(self, name):
        return ['sh', '-c', 'echo "$0" >> "$1"', name, str(self.events)]

    def migrate_step(self, sql='CREATE TABLE IF NOT EXISTS migrated (n serial); INSERT INTO migrated DEFAULT VALUES'):
        return {'name': 'migrate', 'argv': self.server.client_argv() + ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', '{database}', '-c', sql]}

    def write_config(self, **changes):
        self.config.update(changes)
        self.config_path.write_text(json.dumps(self.config))

    def run(self, *args, stdin=None):
        return subprocess.run([sys.executable, SCRIPT] + [a if isinstance(a, str) else str(a) for a in args],
                              input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)

    def load(self, dump, *extra):
        return self.run('load', self.config_path, '--dump', dump, *extra)

    def make_dump(self, name, subjects, owner=None, corrupt=None, gz=True):
        """pg_dump of a source database with a `subjects` table; returns the file path."""
        server = self.server
        server.psql('DROP DATABASE IF EXISTS src WITH (FORCE)')
        server.psql('CREATE DATABASE src')
        server.psql('CREATE TABLE subjects (nickname text PRIMARY KEY)', 'src')
        if subjects:
            server.psql('INSERT INTO subjects VALUES %s' % ', '.join("('%s')" % s for s in subjects), 'src')
        if owner:
            server.psql("SELECT format('CREATE ROLE %%I NOLOGIN', '%s') WHERE NOT EXISTS "
                        "(SELECT FROM pg_roles WHERE rolname = '%s')\\gexec" % (owner, owner))
            server.psql('ALTER TABLE subjects OWNER TO %s' % owner, 'src')
        sql = subprocess.run(server.client_argv('pg_dump') + ['-d', 'src'], stdout=subprocess.PIPE, check=True).stdout
        server.psql('DROP DATABASE src WITH (FORCE)')
        if owner:
            server.psql('DROP ROLE %s' % owner)
        if corrupt == 'sql':
            sql = sql.replace(b'COPY public.subjects', b'SELECT no_such_function();\nCOPY public.subjects', 1)
        if corrupt == 'no-trailer':
            sql = sql[:sql.index(b'-- PostgreSQL database dump complete')]
        path = self.tmp / name
        if gz:
            data = gzip.compress(sql)
            if corrupt == 'truncated':
                data = data[:len(data) * 2 // 3]
            path.write_bytes(data)
        else:
            path.write_bytes(sql)
        return path

    def subjects(self, database='alyx'):
        return sorted(self.server.psql('SELECT nickname FROM subjects', database).split())

    def events_seen(self):
        return self.events.read_text().split() if self.events.exists() else []

    def marker_content(self):
        return json.loads(self.marker.read_text())


def test_first_load_creates_the_live_database_and_the_marker(env):
    dump = env.make_dump('2026-11-20_alyxfull.sql.gz', ['mouse1', 'mouse2'])
    result = env.load(dump, '--date', '2026-11-20', '--sha256', SHA, '--source', 'http://dumps/x.sql.gz')
    assert result.returncode == 0, result.stderr
    assert env.subjects() == ['mouse1', 'mouse2']
    assert env.server.psql('SELECT count(*) FROM migrated', 'alyx') == '1'
    assert env.server.databases() == {'postgres', 'alyx'}
    marker = env.marker_content()
    assert json.loads(result.stdout) == marker
    assert (marker['date'], marker['sha256'], marker['dump'], marker['source'], marker['previous']) == \
        ('2026-11-20', SHA, '2026-11-20_alyxfull.sql.gz', 'http://dumps/x.sql.gz', None)
    assert oct(os.stat(env.marker).st_mode & 0o777) == '0o640'
    assert env.events_seen() == ['stop', 'start']


def test_second_load_keeps_the_former_data_as_previous_and_a_third_replaces_it(env):
    assert env.load(env.make_dump('a.sql.gz', ['first'])).returncode == 0
    result = env.load(env.make_dump('b.sql.gz', ['second']))
    assert result.returncode == 0, result.stderr
    assert env.subjects() == ['second']
    assert env.subjects('alyx_previous') == ['first']
    assert env.marker_content()['previous'] == 'alyx_previous'
    assert env.load(env.make_dump('c.sql.gz', ['third'])).returncode == 0
    assert env.subjects() == ['third']
    assert env.subjects('alyx_previous') == ['second']
    assert env.server.databases() == {'postgres', 'alyx', 'alyx_previous'}


@pytest.mark.parametrize('corrupt, message', [
    ('truncated', 'gzip -dc'),
    ('sql', 'no_such_function'),
    ('no-trailer', "without pg_dump's closing line"),
])
def test_a_failed_load_leaves_the_live_database_and_the_marker_unchanged(env, corrupt, message):
    assert env.load(env.make_dump('good.sql.gz', ['kept']), '--date', '2026-11-01').returncode == 0
    marker_before = env.marker.read_bytes()
    bad = env.make_dump('bad.sql.gz', ['other%d' % n for n in range(2000)], corrupt=corrupt)
    result = env.load(bad, '--date', '2026-11-02')
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert message in stderr
    assert 'the live database alyx is unchanged and the incoming copy was dropped' in stderr
    assert len(stderr.strip().splitlines()) == 2          # "loading ..." then ONE error line
    assert env.subjects() == ['kept']
    assert env.server.databases() == {'postgres', 'alyx'}
    assert env.marker.read_bytes() == marker_before
    assert env.events_seen() == ['stop', 'start']         # only the first, successful load switched


def test_a_failing_after_load_step_leaves_the_live_database_unchanged(env):
    assert env.load(env.make_dump('good.sql.gz', ['kept'])).returncode == 0
    env.write_config(steps=[env.migrate_step('SELECT 1/0')])
    result = env.load(env.make_dump('new.sql.gz', ['new']))
    assert result.returncode == 1
    assert 'the step migrate on alyx_incoming failed' in result.stderr.decode()
    assert 'division by zero' in result.stderr.decode()
    assert env.subjects() == ['kept']
    assert env.server.databases() == {'postgres', 'alyx'}


def test_the_owner_roles_are_created_before_the_load(env):
    dump = env.make_dump('owned.sql.gz', ['owned'], owner='ibl_dev')
    assert b'OWNER TO ibl_dev' in gzip.decompress(dump.read_bytes())
    env.write_config(roles=[])
    refused = env.load(dump)
    assert refused.returncode == 1 and 'role "ibl_dev" does not exist' in refused.stderr.decode()
    env.write_config(roles=['ibl_dev', 'reader'])
    result = env.load(dump)
    assert result.returncode == 0, result.stderr
    assert env.server.psql("SELECT tableowner FROM pg_tables WHERE tablename = 'subjects'", 'alyx') == 'ibl_dev'
    assert env.server.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'reader'") == 'f'


def test_the_switch_ends_sessions_still_connected_to_the_live_database(env):
    assert env.load(env.make_dump('a.sql.gz', ['before'])).returncode == 0
    # a client that the stopped web service does not account for (a report, a backup)
    session = subprocess.Popen(env.server.client_argv() + ['-X', '-d', 'alyx', '-c', 'SELECT pg_sleep(120)'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while env.server.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'alyx'") != '1':
            assert time.time() < deadline
            time.sleep(0.1)
        result = env.load(env.make_dump('b.sql.gz', ['after']))
        assert result.returncode == 0, result.stderr
        assert session.wait(timeout=20) != 0
        assert b'terminat' in session.stderr.read()
    finally:
        session.kill()
        session.wait()
    assert env.subjects() == ['after']


def test_the_web_service_is_started_again_when_the_switch_fails(env):
    assert env.load(env.make_dump('a.sql.gz', ['kept'])).returncode == 0
    # the stop step pulls the incoming database away, so the rename cannot find it
    sabotage = env.server.client_argv() + ['-X', '-q', '-d', 'postgres', '-c',
                                           'ALTER DATABASE alyx_incoming RENAME TO stolen']
    env.write_config(stop=sabotage)
    result = env.load(env.make_dump('b.sql.gz', ['lost']))
    assert result.returncode == 1
    assert 'switching alyx to the new data failed' in result.stderr.decode()
    assert env.events_seen() == ['stop', 'start', 'start']
    assert env.subjects() == ['kept']


def test_a_leftover_incoming_database_is_replaced(env):
    env.server.psql('CREATE DATABASE alyx_incoming')
    env.server.psql('CREATE TABLE junk (a int)', 'alyx_incoming')
    assert env.load(env.make_dump('a.sql.gz', ['fresh'])).returncode == 0
    assert env.server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'junk'", 'alyx') == '0'
    assert env.subjects() == ['fresh']


def test_a_restore_from_stdin_switches_but_keeps_the_marker(env):
    assert env.load(env.make_dump('a.sql.gz', ['dumped']), '--date', '2026-11-03').returncode == 0
    marker_before = env.marker.read_bytes()
    plain = env.make_dump('backup.sql', ['restored'], gz=False).read_bytes()
    result = env.run('load', env.config_path, '--stdin', '--no-marker', stdin=plain)
    assert result.returncode == 0, result.stderr
    assert env.subjects() == ['restored']
    assert env.server.psql('SELECT count(*) FROM migrated', 'alyx') == '1'   # migrated after the restore too
    assert env.marker.read_bytes() == marker_before
    cut = env.run('load', env.config_path, '--stdin', '--no-marker', stdin=plain[:len(plain) // 2])
    assert cut.returncode == 1
    assert env.subjects() == ['restored']


def test_an_after_load_step_gets_its_stdin_file(env):
    stdin_file = env.tmp / 'superuser.sql'
    stdin_file.write_text("CREATE TABLE superusers (name text); INSERT INTO superusers VALUES ('admin');\n")
    env.write_config(steps=[env.migrate_step(), {
        'name': 'superuser', 'stdin_file': str(stdin_file),
        'argv': env.server.client_argv() + ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', '{database}']}])
    assert env.load(env.make_dump('a.sql.gz', ['x'])).returncode == 0
    assert env.server.psql('SELECT name FROM superusers', 'alyx') == 'admin'


def test_step_runs_the_named_steps_on_the_live_database(env):
    report = "SELECT current_database() || ' check=' || '{check}'"
    env.write_config(steps=[env.migrate_step(), {
        'name': 'report', 'stdin_file': None, 'after_load': False,
        'argv': env.server.client_argv() + ['-X', '-A', '-t', '-d', '{database}', '-c', report]}])
    missing = env.run('step', env.config_path, 'report')
    assert missing.returncode == 1 and 'database alyx does not exist' in missing.stderr.decode()
    loaded = env.load(env.make_dump('a.sql.gz', ['x']))
    assert loaded.returncode == 0, loaded.stderr
    assert 'check=' not in loaded.stdout.decode()            # an after_load: false step is not run by load
    result = env.run('step', env.config_path, 'report')
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == 'alyx check=0'
    assert env.server.psql('SELECT count(*) FROM migrated', 'alyx') == '1'   # migrate was not run again
    assert env.run('step', env.config_path, 'report', '--check').stdout.decode().strip() == 'alyx check=1'
    both = env.run('step', env.config_path, 'report', 'migrate')
    assert both.returncode == 0 and env.server.psql('SELECT count(*) FROM migrated', 'alyx') == '2'
    unknown = env.run('step', env.config_path, 'nope')
    assert unknown.returncode == 2 and 'no step nope (known: migrate, report)' in unknown.stderr.decode()


def test_init_creates_the_live_database_and_the_role_settings_once(env):
    env.write_config(role_settings={'client_encoding': 'utf8', 'timezone': 'UTC'})
    checked = json.loads(env.run('init', env.config_path, '--check').stdout)
    assert checked['changed'] and 'created database alyx' in checked['changes']
    assert env.server.databases() == {'postgres'}
    assert env.server.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'ibl_dev'") == '0'
    first = json.loads(env.run('init', env.config_path).stdout)
    assert first['changes'] == ['created role ibl_dev', 'created database alyx',
                                'set client_encoding=utf8 for role postgres', 'set timezone=UTC for role postgres']
    assert env.server.psql("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'ibl_dev'") == 'f'
    assert 'alyx' in env.server.databases()
    assert env.server.psql("SHOW timezone", 'alyx') == 'UTC'
    assert json.loads(env.run('init', env.config_path).stdout) == {'changed': False, 'changes': []}
    assert json.loads(env.run('init', env.config_path, '--check').stdout)['changed'] is False
    env.server.psql("ALTER ROLE postgres RESET timezone")


def test_status_prints_the_marker(env):
    assert json.loads(env.run('status', env.config_path).stdout) == {}
    assert env.load(env.make_dump('a.sql.gz', ['x']), '--date', '2026-11-05', '--sha256', SHA).returncode == 0
    status = json.loads(env.run('status', env.config_path).stdout)
    assert (status['date'], status['sha256']) == ('2026-11-05', SHA)


def test_a_second_load_at_the_same_time_is_refused(env):
    dump = env.make_dump('a.sql.gz', ['x'])
    env.marker.parent.mkdir(parents=True, exist_ok=True)
    with open(str(env.marker.parent / '.dump-loaded.json.lock'), 'a') as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = env.load(dump)
    assert result.returncode == 1
    assert 'another labops-alyx-db load is running' in result.stderr.decode()
    assert env.server.databases() == {'postgres'}


def test_a_missing_dump_and_a_bad_checksum_argument_are_refused(env):
    missing = env.load(env.tmp / 'nope.sql.gz')
    assert missing.returncode == 1 and 'does not exist' in missing.stderr.decode()
    bad = env.load(env.make_dump('a.sql.gz', ['x']), '--sha256', 'XYZ')
    assert bad.returncode == 2 and '--sha256' in bad.stderr.decode()
    assert env.server.databases() == {'postgres'}


@pytest.mark.parametrize('change, message', [
    ({'retries': 3}, "key 'retries' is not a known key"),
    ({'database': 'Alyx-DB'}, "key 'database' must be 1-50 lower-case letters"),
    ({'database': 'a' * 51}, "key 'database' must be 1-50 lower-case letters"),
    ({'roles': ['ok', 'bad"role']}, "must hold role names"),
    ({'marker': 'state/marker.json'}, "key 'marker' must be an absolute path"),
    ({'steps': [{'argv': ['true']}]}, "key 'steps[0]' must be"),
    ({'steps': [{'name': 'x', 'argv': []}]}, "key 'steps[0].argv' must be a non-empty list"),
    ({'steps': [{'name': 'x', 'argv': ['true'], 'stdin_file': 'rel'}]}, "must be an absolute path or null"),
    ({'steps': [{'name': 'x', 'argv': ['true'], 'after_load': 'yes'}]}, "key 'steps[0].after_load' must be true"),
    ({'role_settings': {'time zone': 'UTC'}}, "key 'role_settings' must map setting names to strings"),
    ({'stop': 'docker stop'}, "key 'stop' must be a non-empty list of strings or null"),
    ({'switch_attempts': 0}, "key 'switch_attempts' must be an integer >= 1"),
    ({'require_complete': 'yes'}, "key 'require_complete' must be true or false"),
])
def test_a_bad_config_is_refused_with_its_key(env, change, message):
    env.write_config(**change)
    result = env.run('status', env.config_path)
    assert result.returncode == 1
    assert message in result.stderr.decode()
    assert result.stderr.decode().startswith('labops-alyx-db: error: config %s: ' % env.config_path)


def test_a_missing_key_and_invalid_json_are_refused(env):
    del env.config['psql']
    env.write_config()
    assert "key 'psql' is missing" in env.run('status', env.config_path).stderr.decode()
    env.config_path.write_text('{')
    assert 'is not valid JSON' in env.run('status', env.config_path).stderr.decode()
