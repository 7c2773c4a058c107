# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A private, throw-away MariaDB server for tests that need a real database.

    with MariaDBServer.start(str(tmp_path)) as server:
        server.load(path_of_dump, 'db')               # through the mariadb client, as a user would
        rows = server.query('SELECT HEX(a) FROM t', 'db')

The server runs as a subprocess of the test (``mariadb-install-db`` into a temporary
datadir, ``mariadbd --skip-networking`` with its unix socket in a short temporary
directory, as root with ``--user=root``), and is stopped when the block ends. Nothing
of the system's MariaDB configuration or service is used (``--no-defaults``).

``find_binaries()`` returns None when Debian's ``mariadb-server``/``mariadb-client``
packages are not installed; ``require_binaries()`` turns that into ``pytest.skip``, or
into a failure when ``LABOPS_REQUIRE_MARIADB=1`` (CI installs the packages).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import time

REQUIRE_ENV = 'LABOPS_REQUIRE_MARIADB'
PACKAGES = 'mariadb-server mariadb-client'


def _which(*names):
    path = os.environ.get('PATH', '') + os.pathsep + '/usr/sbin' + os.pathsep + '/usr/local/sbin'
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def find_binaries():
    binaries = {
        'server': _which('mariadbd', 'mysqld'),
        'install_db': _which('mariadb-install-db', 'mysql_install_db'),
        'client': _which('mariadb', 'mysql'),
    }
    return binaries if all(binaries.values()) else None


def require_binaries():
    """The binaries, or pytest.skip (pytest.fail when the environment requires MariaDB)."""
    import pytest
    binaries = find_binaries()
    if binaries is None:
        message = 'MariaDB binaries not found (Debian packages: %s)' % PACKAGES
        if os.environ.get(REQUIRE_ENV) == '1':
            pytest.fail('%s, and %s=1 requires them' % (message, REQUIRE_ENV))
        pytest.skip(message)
    return binaries


class MariaDBServer(object):
    def __init__(self, binaries, workdir):
        self.binaries = binaries
        if not os.path.isdir(workdir):
            os.makedirs(workdir)
        self.datadir = os.path.join(workdir, 'data')
        self.log = os.path.join(workdir, 'mariadbd.log')
        # unix socket paths are limited to about 100 bytes: keep it short
        self.sockdir = tempfile.mkdtemp(prefix='mdb-')
        self.socket = os.path.join(self.sockdir, 's')
        self.process = None

    @classmethod
    def start(cls, workdir, binaries=None, timeout=30):
        server = cls(binaries or require_binaries(), workdir)
        try:
            server._start(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _start(self, timeout):
        subprocess.run(
            [self.binaries['install_db'], '--no-defaults', '--datadir=' + self.datadir, '--user=root',
             '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True, timeout=timeout)
        self.process = subprocess.Popen(
            [self.binaries['server'], '--no-defaults', '--datadir=' + self.datadir, '--socket=' + self.socket,
             '--skip-networking', '--user=root', '--pid-file=' + os.path.join(self.sockdir, 'pid'),
             '--log-error=' + self.log, '--innodb-buffer-pool-size=32M', '--innodb-flush-log-at-trx-commit=0',
             '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError('mariadbd exited with %s:\n%s' % (self.process.returncode, self.read_log()))
            if os.path.exists(self.socket) and self.client(['-e', 'SELECT 1'], check=False).returncode == 0:
                return
            if time.time() > deadline:
                raise RuntimeError('mariadbd did not answer within %ss:\n%s' % (timeout, self.read_log()))
            time.sleep(0.1)

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return '(no log)'

    def client(self, args, stdin=None, check=True, database=None):
        cmd = [self.binaries['client'], '--no-defaults', '--socket=' + self.socket, '--user=root',
               '--default-character-set=utf8mb4']
        if database:
            cmd.append('--database=' + database)
        proc = subprocess.run(cmd + list(args), stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                              check=False)
        if check and proc.returncode != 0:
            raise RuntimeError('%s failed: %s' % (' '.join(cmd + list(args)), proc.stderr.decode('utf-8', 'replace')))
        return proc

    def load(self, path, database, check=True):
        """Feed a .sql file to the mariadb client, as ``mariadb db < file`` does."""
        with open(path, 'rb') as f:
            return self.client([], stdin=f, check=check, database=database)

    def query(self, sql, database=None):
        """Rows (lists of str) of a query, in batch mode without escaping."""
        out = self.client(['--batch', '--raw', '--skip-column-names', '-e', sql], database=database).stdout
        return [line.split('\t') for line in out.decode('utf-8').splitlines()]

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.sockdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False
