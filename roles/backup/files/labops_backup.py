#!/usr/bin/python3 -I
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops-backup: run, list, verify, prune and restore the backups of one job.

Installed by the labops.services ``backup`` role as ``/usr/local/sbin/labops-backup`` and run by
a systemd service (``labops-backup run /etc/labops/backup/<service>/<job>.json``). Standard
library only, Python 3.9+ (Debian 12/13, RHEL 9 system python).

    labops-backup run     CONFIG                    back up now, then prune (and copy, if configured)
    labops-backup list    CONFIG [--json]           artifacts, newest first
    labops-backup verify  CONFIG [ARTIFACT]         check the sha256 (default: newest)
    labops-backup prune   CONFIG [--dry-run]        apply the retention policy
    labops-backup restore CONFIG [ARTIFACT] --yes   verify, stop services, restore, start services

Expected failures (a failing dump, a checksum mismatch, a bad config...) end with ONE line
``labops-backup: <service>/<job>: error: <what happened>`` on stderr and exit status 1, so the
systemd unit fails and the journal says why. Usage errors exit with status 2. See
docs/backup-runner.md in the collection.
"""

from __future__ import absolute_import, division, print_function

import argparse
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zlib

PROG = 'labops-backup'
STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
STAMP_PATTERN = r'\d{8}T\d{6}Z'
DOCKER_ENV = 'LABOPS_BACKUP_DOCKER'
STALE_SECONDS = 24 * 3600          # a .partial this old belongs to no running backup
CHUNK = 1 << 20
CHILD_STOP_SECONDS = 10            # grace given to a child after SIGTERM, then SIGKILL

# compress setting -> (file name suffix, compressor argv, decompressor argv); argv[0] is looked up in PATH.
# gzip is compressed in this process with zlib (level 6, gzip's default), hashing the output as it is
# written: measured 15-25 % less CPU than piping through GNU gzip; restores use `gzip -dc`.
COMPRESSION = {
    'none': ('', None, None),
    'gzip': ('.gz', None, ['gzip', '-dc']),
    'zstd': ('.zst', ['zstd', '-q', '-c'], ['zstd', '-q', '-dc']),
}
GZIP_LEVEL = 6
SUFFIX_TO_COMPRESSION = dict((suffix, name) for name, (suffix, _c, _d) in COMPRESSION.items() if suffix)
PACKAGE_HINT = {'gzip': 'gzip', 'zstd': 'zstd', 'rsync': 'rsync'}


class BackupError(Exception):
    """An expected failure: one message, exit status 1."""

    exit_status = 1


class UsageError(BackupError):
    """The command line is incomplete (such as restore without --yes): exit status 2."""

    exit_status = 2


class Interrupted(BackupError):
    """SIGTERM or SIGINT arrived: raised in the main thread so that cleanups run."""


# -- configuration -----------------------------------------------------------------------------

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
EXTENSION_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)*$')


class _Checker(object):
    """Reads one JSON object, naming the dotted key in every error."""

    def __init__(self, data, where, source):
        self.data = data
        self.where = where
        self.source = source
        if not isinstance(data, dict):
            self.fail(where or 'the top level', 'must be a JSON object, got %s' % _json_type(data))

    def fail(self, key, message):
        raise BackupError('config %s: %s %s' % (self.source, _quote_key(key), message))

    def key(self, name):
        return '%s.%s' % (self.where, name) if self.where else name

    def only(self, required, optional=()):
        allowed = list(required) + list(optional)
        for name in sorted(self.data):
            if name not in allowed:
                self.fail(self.key(name), 'is not a known key (allowed: %s)' % ', '.join(allowed))
        for name in required:
            if name not in self.data:
                self.fail(self.key(name), 'is missing')

    def string(self, name, pattern=None, hint=''):
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            self.fail(self.key(name), 'must be a non-empty string, got %s' % _json_type(value))
        if pattern is not None and not pattern.match(value):
            self.fail(self.key(name), 'is %s: %s' % (json.dumps(value), hint))
        return value

    def choice(self, name, choices):
        value = self.data.get(name)
        if value not in choices:
            self.fail(self.key(name), 'must be one of %s, got %s' % (', '.join(choices), json.dumps(value)))
        return value

    def absolute_path(self, name):
        value = self.string(name)
        if not os.path.isabs(value):
            self.fail(self.key(name), 'must be an absolute path, got %s' % json.dumps(value))
        return os.path.normpath(value)

    def argv(self, name, allow_empty=False):
        value = self.data.get(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(self.key(name), 'must be a list of strings, got %s' % _json_type(value))
        if not value and not allow_empty:
            self.fail(self.key(name), 'must not be empty')
        if value and not value[0]:
            self.fail(self.key(name), 'must not start with an empty string')
        return list(value)

    def count(self, name):
        value = self.data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(self.key(name), 'must be an integer >= 0, got %s' % json.dumps(value))
        return value

    def child(self, name):
        return _Checker(self.data.get(name), self.key(name), self.source)


def _json_type(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'an empty string' if not value else 'a string'
    if isinstance(value, list):
        return 'a list'
    if isinstance(value, dict):
        return 'an object'
    return type(value).__name__


def _quote_key(key):
    return 'key %r' % key if not key.startswith('the ') else key


class Retention(object):
    def __init__(self, daily, weekly, monthly):
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly


class RestoreSpec(object):
    def __init__(self, command, input_mode, project_dir, stop_services):
        self.command = command
        self.input = input_mode
        self.project_dir = project_dir
        self.stop_services = stop_services


class CopySpec(object):
    def __init__(self, target, args):
        self.target = target
        self.args = args


class Config(object):
    """One job, as written by the role into /etc/labops/backup/<service>/<job>.json (mode 0600)."""

    REQUIRED = ('service', 'job', 'command', 'output', 'extension', 'compress', 'backup_root', 'retention')
    OPTIONAL = ('restore', 'copy_to', 'metrics_file')

    def __init__(self, path, service, job, command, output, extension, compress, backup_root,
                 retention, restore, copy_to, metrics_file=None):
        self.path = path
        self.service = service
        self.job = job
        self.command = command
        self.output = output
        self.extension = extension
        self.compress = compress
        self.backup_root = backup_root
        self.retention = retention
        self.restore = restore
        self.copy_to = copy_to
        self.metrics_file = metrics_file

    @property
    def label(self):
        return '%s/%s' % (self.service, self.job)

    @classmethod
    def load(cls, path):
        try:
            with open(path, 'rb') as handle:
                raw = handle.read()
        except OSError as exc:
            raise BackupError('cannot read config %s: %s' % (path, exc.strerror or exc))
        try:
            data = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BackupError('config %s is not valid JSON: %s' % (path, exc))
        return cls.from_data(data, path)

    @classmethod
    def from_data(cls, data, source='<data>'):
        top = _Checker(data, '', source)
        top.only(cls.REQUIRED, cls.OPTIONAL)
        name_hint = 'use letters, digits, ".", "_", "-" and start with a letter or digit'
        service = top.string('service', NAME_RE, name_hint)
        job = top.string('job', NAME_RE, name_hint)
        command = top.argv('command')
        output = top.choice('output', ('stdout', 'path'))
        extension = top.string('extension', EXTENSION_RE,
                               'use dot-separated words of letters, digits, "_" and "-" (e.g. "dump", "tar")')
        if extension.split('.')[-1] in ('sha256', 'partial'):
            top.fail('extension', 'must not end in ".sha256" or ".partial": those names are reserved')
        compress = top.choice('compress', tuple(COMPRESSION))
        backup_root = top.absolute_path('backup_root')

        keep = top.child('retention')
        keep.only(('daily', 'weekly', 'monthly'))
        retention = Retention(keep.count('daily'), keep.count('weekly'), keep.count('monthly'))

        restore = None
        if data.get('restore') is not None:
            spec = top.child('restore')
            spec.only(('command', 'input'), ('project_dir', 'stop_services'))
            stop_services = []
            if spec.data.get('stop_services') is not None:
                stop_services = spec.argv('stop_services', allow_empty=True)
            project_dir = None
            if spec.data.get('project_dir') is not None or stop_services:
                project_dir = spec.absolute_path('project_dir')
            restore = RestoreSpec(spec.argv('command'), spec.choice('input', ('stdin', 'path')),
                                  project_dir, stop_services)

        copy_to = None
        if data.get('copy_to') is not None:
            spec = top.child('copy_to')
            spec.only(('rsync',), ('args',))
            args = ['-a']
            if spec.data.get('args') is not None:
                args = spec.argv('args', allow_empty=True)
            copy_to = CopySpec(spec.string('rsync'), args)

        metrics_file = None
        if data.get('metrics_file') is not None:
            metrics_file = top.absolute_path('metrics_file')

        return cls(source, service, job, command, output, extension, compress, backup_root,
                   retention, restore, copy_to, metrics_file)


# -- retention (pure) --------------------------------------------------------------------------

def retain(stamps, daily, weekly, monthly):
    """Grandfather-father-son retention over timestamps; returns {kept stamp: [reasons]}.

    Keeps the newest stamp of each of the last ``daily`` distinct days that have one, the newest
    of each of the last ``weekly`` ISO weeks (ISO year + week number, so 2021-01-03 is in
    2020-W53) and of each of the last ``monthly`` calendar months, and always the newest stamp
    overall. Periods are counted among those that have stamps, not on the calendar: a gap of a
    week does not use up daily slots. A zero count keeps nothing for that period. Stamps are
    compared as given (the runner passes UTC datetimes); duplicates count once.
    """
    ordered = sorted(set(stamps), reverse=True)
    kept = {}
    if not ordered:
        return kept
    kept[ordered[0]] = ['newest']
    periods = (
        ('daily', daily, lambda stamp: stamp.date()),
        ('weekly', weekly, lambda stamp: tuple(stamp.isocalendar())[:2]),
        ('monthly', monthly, lambda stamp: (stamp.year, stamp.month)),
    )
    for reason, count, period_of in periods:
        seen = set()
        for stamp in ordered:
            if len(seen) >= count:
                break
            period = period_of(stamp)
            if period in seen:
                continue
            seen.add(period)
            kept.setdefault(stamp, []).append(reason)
    return kept


# -- artifacts on disk -------------------------------------------------------------------------

def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_stamp(text):
    try:
        return datetime.datetime.strptime(text, STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


class Artifact(object):
    def __init__(self, path, stamp, compression):
        self.path = path
        self.name = os.path.basename(path)
        self.stamp = stamp
        self.compression = compression

    @property
    def checksum_path(self):
        return self.path + '.sha256'

    def size(self):
        return os.stat(self.path).st_size


class ArtifactStore(object):
    """``<backup_root>/<service>/<job>/<UTC stamp>.<extension>[.gz|.zst]`` and their ``.sha256``.

    Only names of that form are ours; every other file in the directory is left alone.
    """

    def __init__(self, config):
        self.config = config
        self.directory = os.path.join(config.backup_root, config.service, config.job)
        self._name_re = re.compile(r'^(?P<stamp>%s)\.%s(?P<suffix>\.gz|\.zst)?$'
                                   % (STAMP_PATTERN, re.escape(config.extension)))

    def parse(self, path):
        """An Artifact when the file name is one of ours, else None."""
        match = self._name_re.match(os.path.basename(path))
        if not match:
            return None
        stamp = parse_stamp(match.group('stamp'))
        if stamp is None:
            return None
        return Artifact(path, stamp, SUFFIX_TO_COMPRESSION.get(match.group('suffix'), 'none'))

    def _names(self):
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []

    def artifacts(self):
        """Our artifacts (regular files only), newest first."""
        found = []
        for name in self._names():
            artifact = self.parse(os.path.join(self.directory, name))
            if artifact is not None and _is_regular(artifact.path):
                found.append(artifact)
        found.sort(key=lambda artifact: (artifact.stamp, artifact.name), reverse=True)
        return found

    def find(self, ref=None):
        """The artifact named by ``ref`` (a path, or a file name in the directory); default newest."""
        if ref is None:
            artifacts = self.artifacts()
            if not artifacts:
                raise BackupError('no backups of %s in %s' % (self.config.label, self.directory))
            return artifacts[0]
        path = os.path.abspath(ref) if os.sep in ref else os.path.join(self.directory, ref)
        artifact = self.parse(path)
        if artifact is None:
            raise BackupError('%s is not a backup of %s (names look like %s.%s[.gz|.zst])'
                              % (ref, self.config.label, utc_now().strftime(STAMP_FORMAT), self.config.extension))
        if not _is_regular(path):
            raise BackupError('backup %s does not exist (or is not a regular file)' % path)
        return artifact

    def stale_files(self, now=None):
        """Leftovers of crashed runs older than STALE_SECONDS: ``.*.partial`` and orphan checksums."""
        now = time.time() if now is None else now
        stale = []
        for name in sorted(self._names()):
            path = os.path.join(self.directory, name)
            if name.startswith('.') and name.endswith('.partial'):
                pass
            elif name.endswith('.sha256') and self.parse(name[:-len('.sha256')]) is not None:
                if os.path.lexists(path[:-len('.sha256')]):
                    continue
            else:
                continue
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode) and now - info.st_mtime > STALE_SECONDS:
                stale.append(path)
        return stale

    def ensure_directory(self):
        """Create the job directory (and missing parents) 0700; tighten it to 0700 if it exists."""
        missing = []
        path = self.directory
        while not os.path.isdir(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
        if stat.S_IMODE(os.stat(self.directory).st_mode) != 0o700:
            os.chmod(self.directory, 0o700)

    @contextlib.contextmanager
    def lock(self):
        """Exclusive, non-blocking flock on the job directory: one run or prune at a time."""
        fd = os.open(self.directory, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BackupError('another labops-backup run or prune of %s is in progress (it holds the lock on %s)'
                                  % (self.config.label, self.directory))
            yield
        finally:
            os.close(fd)

    def stamp_in_use(self, stamp):
        return any(name.startswith(stamp) or name.startswith('.' + stamp) for name in self._names())

    def new_name(self, suffix, clock=utc_now, sleep=time.sleep, attempts=5):
        """``<stamp>.<extension><suffix>`` for a second no file of this job uses yet (waits up to a few s)."""
        for _attempt in range(attempts):
            now = clock()
            stamp = now.strftime(STAMP_FORMAT)
            if not self.stamp_in_use(stamp):
                return '%s.%s%s' % (stamp, self.config.extension, suffix)
            sleep(1.0 - now.microsecond / 1e6 + 0.01)  # into the next second
        raise BackupError('cannot find a free file name in %s: backups already exist for the next %d seconds '
                          '(is the clock right?)' % (self.directory, attempts))

    def remove(self, artifact):
        for path in (artifact.path, artifact.checksum_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _is_regular(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _create_private(path):
    """A new, empty file, mode 0600; fails if the name exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    return fd


