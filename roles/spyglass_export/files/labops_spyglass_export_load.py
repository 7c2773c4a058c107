#!/usr/bin/python3 -I
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops-spyglass-export-load: load a Spyglass paper export into its database once, in order.

Installed by the labops.services ``spyglass_export`` role as
``/usr/local/sbin/labops-spyglass-export-load``; the role writes its configuration
(``<project>/export/load.json``, no secrets). Standard library only, Python 3.6+.

    labops-spyglass-export-load status CONFIG          what is loaded and what would be (JSON)
    labops-spyglass-export-load load   CONFIG [--all]  load what is not loaded yet (JSON report)

CONFIG is JSON: ``files`` (absolute paths of the sanitised ``.sql`` files, in load order),
``markers`` (folder of the markers) and ``client`` (argv of a ``mysql`` client that reads SQL on
stdin and stops at the first error, e.g. ``docker compose exec -T db sh -c 'MYSQL_PWD=... mysql'``).

Upstream's database image runs every export file on every container start; this program runs
each file once. A file is loaded when a marker named after the sha256 of its content exists
(``<markers>/<sha256>.json``), written atomically only after the client finished the whole
file without an error. The files still to load are those from the first file without a marker
to the end of the list: when a file is new or changed, every file after it is loaded again,
so the database ends as if all files had been loaded in order (a later export of a table
replaces an earlier one). Their markers are removed before loading starts, and each one is
written back as its file succeeds. ``--all`` loads every file again.

A failed file stops the load: the markers of the files before it stay, its own and those of
the files after it are absent, and the program ends with ONE line on stderr,

    labops-spyglass-export-load: error: _Populate_x.sql line 123: ERROR 1071 (42000): Specified
    key was too long; max key length is 3072 bytes [near: CREATE TABLE `t` (]; not marked as
    loaded; not attempted: _Populate_x_v2.sql

and exit status 1 (usage or configuration errors: exit status 2). The line is the one the
client reports (where the failing statement starts) in the file as loaded. SQL statements the
file ran before the failing one stay applied: MySQL cannot roll back DDL. The next run loads
the file again from its start (mysqldump files begin each table with DROP TABLE IF EXISTS).
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

PROG = 'labops-spyglass-export-load'
CHUNK = 1 << 20
STDERR_KEEP = 64 * 1024
EXCERPT_CHARS = 120
# "ERROR 1071 (42000) at line 123: message" (mysql and mariadb clients). Without "at line"
# when the client fails before reading the file (e.g. ERROR 2002: cannot connect).
ERROR_LINE = re.compile(r'^ERROR (?P<code>\d+)(?: \((?P<state>[0-9A-Z]{5})\))?(?: at line (?P<line>\d+))?: (?P<message>.*)$')
HINTS = {
    '1071': 'shrink its varchar key columns with spyglass_export_column_lengths',
    '1273': 'map the collation with spyglass_export_collation_map',
}


class LoadError(Exception):
    """An expected failure: one message, exit status 1."""

    exit_status = 1


class UsageError(LoadError):
    exit_status = 2


# -- reading the client's errors ----------------------------------------------------------------

def parse_client_error(stderr_text):
    """The client's first ``ERROR`` line as a dict (code, state, line, message), or None."""
    for raw in stderr_text.splitlines():
        match = ERROR_LINE.match(raw.strip())
        if match:
            found = match.groupdict()
            found['line'] = int(found['line']) if found['line'] else None
            return found
    return None


def line_excerpt(path, lineno, limit=EXCERPT_CHARS):
    """The start of line ``lineno`` (1-based) of ``path``, at most ``limit`` characters, or None.

    Reads in chunks, so a line of gigabytes (one INSERT) costs no memory.
    """
    if not lineno or lineno < 1:
        return None
    current = 1
    collected = b''
    try:
        with open(path, 'rb') as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                start = 0
                while current < lineno:
                    newline = chunk.find(b'\n', start)
                    if newline < 0:
                        start = len(chunk)
                        break
                    current += 1
                    start = newline + 1
                if current < lineno:
                    continue
                end = chunk.find(b'\n', start)
                collected += chunk[start:end if end >= 0 else len(chunk)]
                if end >= 0 or len(collected) >= limit * 4:
                    break
    except (IOError, OSError):
        return None
    if current < lineno:
        return None
    text = collected.decode('utf-8', 'replace').strip()
    return text if len(text) <= limit else text[:limit] + '...'


def describe_failure(name, path, status, stderr_text):
    """One line naming the file, the line and the server's error."""
    error = parse_client_error(stderr_text)
    if error is None:
        tail = [line.strip() for line in stderr_text.splitlines() if line.strip()][-3:]
        return '%s: the client exited with status %s: %s' % (name, status, ' | '.join(tail) or '(no output)')
    where = '%s line %d' % (name, error['line']) if error['line'] else name
    state = ' (%s)' % error['state'] if error['state'] else ''
    text = '%s: ERROR %s%s: %s' % (where, error['code'], state, error['message'])
    excerpt = line_excerpt(path, error['line'])
    if excerpt:
        text += ' [near: %s]' % excerpt
    if error['code'] in HINTS:
        text += ' (%s)' % HINTS[error['code']]
    return text


# -- files and markers --------------------------------------------------------------------------

def sha256_of(path):
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, 'rb') as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
                size += len(chunk)
    except (IOError, OSError) as exc:
        raise LoadError('cannot read %s: %s' % (path, exc.strerror or exc))
    return digest.hexdigest(), size


