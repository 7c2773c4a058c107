#!/usr/bin/python3 -I
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops-alyx-db: load an Alyx SQL dump without ever breaking the live database.

Installed by the labops.services ``alyx`` role as ``/usr/local/sbin/labops-alyx-db``; the role
writes its configuration (``/etc/labops/alyx/db.json``). Standard library only, Python 3.9+.

    labops-alyx-db load    CONFIG --dump FILE.sql.gz [--date D] [--sha256 HEX] [--source URL]
    labops-alyx-db load    CONFIG --stdin [--no-marker]      (plain SQL on stdin: backup restores)
    labops-alyx-db init    CONFIG [--check]                  (create the live database if missing)
    labops-alyx-db step    CONFIG NAME... [--check]          (named steps on the live database)
    labops-alyx-db status  CONFIG                            (the marker, as JSON)

``load`` follows upstream's recipe (the owner roles created first, ``gzip -dc DUMP | psql``,
then ``manage.py migrate``) but into a fresh database ``<db>_incoming`` made from template0
(which is what upstream's ``drop schema public cascade; create schema public`` achieves in place).
Only when the whole stream went in without an error (``ON_ERROR_STOP``, gzip's exit status,
pg_dump's closing line present) and the after-load commands (migrate, superuser) succeeded does
it switch: the web service is stopped, connections are ended, ``<db>`` becomes ``<db>_previous``
and ``<db>_incoming`` becomes ``<db>`` in one transaction, the web service starts again, and
the marker (dump date, sha256) is written. Any failure before the switch drops the incoming
database and leaves the live one as it was. ``<db>_previous`` stays until the next successful
load replaces it.

Expected failures end with ONE line ``labops-alyx-db: error: <what happened>; <state>`` on
stderr and exit status 1; usage errors exit 2. ``load`` prints the new marker on stdout.
"""

from __future__ import absolute_import, division, print_function

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time

PROG = 'labops-alyx-db'
CHUNK = 1 << 20
TAIL_BYTES = 4096
# pg_dump's plain format ends with this comment (then, since 17.6/16.10/15.14/14.19/13.22, a
# \unrestrict line): a stream without it was cut short.
DUMP_COMPLETE = b'-- PostgreSQL database dump complete'
NAME_PATTERN = re.compile(r'^[a-z_][a-z0-9_]{0,49}$')
ROLE_PATTERN = re.compile(r'^[A-Za-z_][A-Za-z0-9_.-]{0,62}$')
SUFFIX_INCOMING = '_incoming'
SUFFIX_PREVIOUS = '_previous'
STDERR_TAIL_LINES = 12

CONFIG_KEYS = {
    'psql': 'argv (list) that runs psql as a database superuser, without -d',
    'database': 'the live database name',
    'owner': 'the role owning the databases this program creates',
    'roles': 'roles created (NOLOGIN) when missing, by init and before a load (OWNER/GRANT targets of dumps '
             'and migrations)',
    'steps': 'commands run against a database: [{"name": str, "argv": [...], "stdin_file": path or null, '
             '"after_load": bool}]; in argv {database} is the database name and {check} is 1 in check mode, else 0',
    'role_settings': 'settings of the owner role in every database (ALTER ROLE ... SET), as {name: value}',
    'stop': 'argv stopping the web service for the switch, or null',
    'start': 'argv starting it again, or null',
    'marker': 'absolute path of the marker file',
    'require_complete': 'refuse a stream without pg_dump\'s closing line (bool)',
    'switch_attempts': 'how many times the rename is tried when a client reconnects in between (int)',
}


class DbError(Exception):
    """An expected failure: one message, exit status 1."""

    exit_status = 1


class UsageError(DbError):
    exit_status = 2


def log(message):
    sys.stderr.write('%s: %s\n' % (PROG, message))
    sys.stderr.flush()


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def quote_literal(text):
    return "'%s'" % text.replace("'", "''")


# -- configuration -----------------------------------------------------------------------------

def _argv(value, key, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise DbError("config key '%s' must be a non-empty list of strings%s" % (key, ' or null' if allow_none else ''))
    return value


def load_config(path):
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, IOError) as exc:
        raise DbError('cannot read config %s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise DbError('config %s is not valid JSON: %s' % (path, exc))
    if not isinstance(config, dict):
        raise DbError('config %s must be a JSON object' % path)
    where = 'config %s: ' % path
    try:
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise DbError("key '%s' is not a known key (allowed: %s)" % (unknown[0], ', '.join(CONFIG_KEYS)))
        for key in ('psql', 'database', 'owner', 'marker'):
            if key not in config:
                raise DbError("key '%s' is missing (%s)" % (key, CONFIG_KEYS[key]))
        _argv(config['psql'], 'psql')
        if not isinstance(config['database'], str) or not NAME_PATTERN.match(config['database']):
            raise DbError("key 'database' must be 1-50 lower-case letters, digits and _ (it gets the suffixes "
                          "%s and %s), got %s" % (SUFFIX_INCOMING, SUFFIX_PREVIOUS, json.dumps(config['database'])))
        roles = config.setdefault('roles', [])
        for role in [config['owner']] + (roles if isinstance(roles, list) else [None]):
            if not isinstance(role, str) or not ROLE_PATTERN.match(role):
                raise DbError("keys 'owner' and 'roles' must hold role names (letters, digits, _ . -), got %s"
                              % json.dumps(role))
        steps = config.setdefault('steps', [])
        if not isinstance(steps, list):
            raise DbError("key 'steps' must be a list")
        for index, step in enumerate(steps):
            if not isinstance(step, dict) or set(step) - {'name', 'argv', 'stdin_file', 'after_load'} \
                    or 'argv' not in step or not isinstance(step.get('name'), str) \
                    or not NAME_PATTERN.match(step['name']):
                raise DbError("key 'steps[%d]' must be {\"name\": lower-case word, \"argv\": [...], "
                              "\"stdin_file\": path or null, \"after_load\": bool}" % index)
            _argv(step['argv'], 'steps[%d].argv' % index)
            stdin_file = step.setdefault('stdin_file', None)
            if stdin_file is not None and not (isinstance(stdin_file, str) and os.path.isabs(stdin_file)):
                raise DbError("key 'steps[%d].stdin_file' must be an absolute path or null" % index)
            if not isinstance(step.setdefault('after_load', True), bool):
                raise DbError("key 'steps[%d].after_load' must be true or false" % index)
        settings = config.setdefault('role_settings', {})
        if not isinstance(settings, dict) or not all(
                re.match(r'^[a-z_][a-z0-9_.]*$', k) and isinstance(v, str) for k, v in settings.items()):
            raise DbError("key 'role_settings' must map setting names to strings")
        config['stop'] = _argv(config.get('stop'), 'stop', allow_none=True)
        config['start'] = _argv(config.get('start'), 'start', allow_none=True)
        if not isinstance(config['marker'], str) or not os.path.isabs(config['marker']):
            raise DbError("key 'marker' must be an absolute path")
        config.setdefault('require_complete', True)
        if not isinstance(config['require_complete'], bool):
            raise DbError("key 'require_complete' must be true or false")
        attempts = config.setdefault('switch_attempts', 5)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise DbError("key 'switch_attempts' must be an integer >= 1")
    except DbError as exc:
        raise DbError(where + str(exc))
    return config


# -- processes ---------------------------------------------------------------------------------

def _tail(text, lines=STDERR_TAIL_LINES):
    text = text.decode('utf-8', 'replace') if isinstance(text, bytes) else (text or '')
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return ' | '.join(kept)


def run(argv, what, stdin_data=None, stdin_file=None):
    """Run argv to completion and return its stdout; DbError (with the end of its stderr) when it fails."""
    pipe = subprocess.PIPE
    try:
        if stdin_data is not None:
            process = subprocess.run(argv, input=stdin_data, stdout=pipe, stderr=pipe, check=False)
        elif stdin_file is not None:
            with open(stdin_file, 'rb') as handle:
                process = subprocess.run(argv, stdin=handle, stdout=pipe, stderr=pipe, check=False)
        else:
            process = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe, check=False)
    except (OSError, IOError) as exc:
        culprit = stdin_file if stdin_file and getattr(exc, 'filename', None) == stdin_file else argv[0]
        raise DbError('%s: cannot run %s: %s' % (what, culprit, exc.strerror or exc))
    if process.returncode != 0:
        raise DbError('%s failed: %s exited with status %d%s' % (
            what, os.path.basename(argv[0]), process.returncode,
            (': ' + _tail(process.stderr)) if process.stderr.strip() else ''))
    return process.stdout.decode('utf-8', 'replace')


class Database(object):
    """The databases of one Alyx: live, incoming and previous, reached through config['psql']."""

    def __init__(self, config):
        self.config = config
        self.live = config['database']
        self.incoming = self.live + SUFFIX_INCOMING
        self.previous = self.live + SUFFIX_PREVIOUS

    def psql_argv(self, database, *extra):
        return list(self.config['psql']) + ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', database] + list(extra)

    def sql(self, sql, what, database='postgres'):
        """Run SQL statements (autocommit, one after the other) and return the unaligned output."""
        return run(self.psql_argv(database, '-A', '-t'), what, stdin_data=sql.encode('utf-8'))

    def exists(self, name):
        out = self.sql('SELECT 1 FROM pg_database WHERE datname = %s;\n' % quote_literal(name),
                       'looking for database %s' % name)
        return out.strip() == '1'

    def drop(self, name, what):
        self.sql('DROP DATABASE IF EXISTS %s WITH (FORCE);\n' % quote_ident(name), what)

    def roles_sql(self):
        """psql statements creating the configured roles (NOLOGIN) that do not exist yet."""
        return ["SELECT format('CREATE ROLE %%I NOLOGIN', %s) WHERE NOT EXISTS "
                "(SELECT FROM pg_roles WHERE rolname = %s)\n\\gexec" % (quote_literal(role), quote_literal(role))
                for role in self.config['roles']]

    def missing_roles(self):
        if not self.config['roles']:
            return []
        present = self.sql('SELECT rolname FROM pg_roles WHERE rolname IN (%s);\n'
                           % ', '.join(quote_literal(role) for role in self.config['roles']),
                           'looking for roles').split()
        return [role for role in self.config['roles'] if role not in present]

    def create_incoming(self):
        statements = ['DROP DATABASE IF EXISTS %s WITH (FORCE);' % quote_ident(self.incoming)]
        statements += self.roles_sql()
        statements.append('CREATE DATABASE %s OWNER %s TEMPLATE template0;'
                          % (quote_ident(self.incoming), quote_ident(self.config['owner'])))
        self.sql('\n'.join(statements) + '\n', 'preparing database %s' % self.incoming)

    def feed(self, source, require_complete):
        """Stream plain SQL from a file object into the incoming database.

        Returns the number of bytes sent. DbError when psql stops on an error, the stream is
        not pg_dump's whole output, or the producer (gzip) failed.
        """
        with tempfile.TemporaryFile() as errors:
            try:
                psql = subprocess.Popen(self.psql_argv(self.incoming), stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=errors)
            except (OSError, IOError) as exc:
                raise DbError('loading: cannot run %s: %s' % (self.config['psql'][0], exc.strerror or exc))
            sent, tail, broken = 0, b'', False
            try:
                while True:
                    chunk = source.read(CHUNK)
                    if not chunk:
                        break
                    tail = (tail + chunk)[-TAIL_BYTES:]
                    try:
                        psql.stdin.write(chunk)
                    except (BrokenPipeError, OSError):
                        broken = True
                        break
                    sent += len(chunk)
                try:
                    psql.stdin.close()
                except (BrokenPipeError, OSError):
                    broken = True
            finally:
                status = psql.wait()
            errors.seek(0)
            stderr = errors.read()
        if status != 0 or broken:
            raise DbError('psql stopped on an error after %d bytes of SQL (exit status %s)%s' % (
                sent, status, (': ' + _tail(stderr)) if stderr.strip() else ''))
        if require_complete and DUMP_COMPLETE not in tail:
            raise DbError('the SQL stream ended after %d bytes without pg_dump\'s closing line "%s": '
                          'the dump is incomplete' % (sent, DUMP_COMPLETE.decode()))
        return sent

    def steps(self, database, names=None, check=False):
        """Run the steps named (default: the after-load ones) against database; their stdout by name."""
        outputs = {}
        for step in self.config['steps']:
            if (step['name'] not in names) if names else not step['after_load']:
                continue
            argv = [part.replace('{database}', database).replace('{check}', '1' if check else '0')
                    for part in step['argv']]
            outputs[step['name']] = run(argv, 'the step %s on %s' % (step['name'], database),
                                        stdin_file=step['stdin_file'])
        return outputs

    def ensure_live(self, check=False):
        """Create the live database and set the owner's role settings when missing; what changed."""
        changes = ['created role %s' % role for role in self.missing_roles()]
        if changes and not check:
            self.sql('\n'.join(self.roles_sql()) + '\n', 'creating roles')
        if not self.exists(self.live):
            changes.append('created database %s' % self.live)
            if not check:
                self.sql('CREATE DATABASE %s OWNER %s;\n' % (quote_ident(self.live), quote_ident(self.config['owner'])),
                         'creating database %s' % self.live)
        current = self.sql(
            "SELECT unnest(setconfig) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE r.rolname = %s AND s.setdatabase = 0;\n" % quote_literal(self.config['owner']),
            'reading the settings of role %s' % self.config['owner'])
        # PostgreSQL stores the canonical spelling of a setting's name (timezone -> TimeZone)
        have = dict((name.lower(), value) for name, _sep, value in
                    (line.partition('=') for line in current.splitlines() if '=' in line))
        for name, value in sorted(self.config['role_settings'].items()):
            if have.get(name.lower()) != value:
                changes.append('set %s=%s for role %s' % (name, value, self.config['owner']))
                if not check:
                    self.sql('ALTER ROLE %s SET %s TO %s;\n' % (quote_ident(self.config['owner']), name,
                                                                quote_literal(value)),
                             'setting %s for role %s' % (name, self.config['owner']))
        return changes

    def switch(self):
        """Make incoming the live database; the old live one becomes previous."""
        live_exists = self.exists(self.live)
        statements = [
            'SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN (%s, %s) '
            'AND pid <> pg_backend_pid();' % (quote_literal(self.live), quote_literal(self.incoming)),
            'BEGIN;',
        ]
        if live_exists:
            statements.append('ALTER DATABASE %s RENAME TO %s;' % (quote_ident(self.live), quote_ident(self.previous)))
        statements += ['ALTER DATABASE %s RENAME TO %s;' % (quote_ident(self.incoming), quote_ident(self.live)),
                       'COMMIT;']
        script = '\n'.join(statements) + '\n'
        if self.config['stop']:
            run(self.config['stop'], 'stopping the web service for the switch')
        try:
            if live_exists:
                self.drop(self.previous, 'dropping the older copy %s' % self.previous)
            for attempt in range(1, self.config['switch_attempts'] + 1):
                try:
                    self.sql(script, 'switching %s to the new data' % self.live)
                    break
                except DbError as exc:
                    if 'is being accessed by other users' not in str(exc) or attempt == self.config['switch_attempts']:
                        raise
                    log('a client connected again during the switch; retrying (%d)' % attempt)
                    time.sleep(1)
        finally:
            if self.config['start']:
                run(self.config['start'], 'starting the web service again')
        return live_exists


# -- marker ------------------------------------------------------------------------------------

def read_marker(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, IOError):
        return {}
    except ValueError:
        return {}


def write_marker(path, content):
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, 'w') as handle:
            json.dump(content, handle, indent=2, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@contextlib.contextmanager
def locked(marker):
    directory = os.path.dirname(marker)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o750)
    path = os.path.join(directory, '.%s.lock' % os.path.basename(marker))
    handle = open(path, 'a')
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (OSError, IOError):
            raise DbError('another %s load is running (it holds the lock on %s)' % (PROG, path))
        yield
    finally:
        handle.close()


# -- commands ----------------------------------------------------------------------------------

@contextlib.contextmanager
def dump_stream(path):
    """The decompressed SQL of path (gzip -dc for .gz), checking the decompressor's exit status."""
    if not path.endswith('.gz'):
        with open(path, 'rb') as handle:
            yield handle
        return
    errors = tempfile.TemporaryFile()
    try:
        gzip = subprocess.Popen(['gzip', '-dc', path], stdout=subprocess.PIPE, stderr=errors)
    except (OSError, IOError) as exc:
        errors.close()
        raise DbError('cannot run gzip: %s' % (exc.strerror or exc))
    failure = []
    try:
        yield gzip.stdout
    except DbError as exc:
        failure.append(exc)
    finally:
        gzip.stdout.close()
        status = gzip.wait()
        errors.seek(0)
        message = _tail(errors.read())
        errors.close()
    # gzip's own failure (a cut or corrupt file) explains psql's complaint, so it comes first;
    # a SIGPIPE (-13) only means that psql stopped reading.
    if status not in (0, -13) or (status == -13 and not failure):
        raise DbError('gzip -dc %s failed with status %s%s%s' % (
            path, status, (': ' + message) if message else '', (' (then: %s)' % failure[0]) if failure else ''))
    if failure:
        raise failure[0]


def load(config, dump=None, date=None, sha256=None, source=None, use_stdin=False, write=True):
    database = Database(config)
    if dump is not None and not os.path.isfile(dump):
        raise DbError('dump %s does not exist' % dump)
    started = time.time()
    with locked(config['marker']):
        log('loading %s into %s' % (dump or 'stdin', database.incoming))
        database.create_incoming()
        try:
            if use_stdin:
                size = database.feed(sys.stdin.buffer, config['require_complete'])
            else:
                with dump_stream(dump) as stream:
                    size = database.feed(stream, config['require_complete'])
            log('loaded %d bytes of SQL; running the after-load steps on %s' % (size, database.incoming))
            database.steps(database.incoming)
        except DbError as exc:
            try:
                database.drop(database.incoming, 'dropping %s' % database.incoming)
                state = 'the incoming copy was dropped'
            except DbError as drop_exc:
                state = 'dropping the incoming copy failed too (%s)' % drop_exc
            raise DbError('load of %s failed: %s; the live database %s is unchanged and %s'
                          % (dump or 'stdin', exc, database.live, state))
        had_live = database.switch()
        marker = read_marker(config['marker'])
        if write:
            marker = {
                'database': database.live,
                'date': date,
                'sha256': sha256,
                'dump': os.path.basename(dump) if dump else None,
                'source': source,
                'sql_bytes': size,
                'loaded_at': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
                'previous': database.previous if had_live else None,
            }
            write_marker(config['marker'], marker)
        log('%s now holds %s (%s) in %.1f s' % (
            database.live, dump or 'the restored data',
            ('the former data kept as %s' % database.previous) if had_live else 'there was no former data',
            time.time() - started))
        return marker


def run_steps(config, names, check=False):
    database = Database(config)
    known = [step['name'] for step in config['steps']]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise UsageError('no step %s (known: %s)' % (unknown[0], ', '.join(known) or 'none'))
    if not database.exists(database.live):
        raise DbError('database %s does not exist' % database.live)
    return database.steps(database.live, names, check)


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description='Load an Alyx SQL dump safely.')
    sub = parser.add_subparsers(dest='command')
    sub.required = True
    p_load = sub.add_parser('load', help='load a dump into a fresh database and switch to it on success')
    p_load.add_argument('config')
    group = p_load.add_mutually_exclusive_group(required=True)
    group.add_argument('--dump', help='the dump (.sql or .sql.gz)')
    group.add_argument('--stdin', action='store_true', help='read plain SQL from stdin')
    p_load.add_argument('--date', help='dump date recorded in the marker')
    p_load.add_argument('--sha256', help='dump checksum recorded in the marker')
    p_load.add_argument('--source', help='where the dump came from (URL without credentials)')
    p_load.add_argument('--no-marker', action='store_true', help='leave the marker as it is (restores)')
    p_init = sub.add_parser('init', help='create the live database and set the role settings when missing')
    p_init.add_argument('config')
    p_init.add_argument('--check', action='store_true', help='only report what would change')
    p_step = sub.add_parser('step', help='run steps on the live database, in config order, and print their output')
    p_step.add_argument('config')
    p_step.add_argument('names', nargs='+', metavar='NAME')
    p_step.add_argument('--check', action='store_true', help='{check} in the steps\' argv becomes 1')
    p_status = sub.add_parser('status', help='print the marker')
    p_status.add_argument('config')
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == 'load':
            if args.sha256 is not None and not re.match(r'^[0-9a-f]{64}$', args.sha256):
                raise UsageError('--sha256 must be 64 lower-case hex digits')
            result = load(config, dump=args.dump, date=args.date, sha256=args.sha256, source=args.source,
                          use_stdin=args.stdin, write=not args.no_marker)
            print(json.dumps(result, sort_keys=True))
        elif args.command == 'init':
            changes = Database(config).ensure_live(args.check)
            print(json.dumps({'changed': bool(changes), 'changes': changes}))
        elif args.command == 'step':
            for output in run_steps(config, args.names, args.check).values():
                sys.stdout.write(output)
        else:
            print(json.dumps(read_marker(config['marker']), sort_keys=True))
    except DbError as exc:
        log('error: %s' % exc)
        return exc.exit_status
    return 0


if __name__ == '__main__':
    sys.exit(main())