# -- checksums ---------------------------------------------------------------------------------

CHECKSUM_LINE_RE = re.compile(r'^(?P<hex>[0-9a-fA-F]{64}) [ *](?P<name>.+)$')


def sha256_of(handle):
    """Hex sha256 of an open binary file, from its current position to the end."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while True:
        count = handle.readinto(buffer)
        if not count:
            return digest.hexdigest()
        digest.update(view[:count])


def read_checksum(artifact):
    """The hex digest recorded beside an artifact (``sha256sum`` format)."""
    try:
        with open(artifact.checksum_path, 'r') as handle:
            line = handle.readline().rstrip('\n')
    except FileNotFoundError:
        raise BackupError('%s has no checksum file (%s): refusing to trust it'
                          % (artifact.path, os.path.basename(artifact.checksum_path)))
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError('cannot read %s: %s' % (artifact.checksum_path, getattr(exc, 'strerror', None) or exc))
    match = CHECKSUM_LINE_RE.match(line)
    if not match:
        raise BackupError('%s is not in sha256sum format ("<64 hex digits>  <file name>")' % artifact.checksum_path)
    if match.group('name') != artifact.name:
        raise BackupError('%s is the checksum of %s, not of %s'
                          % (artifact.checksum_path, match.group('name'), artifact.name))
    return match.group('hex').lower()


def verify_artifact(artifact, handle):
    """Raise BackupError unless the content of ``handle`` matches the recorded checksum."""
    expected = read_checksum(artifact)
    actual = sha256_of(handle)
    if actual != expected:
        raise BackupError('checksum mismatch for %s: %s records %s but the file hashes to %s; '
                          'the artifact is damaged or was changed'
                          % (artifact.path, os.path.basename(artifact.checksum_path), expected, actual))
    return actual


def write_checksum(final_path, digest):
    """``<final>.sha256`` (0600) written through a temp file and a rename."""
    name = os.path.basename(final_path)
    directory = os.path.dirname(final_path)
    temp = os.path.join(directory, '.%s.sha256.partial' % name)
    fd = _create_private(temp)
    try:
        try:
            os.write(fd, ('%s  %s\n' % (digest, name)).encode('utf-8'))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, final_path + '.sha256')
    except BaseException:
        _unlink_quietly(temp)
        raise


# -- child processes ---------------------------------------------------------------------------

def find_tool(name, why):
    path = shutil.which(name)
    if path is None:
        raise BackupError('%s needs the %s program, which is not in PATH (install the %s package)'
                          % (why, name, PACKAGE_HINT.get(name, name)))
    return path


def describe_status(returncode):
    if returncode < 0:
        try:
            return 'was killed by signal %s' % signal.Signals(-returncode).name
        except ValueError:
            return 'was killed by signal %d' % -returncode
    return 'exited with status %d' % returncode


class Children(object):
    """Start child processes; when the block fails (or is interrupted), stop those still running."""

    def __init__(self):
        self.processes = []

    def __enter__(self):
        return self

    def spawn(self, argv, what, **kwargs):
        try:
            process = subprocess.Popen(argv, **kwargs)
        except OSError as exc:
            raise BackupError('cannot start %s (%s): %s' % (what, argv[0], exc.strerror or exc))
        self.processes.append(process)
        return process

    def __exit__(self, exc_type, exc, traceback):
        for process in self.processes:
            if process.poll() is not None:
                continue
            if exc_type is None:
                process.wait()
                continue
            process.terminate()
            try:
                process.wait(CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return False


def _stderr_fd():
    sys.stderr.flush()
    return sys.stderr.fileno()


# -- run ---------------------------------------------------------------------------------------

class Runner(object):
    """One backup: temp file, command, checks, checksum, rename; then prune and copy."""

    def __init__(self, config, store=None, out=None, log=None):
        self.config = config
        self.store = store or ArtifactStore(config)
        self.out = out or sys.stdout
        self.log = log or Log(config.label)

    def run(self):
        config = self.config
        suffix, compressor, decompressor = COMPRESSION[config.compress]
        tools = {}
        if compressor:
            why = 'compress "%s"' % config.compress
            tools['compress'] = [find_tool(compressor[0], why)] + compressor[1:]
            tools['decompress'] = [find_tool(decompressor[0], why)] + decompressor[1:]
        if config.copy_to is not None:
            find_tool('rsync', 'copy_to')
        self.store.ensure_directory()
        with self.store.lock():
            started = time.time()
            try:
                artifact, digest = self._produce(suffix, tools)
            except (BackupError, OSError) as exc:
                reason = _describe_os_error(exc) if isinstance(exc, OSError) else str(exc)
                raise BackupError('backup failed: %s; nothing was pruned and the previous backups are untouched'
                                  % reason)
            self.out.write(artifact.path + '\n')
            self.out.flush()
            self.log.info('wrote %s (%s, sha256 %s) in %.1f s'
                          % (artifact.path, _human_size(artifact.size()), digest, time.time() - started))
            Pruner(config, self.store, self.log.info).apply(dry_run=False, lock=False)
            if config.copy_to is not None:
                Copier(config, self.store, self.log).copy(artifact)
        return artifact

    def _produce(self, suffix, tools):
        """Temp file -> checks -> checksum -> rename; on any failure nothing of this run is left."""
        store = self.store
        name = store.new_name(suffix)
        final = os.path.join(store.directory, name)
        partial = os.path.join(store.directory, '.%s.partial' % name)
        checksum_written = False
        try:
            if self.config.output == 'stdout':
                fd = _create_private(partial)
                try:
                    digest = self._from_stdout(fd, partial, tools)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                raw = os.path.join(store.directory, '.%s.partial' % name[:len(name) - len(suffix)])
                digest = self._from_path(partial, raw, tools)
            if digest is None:  # written by a child process: one more read
                with open(partial, 'rb', buffering=0) as handle:
                    digest = sha256_of(handle)
            write_checksum(final, digest)
            checksum_written = True
            os.rename(partial, final)
            _fsync_directory(store.directory)
        except BaseException:
            _unlink_quietly(partial)
            if checksum_written:
                _unlink_quietly(final + '.sha256')
            raise
        return store.parse(final), digest

    def _command_failed(self, process):
        return BackupError('the backup command (%s) %s' % (self.config.command[0], describe_status(process.returncode)))

    def _empty(self, where):
        return BackupError('the backup command (%s) exited with status 0 but %s: refusing an empty artifact'
                           % (self.config.command[0], where))

    def _from_stdout(self, fd, partial, tools):
        """Command stdout -> the temp file: straight to its descriptor, through zlib, or through the compressor.

        Returns the sha256 when it was computed on the way (gzip), else None.
        """
        compress = self.config.compress
        digest = None
        with Children() as children:
            if compress == 'none':
                command = children.spawn(self.config.command, 'the backup command', stdin=subprocess.DEVNULL, stdout=fd)
                command.wait()
            else:
                command = children.spawn(self.config.command, 'the backup command', stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, bufsize=0)
                try:
                    if compress == 'gzip':
                        digest, raw_bytes = gzip_into(command.stdout, fd)
                    else:
                        compressor = children.spawn(tools['compress'], 'the compressor', stdin=command.stdout, stdout=fd)
                finally:
                    command.stdout.close()
                command.wait()
                if compress != 'gzip':
                    compressor.wait()
        if command.returncode != 0:
            raise self._command_failed(command)
        if compress == 'none':
            empty = os.fstat(fd).st_size == 0
        elif compress == 'gzip':
            empty = raw_bytes == 0
        else:
            if compressor.returncode != 0:
                raise BackupError('the compressor (%s) %s' % (tools['compress'][0], describe_status(compressor.returncode)))
            empty = _decompresses_to_nothing(partial, tools['decompress'])
        if empty:
            raise self._empty('wrote nothing to stdout')
        return digest

    def _from_path(self, partial, raw, tools):
        """The command writes to $BACKUP_OUTPUT: the temp file itself, or ``raw`` that is then compressed into it.

        Returns the sha256 when it was computed on the way (gzip), else None.
        """
        compress = self.config.compress
        target = partial if compress == 'none' else raw
        os.close(_create_private(target))
        try:
            with Children() as children:
                command = children.spawn(self.config.command, 'the backup command', stdin=subprocess.DEVNULL,
                                         stdout=_stderr_fd(), env=dict(os.environ, BACKUP_OUTPUT=target))
                command.wait()
            if command.returncode != 0:
                raise self._command_failed(command)
            if not _is_regular(target):
                raise self._empty('left no file at $BACKUP_OUTPUT (%s)' % target)
            if os.lstat(target).st_size == 0:
                raise self._empty('$BACKUP_OUTPUT is empty')
            if compress == 'none':
                os.chmod(partial, 0o600)  # in case the command replaced the file
                with open(partial, 'rb') as handle:
                    os.fsync(handle.fileno())
                return None
            fd = _create_private(partial)
            try:
                with open(raw, 'rb', buffering=0) as source:
                    if compress == 'gzip':
                        digest = gzip_into(source, fd)[0]
                    else:
                        digest = None
                        with Children() as children:
                            compressor = children.spawn(tools['compress'], 'the compressor', stdin=source, stdout=fd)
                            compressor.wait()
                        if compressor.returncode != 0:
                            raise BackupError('the compressor (%s) %s'
                                              % (tools['compress'][0], describe_status(compressor.returncode)))
                os.fsync(fd)
            finally:
                os.close(fd)
            return digest
        finally:
            if target != partial:
                _unlink_quietly(raw)


def gzip_into(source, fd, level=GZIP_LEVEL):
    """Read a binary stream to its end, write it gzip-compressed to ``fd``; (sha256 of the output, input bytes)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip header and trailer
    digest = hashlib.sha256()
    raw_bytes = 0
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            break
        raw_bytes += len(chunk)
        _write_all(fd, compressor.compress(chunk), digest)
    _write_all(fd, compressor.flush(), digest)
    return digest.hexdigest(), raw_bytes


