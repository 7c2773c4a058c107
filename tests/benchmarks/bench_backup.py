#!/usr/bin/env python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark labops-backup against a bare ``pg_dump -Fc`` of the same PostgreSQL database.

The acceptance bound of the backup role: backing up a ~1 GB database with ``labops-backup run``
(pg_dump to stdout straight into the temp file, fsync, sha256, checksum file, rename, prune)
takes at most 1.2x a bare ``pg_dump -Fc -f FILE`` (which fsyncs its file too) run side by side.

A private PostgreSQL cluster is created in a temporary directory (initdb, pg_ctl; unix socket
in a private directory, no TCP; run as ``postgres`` when this script runs as root), filled with
``pgbench -i -s N`` (N chosen for ``--size-mb``), optionally plus ``--random-mb`` of incompressible
bytea (the worst case for the extra read that hashes the artifact). Then, after a warm-up dump,
``--rounds`` rounds alternate the order of the two. Medians and the ratio are printed; the exit
status is 1 when the ratio is above ``--max-ratio``. The cluster is stopped and removed at the end.

Needs Debian's PostgreSQL server binaries (``apt-get install postgresql``: initdb, pg_ctl, postgres,
pg_dump, pgbench, psql under /usr/lib/postgresql/<version>/bin); installs nothing itself.

    .venv/bin/python tests/benchmarks/bench_backup.py --size-mb 100 --rounds 1   # quick
    .venv/bin/python tests/benchmarks/bench_backup.py                             # ~1 GB, 3 rounds
