#!/usr/bin/env python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark labops.services.sql_dump_fetch against ``curl -o`` and ``ansible.builtin.get_url``.

One run, side by side, over loopback from a local server (nginx from Debian when installed,
started with a private config in a temp dir and stopped after; else a Python ``sendfile`` server):

* ``curl -o``                                     the floor: no hashing, no fsync
* ``ansible localhost -m ansible.builtin.get_url``  (force=true)
* ``ansible localhost -m labops.services.sql_dump_fetch``  (same ansible path, fair against get_url)
* the ``DumpFetcher`` class in a plain Python process: raw throughput and peak RSS (``/usr/bin/time -f %M``)
* optionally (``--gzip-mb``) the cost of the gzip check on an SQL-like ``.sql.gz``

Every tool runs ``--repeat`` times, the order rotating, with ``sync`` before each timed run;
the best and median MB/s are printed, then the ratios.

    .venv/bin/python tests/benchmarks/bench_sql_dump_fetch.py --size-mb 256 --repeat 1   # quick
    .venv/bin/python tests/benchmarks/bench_sql_dump_fetch.py                             # 2 GiB x 3
"""

from __future__ import absolute_import, division, print_function

import argparse
import gzip
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MB = 1000 * 1000
MIB = 1 << 20


# -- payloads ---------------------------------------------------------------------------------

def make_random_file(path, size):
    """Incompressible bytes (what a .sql.gz looks like to a client); returns the sha256."""
    digest = hashlib.sha256()
    block = os.urandom(8 * MIB)
    with open(path, 'wb') as out:
        written = 0
        counter = 0
        while written < size:
            # vary each block cheaply so that the file is not periodic
            chunk = bytearray(block[:min(len(block), size - written)])
            chunk[:8] = counter.to_bytes(8, 'little')
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            counter += 1
    return digest.hexdigest()


def make_sql_gzip(path, compressed_target):
    """gzip -6 of SQL-like INSERT lines, about ``compressed_target`` bytes."""
    row = 0
    with open(path, 'wb') as raw:
        with gzip.GzipFile(fileobj=raw, mode='wb', compresslevel=6, mtime=0) as out:
            while raw.tell() < compressed_target:
                lines = []
                for _dummy in range(20000):
                    h = hashlib.md5(str(row).encode()).hexdigest()
                    lines.append("INSERT INTO actions_session VALUES ('%s-%s', '%s', 'ephys', %d, '2026-11-%02d 10:%02d:00');\n"
                                 % (h[:8], h[8:20], h[20:], row % 977, 1 + row % 28, row % 60))
                    row += 1
                out.write(''.join(lines).encode())


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(MIB), b''):
            digest.update(block)
    return digest.hexdigest()


# -- servers ----------------------------------------------------------------------------------

def free_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class NginxServer(object):
    def __init__(self, root, workdir):
        self.port = free_port()
        self.workdir = workdir
        conf = os.path.join(workdir, 'nginx.conf')
        tmp = os.path.join(workdir, 'nginx-tmp')
        os.mkdir(tmp)
        with open(conf, 'w') as f:
            f.write('''worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {t}; proxy_temp_path {t}; fastcgi_temp_path {t}; uwsgi_temp_path {t}; scgi_temp_path {t};
  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{p}; root {r}; }}
}}
'''.format(w=workdir, t=tmp, p=self.port, r=root))
        self.proc = subprocess.Popen(['nginx', '-p', workdir, '-c', conf, '-e', os.path.join(workdir, 'nginx-error.log'),
                                      '-g', 'daemon off;'])
        wait_for_port(self.port, self.proc)
        self.name = 'nginx ' + subprocess.check_output(['nginx', '-v'], stderr=subprocess.STDOUT).decode().strip().rsplit('/', maxsplit=1)[-1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


class PythonSendfileServer(object):
    """Fallback when nginx is missing: http.server with socket.sendfile and Range support."""

    def __init__(self, root, workdir):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.serve(head=True)

            def do_GET(self):
                self.serve(head=False)

            def serve(self, head):
                path = os.path.join(root, os.path.basename(self.path))
                if not os.path.isfile(path):
                    self.send_response(404)
                    self.send_header('Content-Length', '0')
                    self.end_headers()
                    return
                size = os.path.getsize(path)
                start = 0
                rng = self.headers.get('Range', '')
                if rng.startswith('bytes=') and rng[6:].endswith('-'):
                    start = int(rng[6:-1])
                    self.send_response(206)
                    self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, size - 1, size))
                else:
                    self.send_response(200)
                self.send_header('Content-Length', str(size - start))
                self.send_header('Accept-Ranges', 'bytes')
                self.send_header('ETag', '"%x"' % int(os.path.getmtime(path)))
                self.end_headers()
                self.wfile.flush()
                if not head:
                    with open(path, 'rb') as f:
                        self.connection.sendfile(f, start, size - start)

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever)
        self.thread.daemon = True
        self.thread.start()
        self.name = 'python http.server + sendfile'

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit('the server exited with %s' % proc.returncode)
        try:
            socket.create_connection(('127.0.0.1', port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit('the server did not listen on 127.0.0.1:%d' % port)


# -- runners ----------------------------------------------------------------------------------

TIME_BIN = '/usr/bin/time' if os.path.exists('/usr/bin/time') else None


def timed(argv, env=None, cwd=None, rss=False):
    """Run ``argv``; return (seconds, (peak RSS KiB, CPU seconds) or None, stdout).

    The peak RSS comes from ``/usr/bin/time -f %M`` (Debian package ``time``), which forks
    from a small process; ``wait4`` on a child of this Python process would count this
    process's own pages, copied at fork, as the child's.
    """
    rss_file = None
    if rss and TIME_BIN:
        fd, rss_file = tempfile.mkstemp(prefix='rss-')
        os.close(fd)
        argv = [TIME_BIN, '-f', '%M %U %S', '-o', rss_file] + argv
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, check=False)
    elapsed = time.perf_counter() - start
    out = proc.stdout.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise SystemExit('%s failed (%s):\n%s\n%s' % (' '.join(argv[:8]), proc.returncode, out[-3000:], proc.stderr.decode()[-3000:]))
    peak = None
    if rss_file:
        with open(rss_file) as f:
            kib, user, system = f.read().strip().splitlines()[-1].split()
        peak = (int(kib), float(user) + float(system))
        os.unlink(rss_file)
    return elapsed, peak, out


def ansible_env():
    env = dict(os.environ)
    env['ANSIBLE_CONFIG'] = os.path.join(REPO, 'ansible.cfg')
    env.setdefault('ANSIBLE_HOME', os.path.join(REPO, '.build', 'ansible-home'))
    env['ANSIBLE_PYTHON_INTERPRETER'] = sys.executable
    env['ANSIBLE_LOAD_CALLBACK_PLUGINS'] = '1'
    env['ANSIBLE_STDOUT_CALLBACK'] = 'ansible.builtin.minimal'
    env['ANSIBLE_CALLBACK_RESULT_FORMAT'] = 'json'
    for name in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'):
        env.pop(name, None)
    return env


def ansible_module(module, args=None):
    ansible = os.path.join(os.path.dirname(sys.executable), 'ansible')
    argv = [ansible, 'localhost', '-i', 'localhost,', '-c', 'local', '-m', module]
    return argv + ['-a', json.dumps(args)] if args else argv


def parse_minimal(out):
    """The result of ``localhost | CHANGED => {...}`` (minimal callback)."""
    return json.loads(out.split(' => ', 1)[1])


RAW_SNIPPET = r'''
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch import DumpFetcher
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch_http import HttpTransport
f = DumpFetcher(url=sys.argv[2], dest=sys.argv[3], verify=sys.argv[4], transport=HttpTransport(use_proxy=False), force=True)
print(json.dumps(f.run()))
'''


class Bench(object):
    def __init__(self, opts):
        self.opts = opts
        self.workdir = tempfile.mkdtemp(prefix='sql_dump_fetch-bench-', dir=opts.workdir)
        os.chmod(self.workdir, 0o755)  # nginx workers run as nobody
        self.www = os.path.join(self.workdir, 'www')
        self.out = os.path.join(self.workdir, 'out')
        os.mkdir(self.www)
        os.mkdir(self.out)
        self.results = {}
        self.rss = {}
        self.cpu = {}
        self.server = None

    def start_server(self):
        want = self.opts.server
        if want == 'auto':
            want = 'nginx' if shutil.which('nginx') else 'python'
        self.server = NginxServer(self.www, self.workdir) if want == 'nginx' else PythonSendfileServer(self.www, self.workdir)

    def url(self, name):
        return 'http://127.0.0.1:%d/%s' % (self.server.port, name)

    def record(self, tool, seconds, size):
        self.results.setdefault(tool, []).append(size / seconds / MB)

    def usage(self, tool, usage, size):
        if usage:
            kib, cpu = usage
            self.rss[tool] = max(self.rss.get(tool, 0), kib)
            self.cpu.setdefault(tool, []).append(cpu / (size / 1e9))

    def fresh(self, path):
        if os.path.exists(path):
            os.unlink(path)
        for extra in (path + '.part', os.path.join(os.path.dirname(path), '.%s.fetch.json' % os.path.basename(path))):
            if os.path.exists(extra):
                os.unlink(extra)
        os.sync()

    def run_curl(self, name, size, sha):
        dest = os.path.join(self.out, 'curl.bin')
        self.fresh(dest)
        seconds, usage, _out = timed(['curl', '-sS', '--fail', '-o', dest, self.url(name)], rss=True)
        assert os.path.getsize(dest) == size
        self.record('curl -o', seconds, size)
        self.usage('curl -o', usage, size)
        os.unlink(dest)

    def run_get_url(self, name, size, sha):
        dest = os.path.join(self.out, 'get_url.bin')
        self.fresh(dest)
        seconds, _rss, out = timed(ansible_module('ansible.builtin.get_url', {'url': self.url(name), 'dest': dest, 'force': True}),
                                   env=ansible_env(), cwd=REPO)
        assert os.path.getsize(dest) == size, out
        self.record('get_url (ansible)', seconds, size)
        os.unlink(dest)

    def run_module(self, name, size, sha):
        dest = os.path.join(self.out, 'module.bin')
        self.fresh(dest)
        seconds, _rss, out = timed(ansible_module('labops.services.sql_dump_fetch', {'url': self.url(name), 'dest': dest}),
                                   env=ansible_env(), cwd=REPO)
        result = parse_minimal(out)
        assert result['sha256'] == sha and result['size'] == size, result
        self.record('sql_dump_fetch (ansible)', seconds, size)
        self.record('sql_dump_fetch (its elapsed)', result['elapsed'], size)
        self.fresh(dest)

    def run_raw(self, name, size, sha, verify='auto', tool='DumpFetcher class'):
        dest = os.path.join(self.out, 'raw-' + name)
        self.fresh(dest)
        argv = [sys.executable, '-c', RAW_SNIPPET, os.path.join(REPO, 'collections'), self.url(name), dest, verify]
        seconds, usage, out = timed(argv, rss=True)
        result = json.loads(out.strip().splitlines()[-1])
        assert result['sha256'] == sha and result['size'] == size, result
        self.record(tool, seconds, size)
        if tool == 'DumpFetcher class':
            self.record('DumpFetcher class (its elapsed)', result['elapsed'], size)
        self.usage(tool, usage, size)
        self.fresh(dest)

    def ansible_overhead(self):
        seconds, _rss, _out = timed(ansible_module('ansible.builtin.ping'), env=ansible_env(), cwd=REPO)
        return seconds

    def main(self):
        opts = self.opts
        size = opts.size_mb * MIB
        print('workdir %s; generating %d MiB payload ...' % (self.workdir, opts.size_mb), flush=True)
        sha = make_random_file(os.path.join(self.www, 'payload.bin'), size)
        self.start_server()
        try:
            print('server: %s on 127.0.0.1:%d; cpus: %d; load: %s' % (
                self.server.name, self.server.port, os.cpu_count(), open('/proc/loadavg').read().split()[:3]), flush=True)
            overhead = self.ansible_overhead()
            runs = [self.run_curl, self.run_get_url, self.run_module, self.run_raw]
            if opts.skip_ansible:
                runs = [self.run_curl, self.run_raw]
            for rep in range(opts.repeat):
                order = runs[rep % len(runs):] + runs[:rep % len(runs)]
                for run in order:
                    run('payload.bin', size, sha)
                print('  round %d: %s' % (rep + 1, ', '.join('%s %.0f' % (k, v[-1]) for k, v in self.results.items())), flush=True)
            gz_report = None
            if opts.gzip_mb:
                gz_path = os.path.join(self.www, 'dump.sql.gz')
                make_sql_gzip(gz_path, opts.gzip_mb * MIB)
                gz_size = os.path.getsize(gz_path)
                gz_sha = sha256_file(gz_path)
                for _rep in range(opts.repeat):
                    self.run_raw('dump.sql.gz', gz_size, gz_sha, verify='auto', tool='class, .sql.gz, gzip check')
                    self.run_raw('dump.sql.gz', gz_size, gz_sha, verify='none', tool='class, .sql.gz, verify=none')
                gz_report = gz_size
        finally:
            self.server.stop()
        self.report(size, overhead, gz_report)
        if not opts.keep:
            shutil.rmtree(self.workdir)

    def report(self, size, overhead, gz_size):
        print()
        print('payload %d MiB, %d round(s); MB/s = 10^6 bytes per second of wall time' % (size // MIB, self.opts.repeat))
        print('%-34s %9s %9s' % ('tool', 'best', 'median'))
        best = {}
        for tool, values in self.results.items():
            best[tool] = max(values)
            print('%-34s %9.0f %9.0f' % (tool, max(values), statistics.median(values)))
        print('ansible ad-hoc overhead (ping): %.2f s' % overhead)
        print()
        print('%-58s %9s %9s' % ('ratio', 'best/best', 'median of rounds'))

        def ratio(a, b):
            if a in best and b in best:
                rounds = [x / y for x, y in zip(self.results[a], self.results[b])]
                print('%-58s %9.2f %9.2f' % ('%s / %s' % (a, b), best[a] / best[b], statistics.median(rounds)))
        ratio('DumpFetcher class (its elapsed)', 'curl -o')
        ratio('DumpFetcher class', 'curl -o')
        ratio('sql_dump_fetch (its elapsed)', 'curl -o')
        ratio('sql_dump_fetch (ansible)', 'curl -o')
        ratio('sql_dump_fetch (ansible)', 'get_url (ansible)')
        if gz_size:
            print('gzip check on a %d MiB SQL .sql.gz: %.0f MB/s with it, %.0f MB/s without (compressed bytes)' % (
                gz_size // MIB, best['class, .sql.gz, gzip check'], best['class, .sql.gz, verify=none']))
        print()
        if not TIME_BIN:
            print('peak RSS: /usr/bin/time not found (apt-get install time)')
        for tool, kib in self.rss.items():
            print('peak RSS %-36s %6.1f MiB   CPU (user+sys) %.2f s per GB (median)' % (
                tool, kib / 1024.0, statistics.median(self.cpu[tool])))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size-mb', type=int, default=2048, help='payload size in MiB (default 2048)')
    parser.add_argument('--repeat', type=int, default=3, help='rounds per tool (default 3)')
    parser.add_argument('--gzip-mb', type=int, default=0, help='also time the gzip check on an SQL .sql.gz of about this many MiB')
    parser.add_argument('--server', choices=['auto', 'nginx', 'python'], default='auto')
    parser.add_argument('--skip-ansible', action='store_true', help='only curl and the class')
    parser.add_argument('--workdir', default=None, help='where to put payload and outputs (default: system temp dir)')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    return parser.parse_args(argv)


if __name__ == '__main__':
    if not shutil.which('curl'):
        raise SystemExit('curl is needed')
    Bench(parse_args()).main()