def _write_all(fd, data, digest=None):
    if digest is not None:
        digest.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _decompresses_to_nothing(path, decompressor):
    """True when a compressed file holds no data: decompress until the first byte, then stop."""
    with open(path, 'rb') as source, Children() as children:
        process = children.spawn(decompressor, 'the decompressor', stdin=source,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        first = process.stdout.read(1)
        process.stdout.close()
        process.wait()
    if not first and process.returncode != 0:
        raise BackupError('the compressed artifact cannot be read back (%s %s)'
                          % (decompressor[0], describe_status(process.returncode)))
    return not first


# -- prune -------------------------------------------------------------------------------------

class Pruner(object):
    def __init__(self, config, store=None, say=None):
        self.config = config
        self.store = store or ArtifactStore(config)
        self.say = say or (lambda line: print(line, flush=True))

    def plan(self):
        """(kept [(artifact, reasons)], removed [artifact], stale [path]); newest first."""
        artifacts = self.store.artifacts()
        policy = self.config.retention
        reasons = retain([artifact.stamp for artifact in artifacts], policy.daily, policy.weekly, policy.monthly)
        kept = [(artifact, reasons[artifact.stamp]) for artifact in artifacts if artifact.stamp in reasons]
        removed = [artifact for artifact in artifacts if artifact.stamp not in reasons]
        return kept, removed, self.store.stale_files()

    def apply(self, dry_run=False, lock=True):
        if not os.path.isdir(self.store.directory):
            self.say('nothing to prune: %s does not exist' % self.store.directory)
            return [], []
        if dry_run or not lock:
            return self._apply(dry_run)
        with self.store.lock():
            return self._apply(dry_run)

    def _apply(self, dry_run):
        kept, removed, stale = self.plan()
        verb = 'would remove' if dry_run else 'remove'
        for artifact, reasons in kept:
            self.say('keep %s (%s)' % (artifact.name, ', '.join(reasons)))
        for artifact in removed:
            self.say('%s %s' % (verb, artifact.name))
            if not dry_run:
                self.store.remove(artifact)
        for path in stale:
            self.say('%s %s (left by an interrupted run more than %d h ago)'
                     % (verb, os.path.basename(path), STALE_SECONDS // 3600))
            if not dry_run:
                _unlink_quietly(path)
        if (removed or stale) and not dry_run:
            _fsync_directory(self.store.directory)
        return kept, removed


# -- copy --------------------------------------------------------------------------------------

class Copier(object):
    """rsync the job folder to ``<target>/<service>/<job>/`` (``--relative``), partial files excluded."""

    def __init__(self, config, store, log):
        self.config = config
        self.store = store
        self.log = log

    def argv(self):
        spec = self.config.copy_to
        source = os.path.join(self.config.backup_root, '.', self.config.service, self.config.job) + '/'
        return ([find_tool('rsync', 'copy_to')] + spec.args
                + ['--relative', '--exclude=.*.partial', source, spec.target])

    def copy(self, artifact):
        target = self.config.copy_to.target
        with Children() as children:
            process = children.spawn(self.argv(), 'rsync', stdin=subprocess.DEVNULL, stdout=_stderr_fd())
            process.wait()
        if process.returncode != 0:
            raise BackupError('copy to %s failed: rsync %s; the new backup %s is kept locally'
                              % (target, describe_status(process.returncode), artifact.path))
        self.log.info('copied %s to %s' % (self.store.directory, target))


# -- restore -----------------------------------------------------------------------------------

class Restorer(object):
    """Verify, stop the app services, feed the artifact to the restore command, start them again."""

    def __init__(self, config, store=None, log=None):
        self.config = config
        self.store = store or ArtifactStore(config)
        self.log = log or Log(config.label)
        self.docker = os.environ.get(DOCKER_ENV) or 'docker'

    def restore(self, ref=None, confirmed=False):
        spec = self.config.restore
        if spec is None:
            raise BackupError('the config has no "restore" section: this job cannot be restored by labops-backup')
        artifact = self.store.find(ref)
        if not confirmed:
            raise UsageError('restoring %s replaces the live data of %s: add --yes to confirm'
                             % (artifact.name, self.config.label))
        decompress = None
        if artifact.compression != 'none':
            decompress_argv = COMPRESSION[artifact.compression][2]
            decompress = [find_tool(decompress_argv[0], 'restoring a %s artifact' % artifact.compression)] \
                + decompress_argv[1:]
        with open(artifact.path, 'rb', buffering=0) as source:
            digest = verify_artifact(artifact, source)
            self.log.info('checksum of %s verified (sha256 %s)' % (artifact.name, digest))
            source.seek(0)
            self._with_services_stopped(lambda: self._feed(artifact, source, decompress))
        self.log.info('restored %s from %s' % (self.config.label, artifact.path))

    def _compose(self, action):
        spec = self.config.restore
        argv = [self.docker, 'compose', '--project-directory', spec.project_dir, action] + spec.stop_services
        self.log.info('%s: %s' % (action, ' '.join(spec.stop_services)))
        with Children() as children:
            process = children.spawn(argv, 'docker compose %s' % action, stdin=subprocess.DEVNULL,
                                     stdout=_stderr_fd(), cwd=spec.project_dir)
            process.wait()
        if process.returncode != 0:
            raise BackupError('docker compose %s %s %s'
                              % (action, ' '.join(spec.stop_services), describe_status(process.returncode)))

    def _with_services_stopped(self, action):
        if not self.config.restore.stop_services:
            action()
            return
        failure = None
        try:
            self._compose('stop')
            action()
        except BaseException as exc:  # start the services again whatever happened
            failure = exc
        try:
            self._compose('start')
        except BackupError as exc:
            if failure is None:
                raise BackupError('restore succeeded but %s' % exc)
            self.log.error('%s (after the failure below)' % exc)
        if failure is not None:
            raise failure

    def _feed(self, artifact, source, decompress):
        spec = self.config.restore
        what = 'the restore command'
        if spec.input == 'path':
            self._feed_path(artifact, source, decompress)
            return
        with Children() as children:
            if decompress is None:
                command = children.spawn(spec.command, what, stdin=source, stdout=_stderr_fd())
                decompressor = None
            else:
                decompressor = children.spawn(decompress, 'the decompressor', stdin=source, stdout=subprocess.PIPE)
                try:
                    command = children.spawn(spec.command, what, stdin=decompressor.stdout, stdout=_stderr_fd())
                finally:
                    decompressor.stdout.close()
            command.wait()
            if decompressor is not None:
                decompressor.wait()
        self._check_command(command)
        if decompressor is not None and decompressor.returncode not in (0, -signal.SIGPIPE):
            raise BackupError('the decompressor (%s) %s while feeding the restore command'
                              % (decompress[0], describe_status(decompressor.returncode)))
        if decompressor is not None and decompressor.returncode == -signal.SIGPIPE:
            self.log.info('note: the restore command exited before reading all of %s' % artifact.name)

    def _feed_path(self, artifact, source, decompress):
        spec = self.config.restore
        temp = None
        path = artifact.path
        try:
            if decompress is not None:
                self.store.ensure_directory()
                temp = os.path.join(self.store.directory, '.restore-%s.partial' % artifact.name)
                _unlink_quietly(temp)
                fd = _create_private(temp)
                try:
                    with Children() as children:
                        decompressor = children.spawn(decompress, 'the decompressor', stdin=source, stdout=fd)
                        decompressor.wait()
                finally:
                    os.close(fd)
                if decompressor.returncode != 0:
                    raise BackupError('the decompressor (%s) %s' % (decompress[0], describe_status(decompressor.returncode)))
                path = temp
            with Children() as children:
                command = children.spawn(spec.command, 'the restore command', stdin=subprocess.DEVNULL,
                                         stdout=_stderr_fd(), env=dict(os.environ, BACKUP_INPUT=path))
                command.wait()
            self._check_command(command)
        finally:
            if temp is not None:
                _unlink_quietly(temp)

    def _check_command(self, command):
        if command.returncode != 0:
            raise BackupError('restore failed: the restore command (%s) %s'
                              % (self.config.restore.command[0], describe_status(command.returncode)))


# -- list / verify -----------------------------------------------------------------------------

def list_artifacts(config, out, as_json=False):
    store = ArtifactStore(config)
    artifacts = store.artifacts()
    if as_json:
        out.write(json.dumps([{'name': artifact.name, 'path': artifact.path, 'bytes': artifact.size(),
                               'timestamp': int(artifact.stamp.timestamp()),
                               'checksum': os.path.isfile(artifact.checksum_path)}
                              for artifact in artifacts]) + '\n')
        return
    if not artifacts:
        out.write('no backups of %s in %s\n' % (config.label, store.directory))
        return
    rows = [('NAME', 'BYTES', 'SIZE', 'SHA256')]
    for artifact in artifacts:
        size = artifact.size()
        rows.append((artifact.name, str(size), _human_size(size),
                     'yes' if os.path.isfile(artifact.checksum_path) else 'MISSING'))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        out.write('%s  %s  %s  %s\n' % (row[0].ljust(widths[0]), row[1].rjust(widths[1]),
                                        row[2].rjust(widths[2]), row[3]))


def verify_command(config, ref, out):
    artifact = ArtifactStore(config).find(ref)
    with open(artifact.path, 'rb', buffering=0) as handle:
        digest = verify_artifact(artifact, handle)
    out.write('OK %s sha256 %s\n' % (artifact.path, digest))


# -- metrics (node_exporter's textfile collector) ------------------------------------------------

def metrics_text(config, succeeded, now, artifacts):
    """The job's Prometheus textfile after a run: its outcome, and the artifacts now on disk."""
    labels = '{service="%s",job="%s"}' % (config.service, config.job)
    families = [
        ('last_run_timestamp_seconds', 'When the last run ended (Unix time).', int(now)),
        ('last_run_success', '1 when the last run wrote a backup, 0 when it failed.', 1 if succeeded else 0),
        ('artifacts', 'Backups kept on this host.', len(artifacts)),
    ]
    if artifacts:
        families += [
            ('newest_timestamp_seconds', 'When the newest backup was taken (Unix time).',
             int(artifacts[0].stamp.timestamp())),
            ('newest_bytes', 'Size of the newest backup.', artifacts[0].size()),
        ]
    lines = []
    for name, help_text, value in families:
        lines += ['# HELP labops_backup_%s %s' % (name, help_text),
                  '# TYPE labops_backup_%s gauge' % name,
                  'labops_backup_%s%s %d' % (name, labels, value)]
    return '\n'.join(lines) + '\n'


def write_metrics(config, succeeded, log, now=None):
    """Replace the job's metrics file atomically; a failure is logged, never fatal to the run."""
    path = config.metrics_file
    try:
        text = metrics_text(config, succeeded, time.time() if now is None else now,
                            ArtifactStore(config).artifacts())
        folder = os.path.dirname(path)
        partial = os.path.join(folder, '.%s.partial' % os.path.basename(path))
        with open(partial, 'w') as handle:
            handle.write(text)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except OSError as exc:
        log.error('could not write the metrics file: %s' % _describe_os_error(exc))


def _human_size(size):
    value = float(size)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024.0
    return '%d B' % size  # pragma: no cover


# -- command line ------------------------------------------------------------------------------

class Log(object):
    """Messages for the journal, on stderr, prefixed so that a line stands on its own."""

    def __init__(self, label=None):
        self.prefix = '%s: %s: ' % (PROG, label) if label else '%s: ' % PROG

    def info(self, message):
        sys.stderr.write(self.prefix + message + '\n')
        sys.stderr.flush()

    def error(self, message):
        self.info('error: ' + message)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, '%s: usage error: %s\n' % (PROG, message))


def build_parser():
    parser = _Parser(prog=PROG, description='Run, list, verify, prune and restore the backups of one labops job.')
    commands = parser.add_subparsers(dest='action', metavar='COMMAND')
    commands.required = True
    run = commands.add_parser('run', help='back up now, then prune (and copy, if configured)')
    run.add_argument('config', metavar='CONFIG')
    listing = commands.add_parser('list', help='list the artifacts, newest first')
    listing.add_argument('config', metavar='CONFIG')
    listing.add_argument('--json', action='store_true', help='print a JSON list instead of a table')
    verify = commands.add_parser('verify', help='check the sha256 of an artifact (default: the newest)')
    verify.add_argument('config', metavar='CONFIG')
    verify.add_argument('artifact', metavar='ARTIFACT', nargs='?')
    restore = commands.add_parser('restore', help='restore an artifact (default: the newest); needs --yes')
    restore.add_argument('config', metavar='CONFIG')
    restore.add_argument('artifact', metavar='ARTIFACT', nargs='?')
    restore.add_argument('--yes', action='store_true', help='confirm: the live data is replaced')
    prune = commands.add_parser('prune', help='apply the retention policy')
    prune.add_argument('config', metavar='CONFIG')
    prune.add_argument('--dry-run', action='store_true', help='only print what would be removed')
    return parser


def _install_signal_handlers():
    state = {'interrupted': False}

    def handler(signum, _frame):
        if state['interrupted']:
            return  # already unwinding: let the cleanups finish
        state['interrupted'] = True
        raise Interrupted('interrupted by %s' % signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _describe_os_error(exc):
    parts = [exc.strerror or str(exc)]
    if exc.filename:
        parts.append(str(exc.filename))
    if getattr(exc, 'filename2', None):
        parts.append(str(exc.filename2))
    return ': '.join(parts) if exc.errno != errno.ENOSPC else 'no space left on device: %s' % ' '.join(parts[1:])


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.umask(0o077)
    _install_signal_handlers()
    log = Log()
    try:
        config = Config.load(args.config)
        log = Log(config.label)
        if args.action == 'run':
            succeeded = False
            try:
                Runner(config, log=log).run()
                succeeded = True
            finally:
                if config.metrics_file:
                    write_metrics(config, succeeded, log)
        elif args.action == 'list':
            list_artifacts(config, sys.stdout, as_json=args.json)
        elif args.action == 'verify':
            verify_command(config, args.artifact, sys.stdout)
        elif args.action == 'prune':
            Pruner(config).apply(dry_run=args.dry_run)
        elif args.action == 'restore':
            Restorer(config, log=log).restore(args.artifact, confirmed=args.yes)
        return 0
    except BackupError as exc:
        log.error(str(exc))
        return exc.exit_status
    except OSError as exc:
        log.error(_describe_os_error(exc))
        return 1


if __name__ == '__main__':
    sys.exit(main())