def marker_path(markers, sha256):
    return os.path.join(markers, sha256 + '.json')


def write_marker(markers, record):
    """Write ``<markers>/<sha256>.json`` atomically (temp file, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(prefix='.marker-', dir=markers)
    try:
        with os.fdopen(fd, 'w') as handle:
            json.dump(record, handle, indent=2, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, marker_path(markers, record['sha256']))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(markers, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_marker(markers, sha256):
    try:
        os.unlink(marker_path(markers, sha256))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def plan(config, reload_all=False):
    """Every file with its sha256 and whether it is loaded, and the index of the first to load."""
    files = []
    for path in config['files']:
        sha256, size = sha256_of(path)
        files.append({'path': path, 'name': os.path.basename(path), 'sha256': sha256, 'bytes': size,
                      'loaded': os.path.exists(marker_path(config['markers'], sha256))})
    first = 0 if reload_all else next((i for i, entry in enumerate(files) if not entry['loaded']), len(files))
    return files, first


# -- configuration ------------------------------------------------------------------------------

def read_config(path):
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError) as exc:
        raise UsageError('cannot read the configuration %s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise UsageError('the configuration %s is not JSON: %s' % (path, exc))
    problems = []
    if not isinstance(config, dict):
        raise UsageError('the configuration %s must be a JSON object' % path)
    files = config.get('files')
    if not isinstance(files, list) or not all(isinstance(f, str) and os.path.isabs(f) for f in files):
        problems.append('files must be a list of absolute paths')
    elif len(set(os.path.basename(f) for f in files)) != len(files):
        problems.append('the files must have distinct names')
    markers = config.get('markers')
    if not isinstance(markers, str) or not os.path.isabs(markers):
        problems.append('markers must be an absolute path')
    client = config.get('client')
    if not isinstance(client, list) or not client or not all(isinstance(a, str) for a in client):
        problems.append('client must be a non-empty list of strings (argv)')
    if problems:
        raise UsageError('%s: %s' % (path, '; '.join(problems)))
    return config


# -- loading ------------------------------------------------------------------------------------

def run_client(client, path):
    """Feed ``path`` to the client on stdin; its exit status and the end of its stderr."""
    try:
        with open(path, 'rb') as stdin:
            process = subprocess.Popen(client, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            kept = b''
            while True:
                chunk = process.stderr.read(CHUNK)
                if not chunk:
                    break
                # The client may echo a whole failing statement (an INSERT of gigabytes): keep
                # only the end, where its ERROR line is.
                kept = (kept + chunk)[-STDERR_KEEP:]
            status = process.wait()
    except (IOError, OSError) as exc:
        raise LoadError('cannot run %s on %s: %s' % (client[0], path, exc.strerror or exc))
    return status, kept.decode('utf-8', 'replace')


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def load(config, reload_all=False):
    markers = config['markers']
    if not os.path.isdir(markers):
        os.makedirs(markers, 0o755)
    files, first = plan(config, reload_all)
    pending = files[first:]
    for entry in pending:
        remove_marker(markers, entry['sha256'])
    loaded = []
    for position, entry in enumerate(pending):
        status, stderr_text = run_client(config['client'], entry['path'])
        if status != 0:
            rest = [later['name'] for later in pending[position + 1:]]
            message = describe_failure(entry['name'], entry['path'], status, stderr_text)
            message += '; not marked as loaded'
            if loaded:
                message += '; loaded before it in this run: %s' % ', '.join(loaded)
            if rest:
                message += '; not attempted: %s' % ', '.join(rest)
            raise LoadError(message)
        write_marker(markers, {'file': entry['name'], 'path': entry['path'], 'sha256': entry['sha256'],
                               'bytes': entry['bytes'], 'position': first + position + 1, 'loaded_at': now()})
        loaded.append(entry['name'])
    return {
        'loaded': loaded,
        'already_loaded': [entry['name'] for entry in files[:first]],
        'files': [dict(entry, loaded=True) for entry in files],
    }


def status(config):
    files, first = plan(config)
    return {
        'files': files,
        'pending': [entry['name'] for entry in files[first:]],
        'already_loaded': [entry['name'] for entry in files[:first]],
    }


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def main(argv=None):
    parser = _Parser(prog=PROG, description='Load a Spyglass paper export into its database once, in order.')
    sub = parser.add_subparsers(dest='command')
    p_status = sub.add_parser('status', help='show which files are loaded and which would be (JSON)')
    p_status.add_argument('config')
    p_load = sub.add_parser('load', help='load the files not loaded yet, in order (JSON report)')
    p_load.add_argument('config')
    p_load.add_argument('--all', action='store_true', help='load every file again')
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError('a command is required: status or load')
        config = read_config(args.config)
        if args.command == 'status':
            result = status(config)
        else:
            lock_path = os.path.join(os.path.dirname(os.path.abspath(args.config)), '.load.lock')
            with open(lock_path, 'a') as lock:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except (IOError, OSError):
                    raise LoadError('another load of %s is running (lock %s)' % (args.config, lock_path))
                result = load(config, reload_all=args.all)
    except LoadError as exc:
        sys.stderr.write('%s: error: %s\n' % (PROG, exc))
        return exc.exit_status
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