"""

from __future__ import absolute_import, division, print_function

import argparse
import glob
import json
import os
import pwd
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRAM = os.path.join(REPO, 'roles', 'backup', 'files', 'labops_backup.py')
TOOLS = ('initdb', 'pg_ctl', 'postgres', 'pg_dump', 'pgbench', 'psql')
MB_PER_SCALE = 15.0          # pgbench -i: about 15 MB of tables and indexes per scale unit
DEBIAN_PACKAGES = 'postgresql'


def find_bindir(explicit):
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob('/usr/lib/postgresql/*/bin'), key=lambda d: int(d.split('/')[-2]), reverse=True)
    candidates += sorted(glob.glob('/usr/pgsql-*/bin'), reverse=True)
    found = shutil.which('initdb')
    if found:
        candidates.append(os.path.dirname(os.path.realpath(found)))
    for directory in candidates:
        if directory and all(os.access(os.path.join(directory, tool), os.X_OK) for tool in TOOLS):
            return directory
    sys.exit('PostgreSQL server binaries (%s) not found: install them (Debian: apt-get install %s) '
             'or give --pg-bindir' % (', '.join(TOOLS), DEBIAN_PACKAGES))


class Cluster(object):
    """A throw-away PostgreSQL cluster: data and socket in temp dirs, no TCP."""

    def __init__(self, bindir, workdir):
        self.bindir = bindir
        self.data = os.path.join(workdir, 'pgdata')
        self.log = os.path.join(workdir, 'postgres.log')
        self.socket_dir = tempfile.mkdtemp(prefix='pgs-')   # socket paths must stay short
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam('postgres')
            except KeyError:
                sys.exit('running as root needs a "postgres" user to run the server (Debian\'s postgresql package creates it)')
            for path in (workdir, self.socket_dir):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self.started = False

    def tool(self, name):
        return os.path.join(self.bindir, name)

    def as_server_user(self, argv, **kwargs):
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[],
                          env=dict(os.environ, HOME=self.user.pw_dir, USER='postgres'))
        return subprocess.run(argv, check=True, **kwargs)

    def client(self, name, *args):
        return [self.tool(name), '-h', self.socket_dir, '-U', 'postgres'] + list(args)

    def start(self):
        self.as_server_user([self.tool('initdb'), '-D', self.data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8',
                             '--no-locale', '--no-sync'], stdout=subprocess.DEVNULL)
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as conf:
            conf.write("\n# bench_backup.py: private, socket-only, loading fast (the dumps only read)\n"
                       "listen_addresses = ''\nunix_socket_directories = '%s'\nfsync = off\n"
                       "synchronous_commit = off\nfull_page_writes = off\nmax_wal_size = '4GB'\n" % self.socket_dir)
        self.started = True
        self.as_server_user([self.tool('pg_ctl'), '-D', self.data, '-l', self.log, '-w', '-t', '60', 'start'],
                            stdout=subprocess.DEVNULL)

    def stop(self):
        if not self.started:
            return
        for mode in ('fast', 'immediate'):
            try:
                self.as_server_user([self.tool('pg_ctl'), '-D', self.data, '-m', mode, '-w', '-t', '30', 'stop'],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=45)
                return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                continue
        pid_file = os.path.join(self.data, 'postmaster.pid')
        if os.path.exists(pid_file):
            with open(pid_file) as handle:
                pid = int(handle.readline())
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cleanup(self):
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def query(cluster, sql):
    return subprocess.run(cluster.client('psql', '-X', '-A', '-t', '-q', '-d', 'bench', '-c', sql),
                          check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()


def fill(cluster, size_mb, random_mb):
    subprocess.run(cluster.client('psql', '-X', '-q', '-d', 'postgres', '-c', 'CREATE DATABASE bench'), check=True)
    scale = max(1, int(round(size_mb / MB_PER_SCALE)))
    started = time.perf_counter()
    subprocess.run(cluster.client('pgbench', '-i', '-q', '-s', str(scale), 'bench'), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if random_mb:
        rows = random_mb * 1000   # 1000 bytes of random data per row
        query(cluster, 'CREATE TABLE noise (id int PRIMARY KEY, payload bytea)')
        query(cluster, "INSERT INTO noise SELECT g, decode(string_agg(md5(random()::text || g || n), ''), 'hex') "
                       "FROM generate_series(1, %d) g, generate_series(1, 62) n GROUP BY g" % rows)
        query(cluster, 'VACUUM ANALYZE noise')
    size = int(query(cluster, "SELECT pg_database_size('bench')"))
    print('database: pgbench scale %d%s, %.0f MB (pg_database_size), loaded in %.0f s'
          % (scale, ' + %d MB random bytea' % random_mb if random_mb else '', size / 1e6, time.perf_counter() - started),
          flush=True)
    return size


def timed(argv, **kwargs):
    """(wall seconds, CPU seconds of the client processes) of one run; the server's CPU is not counted."""
    subprocess.run(['sync'], check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size-mb', type=int, default=1000, help='database size to generate with pgbench (default 1000)')
    parser.add_argument('--random-mb', type=int, default=0, help='add this many MB of incompressible bytea (default 0)')
    parser.add_argument('--rounds', type=int, default=3, help='timed runs of each, alternating (default 3)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed bare dumps first (default 1)')
    parser.add_argument('--max-ratio', type=float, default=1.2, help='fail above this median ratio (default 1.2)')
    parser.add_argument('--pg-bindir', help='directory with initdb, pg_ctl, pg_dump, pgbench (default: newest found)')
    parser.add_argument('--python', default='/usr/bin/python3' if os.path.exists('/usr/bin/python3') else sys.executable,
                        help='interpreter for labops-backup (default: the system python3, as installed by the role)')
    parser.add_argument('--workdir', default=None, help='parent of the temporary directory (needs ~2.5x the size free)')
    args = parser.parse_args()

    bindir = find_bindir(args.pg_bindir)
    work = tempfile.mkdtemp(prefix='labops-bench-backup-', dir=args.workdir)
    os.chmod(work, 0o755)
    cluster = Cluster(bindir, work)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit('terminated'))
    try:
        version = subprocess.run([cluster.tool('pg_dump'), '--version'], check=True, stdout=subprocess.PIPE,
                                 universal_newlines=True).stdout.strip()
        python_version = subprocess.run([args.python, '-c', 'import platform; print(platform.python_version())'],
                                        check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
        print('%s; labops-backup on %s (Python %s); %d CPUs; load average %s'
              % (version, args.python, python_version, os.cpu_count(), ' '.join('%.1f' % x for x in os.getloadavg())),
              flush=True)
        cluster.start()
        db_size = fill(cluster, args.size_mb, args.random_mb)

        bare_dir = os.path.join(work, 'bare')
        os.mkdir(bare_dir)
        bare_file = os.path.join(bare_dir, 'bench.dump')
        bare = cluster.client('pg_dump', '-Fc', '-f', bare_file, 'bench')
        config_path = os.path.join(work, 'job.json')
        with open(config_path, 'w') as handle:
            json.dump({
                'service': 'bench', 'job': 'db',
                'command': cluster.client('pg_dump', '-Fc', 'bench'),
                'output': 'stdout', 'extension': 'dump', 'compress': 'none',
                'backup_root': os.path.join(work, 'backups'),
                'retention': {'daily': 1, 'weekly': 0, 'monthly': 0},   # each run also prunes the previous one
                'restore': None, 'copy_to': None,
            }, handle)
        tool = [args.python, '-I', PROGRAM, 'run', config_path]

        for _warmup in range(args.warmup):
            timed(bare)
            os.unlink(bare_file)
        times = {'bare': [], 'labops': []}
        cpu = {'bare': [], 'labops': []}
        artifact = None
        for round_no in range(args.rounds):
            order = ('bare', 'labops') if round_no % 2 == 0 else ('labops', 'bare')
            for name in order:
                if name == 'bare':
                    if os.path.exists(bare_file):
                        os.unlink(bare_file)
                    seconds, cpu_seconds = timed(bare)
                else:
                    seconds, cpu_seconds = timed(tool, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                    artifact = sorted(glob.glob(os.path.join(work, 'backups', 'bench', 'db', '*.dump')))[-1]
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
                print('round %d  %-7s %7.2f s  (client CPU %.2f s)' % (round_no + 1, name, seconds, cpu_seconds), flush=True)

        bare_median = statistics.median(times['bare'])
        tool_median = statistics.median(times['labops'])
        ratio = tool_median / bare_median
        pair_ratios = [tool / bare for tool, bare in zip(times['labops'], times['bare'])]
        bare_size = os.path.getsize(bare_file)
        artifact_size = os.path.getsize(artifact)
        print()
        print('database            %10.0f MB' % (db_size / 1e6))
        print('pg_dump -Fc -f      median %7.2f s  (%s)  client CPU %.2f s  artifact %.1f MB'
              % (bare_median, ', '.join('%.2f' % t for t in times['bare']), statistics.median(cpu['bare']), bare_size / 1e6))
        print('labops-backup run   median %7.2f s  (%s)  client CPU %.2f s  artifact %.1f MB + .sha256'
              % (tool_median, ', '.join('%.2f' % t for t in times['labops']), statistics.median(cpu['labops']),
                 artifact_size / 1e6))
        print('other views         best-of ratio %.3f; per-round ratios %s; client CPU ratio %.3f; load average now %s'
              % (min(times['labops']) / min(times['bare']), ', '.join('%.2f' % r for r in pair_ratios),
                 statistics.median(cpu['labops']) / statistics.median(cpu['bare']),
                 ' '.join('%.1f' % x for x in os.getloadavg())))
        print('ratio labops/bare   %.3f  (medians; bound %.2f)  %s'
              % (ratio, args.max_ratio, 'OK' if ratio <= args.max_ratio else 'TOO SLOW'))
        return 0 if ratio <= args.max_ratio else 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        cluster.stop()
        cluster.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
