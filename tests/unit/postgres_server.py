# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A private, throw-away PostgreSQL cluster for tests that need a real database.

    with PostgresServer.start() as server:
        server.psql('CREATE TABLE t (a int)', 'postgres')
        server.client_argv()          # ['/usr/lib/postgresql/15/bin/psql', '-h', SOCKDIR, '-U', 'postgres']

initdb into a temporary directory, ``pg_ctl start`` with the unix socket in a short private
directory and no TCP, trust authentication, fsync off; stopped and removed when the block ends.
Run as ``postgres`` when the tests run as root (Debian's postgresql package creates that user).

``find_bindir()`` returns None when Debian's ``postgresql`` package is not installed;
``require_bindir()`` turns that into ``pytest.skip``, or into a failure when
``LABOPS_REQUIRE_POSTGRES=1``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

REQUIRE_ENV = 'LABOPS_REQUIRE_POSTGRES'
PACKAGES = 'postgresql'
TOOLS = ('initdb', 'pg_ctl', 'postgres', 'psql', 'pg_dump')


def find_bindir():
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin'), key=lambda d: int(d.split('/')[-2]), reverse=True)
    for directory in candidates:
        if all(os.access(os.path.join(directory, tool), os.X_OK) for tool in TOOLS):
            return directory
    return None


def require_bindir():
    import pytest
    bindir = find_bindir()
    if bindir is None:
        message = 'PostgreSQL server binaries not found (Debian package: %s)' % PACKAGES
        if os.environ.get(REQUIRE_ENV) == '1':
            pytest.fail('%s, and %s=1 requires them' % (message, REQUIRE_ENV))
        pytest.skip(message)
    return bindir


class PostgresServer(object):
    def __init__(self, bindir):
        self.bindir = bindir
        # not under pytest's tmp_path: that is private to root, and the server runs as postgres
        self.workdir = tempfile.mkdtemp(prefix='pgw-')
        self.data = os.path.join(self.workdir, 'data')
        self.log = os.path.join(self.workdir, 'postgres.log')
        self.socket_dir = tempfile.mkdtemp(prefix='pgs-')   # unix socket paths must stay short
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam('postgres')
            for path in (self.workdir, self.socket_dir):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self.started = False

    @classmethod
    def start(cls, bindir=None):
        server = cls(bindir or require_bindir())
        try:
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def tool(self, name):
        return os.path.join(self.bindir, name)

    def _as_server_user(self, argv, **kwargs):
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[],
                          env=dict(os.environ, HOME=self.user.pw_dir, USER='postgres'))
        return subprocess.run(argv, check=True, **kwargs)

    def _start(self):
        self._as_server_user([self.tool('initdb'), '-D', self.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8',
                              '--no-locale', '--no-sync'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as conf:
            conf.write("\nlisten_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\n" % self.socket_dir)
        self.started = True
        self._as_server_user([self.tool('pg_ctl'), '-D', self.data, '-l', self.log, '-w', '-t', '60', 'start'],
                             stdout=subprocess.DEVNULL)

    def stop(self):
        if self.started:
            try:
                self._as_server_user([self.tool('pg_ctl'), '-D', self.data, '-m', 'immediate', '-w', '-t', '30', 'stop'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except subprocess.CalledProcessError:
                pass
            self.started = False
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def client_argv(self, name='psql'):
        return [self.tool(name), '-h', self.socket_dir, '-U', 'postgres']

    def psql(self, sql, database='postgres', check=True):
        """Run SQL, return the unaligned, tuples-only output (stripped)."""
        result = subprocess.run(self.client_argv() + ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', database],
                                input=sql, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if check and result.returncode != 0:
            raise AssertionError('psql failed (%d): %s' % (result.returncode, result.stderr))
        return result.stdout.strip()

    def databases(self):
        return set(self.psql("SELECT datname FROM pg_database WHERE NOT datistemplate").split())
