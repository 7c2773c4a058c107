# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/status/files/labops_status.py: the checks, the problem count, the table and the metrics.

The Docker, systemd and backup-runner answers are recorded ones, given by a fake Host (the
program's only door to the machine); the URL probe and the certificate reading are real: a TLS
server on 127.0.0.1 with a certificate made by openssl, read back by openssl. The Molecule
scenario datalab runs the program for real on a test host (playbooks/status.yml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading

import pytest

from ansible_collections.labops.services.tests.unit.utils import load_program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'status', 'files', 'labops_status.py')
UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()


ls = load_program(SCRIPT)

# `TZ=UTC systemd-analyze calendar --iterations=...` as systemd 257 (Debian 13) prints it.
DAILY = """  Original form: *-*-* 04:05:00
Normalized form: *-*-* 04:05:00
    Next elapse: Mon 2026-11-23 04:05:00 UTC
       From now: 16h left
   Iteration #2: Tue 2026-11-24 04:05:00 UTC
       From now: 1 day 16h left
   Iteration #3: Wed 2026-11-25 04:05:00 UTC
       From now: 2 days left
"""
WEEKDAYS = """Normalized form: Mon..Fri *-*-* 02:00:00
    Next elapse: Fri 2026-11-27 02:00:00 UTC
        Iter. #2: Mon 2026-11-30 02:00:00 UTC
        Iter. #3: Tue 2026-12-01 02:00:00 UTC
"""


def container(name, service, status='running', health=None, code=0, policy='unless-stopped', aliases=()):
    state = {'Status': status, 'ExitCode': code}
    if health:
        state['Health'] = {'Status': health}
    return {'Name': '/' + name, 'State': state, 'HostConfig': {'RestartPolicy': {'Name': policy}},
            'Config': {'Labels': {'com.docker.compose.project': name.split('-')[0], 'com.docker.compose.service': service}},
            'NetworkSettings': {'Networks': {'labops_proxy': {'Aliases': list(aliases), 'DNSNames': None}}}}


class FakeHost(ls.Host):
    """A lab host: the datalab stack, its proxy route, two backup jobs."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.files = {}
        self.commands = []
        self.containers = {'datalab': [container('datalab-app-1', 'app', health='healthy', aliases=['datalab-app']),
                                       container('datalab-api-1', 'api', health='healthy', aliases=['datalab-api']),
                                       container('datalab-database-1', 'database', health='healthy')]}
        self.artifacts = {'daily': [{'name': 'a', 'path': '/b/a', 'bytes': 2048, 'timestamp': NOW - 3600, 'checksum': True}],
                          'weekly': [{'name': 'w', 'path': '/b/w', 'bytes': 10, 'timestamp': NOW - 86400 * 3, 'checksum': True}]}
        self.units = {'daily': 'success', 'weekly': 'success'}
        self.timers_active = {'daily': True, 'weekly': True}
        self.answers = {'datalab.lab.example': {'status_code': 200}, 'datalab-api.lab.example': {'status_code': 404}}
        self.used = 0.41
        self.add_json('/etc/labops/status/stacks/datalab.json', {
            'project': 'datalab', 'project_dir': '/opt/labops/datalab', 'data_paths': [],
            'healthy_services': ['database', 'api', 'app']})
        self.add_json('/etc/labops/status/routes/datalab-app.json', {
            'name': 'datalab-app', 'server_names': ['datalab.lab.example'], 'tls': False,
            'upstream': 'http://datalab-app:8081', 'certificate_file': '/x/fullchain.pem',
            'address': '127.0.0.1', 'port': 80, 'network': 'labops_proxy'})
        self.add_json('/etc/labops/status/routes/datalab-api.json', {
            'name': 'datalab-api', 'server_names': ['datalab-api.lab.example'], 'tls': False,
            'upstream': 'http://datalab-api:5001', 'certificate_file': '/x/fullchain.pem',
            'address': '127.0.0.1', 'port': 80, 'network': 'labops_proxy'})
        for job, calendar in (('daily', '*-*-* 04:05:00'), ('weekly', 'Mon *-*-* 03:05:00')):
            self.add_json('/etc/labops/backup/datalab/%s.json' % job, {
                'service': 'datalab', 'job': job, 'backup_root': '/var/backups/labops'})
            self.files['/etc/systemd/system/labops-backup-datalab-%s.timer' % job] = (
                '[Timer]\nOnCalendar=%s\nRandomizedDelaySec=15m\nPersistent=true\n' % calendar)

    def add_json(self, path, data):
        self.files[path] = json.dumps(data)

    # the Host interface
    def run(self, argv, env=None):
        self.commands.append(argv)
        if argv[:2] == ['docker', 'ps']:
            project = argv[-1].split('=')[-1]
            return 0, '\n'.join(c['Name'] for c in self.containers.get(project, [])), ''
        if argv[:2] == ['docker', 'inspect']:
            every = [c for cs in self.containers.values() for c in cs]
            return 0, json.dumps([c for c in every if c['Name'] in argv[2:]]), ''
        if argv[:3] == ['docker', 'volume', 'ls']:
            return 0, '', ''
        if argv[:2] == ['systemd-analyze', 'calendar']:
            assert env == {'TZ': 'UTC'}
            if argv[-1].startswith('Mon '):
                return 0, ''.join('   Iteration #%d: Mon 2026-%s 03:05:00 UTC\n' % (n + 1, day)
                                  for n, day in enumerate(['11-23', '11-30', '12-07'])), ''
            return 0, DAILY, ''
        if argv[:2] == ['systemd-analyze', 'timespan']:
            return 0, 'Original: 15m\n      \u03bcs: 900000000\n   Human: 15min\n', ''
        if argv[1:3] == ['list', '--json']:
            return 0, json.dumps(self.artifacts[os.path.basename(argv[3])[:-5]]), ''
        if argv[:2] == ['systemctl', 'show']:
            job = argv[2].split('-')[-1].split('.')[0]
            if argv[2].endswith('.timer'):
                return 0, 'ActiveState=%s\nNextElapseUSecRealtime=Mon 2026-11-23 04:05:00 UTC\n' % (
                    'active' if self.timers_active[job] else 'inactive'), ''
            result = self.units[job]
            return 0, 'ActiveState=%s\nResult=%s\nExecMainExitTimestamp=Sun 2026-11-22 04:06:00 UTC\n' % (
                'failed' if result != 'success' else 'inactive', result), ''
        raise AssertionError('unexpected command %r' % argv)

    def now(self):
        return NOW

    def exists(self, path):
        return path in self.files or path.startswith(('/opt/', '/var/backups/'))

    def read_text(self, path):
        if path not in self.files:
            raise OSError(2, 'No such file')
        return self.files[path]

    def mtime(self, path):
        return NOW - 600

    def disk(self, path):
        return '/', self.used, 50 * 2 ** 30

    def tree_bytes(self, path):
        return 2048

    def probe(self, address, port, server_name, tls, timeout):
        return dict(self.answers[server_name])


def run_checks(host, *args):
    settings = ls.Settings(ls.build_parser().parse_args(list(args) + ['report']))
    return ls.collect(host, settings)


def _files(host):
    def fake_glob(pattern):
        prefix, suffix = pattern.split('*', 1)
        return sorted(p for p in host.files if p.startswith(prefix) and p.endswith(suffix[-5:]) and '.timer' not in p)
    return fake_glob


@pytest.fixture
def host(tmp_path, monkeypatch):
    fake = FakeHost(tmp_path)
    monkeypatch.setattr(ls.glob, 'glob', _files(fake))
    return fake


def problems(checks):
    return [check.problem_text() for check in checks if check.counted]


# -- containers ---------------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs, state, detail', [
    ({}, 'ok', 'running'),
    ({'health': 'healthy'}, 'ok', 'running, healthy'),
    ({'health': 'starting'}, 'warn', 'running, health check still starting'),
    ({'health': 'unhealthy'}, 'problem', 'running but unhealthy'),
    ({'status': 'exited', 'code': 0, 'policy': 'no'}, 'ok', 'completed (exit 0, a one-shot job)'),
    ({'status': 'exited', 'code': 0}, 'problem', 'exited (code 0)'),
    ({'status': 'exited', 'code': 137, 'policy': 'no'}, 'problem', 'exited (code 137)'),
    ({'status': 'restarting'}, 'problem', 'restarting'),
    ({'status': 'created'}, 'problem', 'created but never started'),
])
def test_container_state(kwargs, state, detail):
    assert ls.container_state(container('p-s-1', 's', **kwargs)) == (state, detail)


# -- schedules ----------------------------------------------------------------------------------

def test_schedule_gap_reads_both_spellings_of_systemd_s_iterations(host):
    class Calendar(FakeHost):
        def run(self, argv, env=None):
            return 0, WEEKDAYS if 'Mon..Fri' in argv[-1] else DAILY, ''
    other = Calendar(host.tmp)
    assert ls.schedule_gap(other, '*-*-* 04:05:00') == 86400
    assert ls.schedule_gap(other, 'Mon..Fri *-*-* 02:00:00') == 3 * 86400   # Friday -> Monday


def test_a_calendar_systemd_refuses_is_a_problem_of_that_job(host):
    class Refusing(FakeHost):
        def run(self, argv, env=None):
            if argv[:2] == ['systemd-analyze', 'calendar'] and not argv[-1].startswith('Mon'):
                return 1, '', 'Failed to parse calendar specification'
            return FakeHost.run(self, argv, env)
    with pytest.raises(ls.StatusError, match='Failed to parse'):
        ls.schedule_gap(Refusing(host.tmp), 'every day')
    other = Refusing(host.tmp)
    assert problems(run_checks(other)) == [
        "datalab backup datalab/daily: cannot read its schedule: systemd-analyze calendar '*-*-* 04:05:00': "
        'Failed to parse calendar specification']


# -- the whole report ---------------------------------------------------------------------------

def test_a_healthy_host_has_no_problem(host):
    checks = run_checks(host)
    assert problems(checks) == []
    rows = {(c.kind, c.subject): (c.state, c.detail) for c in checks}
    assert rows[('container', 'datalab-app-1')] == ('ok', 'running, healthy')
    assert rows[('url', 'http://datalab.lab.example/')] == ('ok', 'answers 200')
    assert rows[('url', 'http://datalab-api.lab.example/')] == ('ok', 'answers 404')
    assert rows[('backup', 'datalab/daily')] == ('ok', 'newest 1h ago, 2.0 KiB, 1 kept')
    assert rows[('backup', 'datalab/weekly')][0] == 'ok'          # 3 days old, weekly schedule
    assert rows[('backup-run', 'datalab/daily')] == ('ok', 'last run succeeded, Sun 2026-11-22 04:06:00 UTC')
    assert rows[('disk', 'data on /')][1].startswith('41% used, 50.0 GiB free on /')
    assert {c.system for c in checks} == {'datalab'}


def test_three_problems_and_the_url_counted_under_its_container(host):
    host.containers['datalab'][0] = container('datalab-app-1', 'app', status='exited', code=137, aliases=['datalab-app'])
    host.answers['datalab.lab.example'] = {'status_code': 502}
    host.artifacts['daily'] = [{'name': 'old', 'path': '/b/old', 'bytes': 1, 'timestamp': NOW - 3 * 86400, 'checksum': True}]
    host.units['weekly'] = 'exit-code'
    checks = run_checks(host)
    found = problems(checks)
    assert found == [
        'datalab container datalab-app-1: exited (code 137) (so http://datalab.lab.example/ answers 502)',
        'datalab backup datalab/daily: stale: newest 3d ago, 1 B, 1 kept (expected every 1d, at most 1d 1h old)',
        'datalab backup-run datalab/weekly: last run failed (exit-code, Sun 2026-11-22 04:06:00 UTC); '
        'see journalctl -u labops-backup-datalab-weekly.service',
    ]
    url = [c for c in checks if c.subject == 'http://datalab.lab.example/'][0]
    assert url.state == 'problem' and not url.counted
    assert url.detail == 'answers 502 through the proxy because container datalab-app-1 is exited (code 137)'
    # the table shows it; the report counts three
    result = ls.report(checks)
    assert len(result['problems']) == 3
    assert any('PROBLEM' in line and 'http://datalab.lab.example/' in line for line in result['table'])


def test_a_url_without_an_answer_is_also_counted_under_its_stopped_container(host):
    host.containers['datalab'][0] = container('datalab-app-1', 'app', status='exited', code=1, aliases=['datalab-app'])
    host.answers['datalab.lab.example'] = {'error': 'no HTTP answer'}
    assert problems(run_checks(host)) == [
        'datalab container datalab-app-1: exited (code 1) (so http://datalab.lab.example/ does not answer)']


def test_a_url_failing_on_its_own_is_a_problem_of_its_own(host):
    host.answers['datalab-api.lab.example'] = {'status_code': 503}
    assert problems(run_checks(host)) == ['datalab url http://datalab-api.lab.example/: answers 503 through the proxy']


def test_no_backup_yet_is_a_warning_until_the_schedule_is_overdue(host):
    host.artifacts['daily'] = []
    checks = run_checks(host)
    daily = [c for c in checks if c.kind == 'backup' and c.subject == 'datalab/daily'][0]
    assert (daily.state, daily.detail) == ('warn', 'none yet, scheduled 10m ago')
    host.mtime = lambda path: NOW - 3 * 86400
    assert problems(run_checks(host)) == [
        'datalab backup datalab/daily: no backup at all (expected every 1d, at most 1d 1h old)']


def test_a_stopped_timer_and_a_missing_container_are_problems(host):
    host.timers_active['daily'] = False
    del host.containers['datalab'][2]
    assert problems(run_checks(host)) == [
        'datalab container database: service database has no container (is the project up?)',
        'datalab backup-run datalab/daily: timer labops-backup-datalab-daily.timer is inactive: no backups will run',
    ]


def test_a_full_disk_is_a_problem(host):
    host.used = 0.95
    found = problems(run_checks(host, '--disk-max-percent', '90'))
    assert found == ['datalab disk backups on /: filesystem / is 95% full (limit 90%)',
                     'datalab disk data on /: filesystem / is 95% full (limit 90%)']


def test_metrics_say_what_the_report_says(host):
    host.containers['datalab'][0] = container('datalab-app-1', 'app', status='exited', code=137, aliases=['datalab-app'])
    host.answers['datalab.lab.example'] = {'status_code': 502}
    host.units['weekly'] = 'exit-code'
    text = ls.metrics_text(run_checks(host), NOW)
    lines = text.splitlines()
    assert 'labops_status_problems 2' in lines
    assert 'labops_status_container_running{container="datalab-app-1",project="datalab",service="app"} 0' in lines
    assert 'labops_status_container_healthy{container="datalab-api-1",project="datalab",service="api"} 1' in lines
    assert 'labops_status_url_status_code{route="datalab-app",url="http://datalab.lab.example/"} 502' in lines
    assert 'labops_status_backup_last_run_failed{job="weekly",service="datalab"} 1' in lines
    assert 'labops_status_backup_newest_timestamp_seconds{job="daily",service="datalab"} %d' % (NOW - 3600) in lines
    assert 'labops_status_backup_max_age_seconds{job="daily",service="datalab"} %d' % (86400 + 900 + 3600) in lines
    assert 'labops_status_disk_used_ratio{mount="/",system="datalab",what="data"} 0.4100' in lines
    assert 'labops_status_check_ok{check="url",subject="http://datalab.lab.example/",system="datalab"} 0' in lines
    for line in lines:   # every sample's family is declared
        if not line.startswith('#'):
            assert '# TYPE %s gauge' % line.split('{')[0].split(' ')[0] in text


def test_label_values_are_escaped():
    assert ls._label_text({'a': 'x"y\\z\nw'}) == '{a="x\\"y\\\\z\\nw"}'


def test_main_prints_the_table_and_exits_1_on_a_problem(host, capsys):
    assert ls.main(['report'], host=host) == 0
    assert capsys.readouterr().out.endswith('\nall healthy\n')
    host.units['weekly'] = 'exit-code'
    assert ls.main(['report'], host=host) == 1
    out = capsys.readouterr().out
    assert '\n1 problem:\n- datalab backup-run datalab/weekly: last run failed' in out
    assert ls.main(['report', '--json'], host=host) == 1
    data = json.loads(capsys.readouterr().out)
    assert len(data['problems']) == 1 and data['table'][0].split() == ['SYSTEM', 'CHECK', 'SUBJECT', 'STATE', 'DETAIL']


def test_main_writes_the_metrics_file(host, tmp_path):
    target = tmp_path / 'labops_status.prom'
    assert ls.main(['metrics', str(target)], host=host) == 0
    assert 'labops_status_problems 0\n' in target.read_text()
    assert oct(os.stat(str(target)).st_mode & 0o777) == '0o644'
    assert os.listdir(str(tmp_path)) == ['labops_status.prom']


def test_an_unreadable_registry_entry_is_an_error_naming_it(host, capsys):
    host.files['/etc/labops/status/stacks/datalab.json'] = '{not json'
    assert ls.main(['report'], host=host) == 2
    assert 'cannot read /etc/labops/status/stacks/datalab.json' in capsys.readouterr().err


def test_the_program_runs_in_isolated_mode_as_the_role_runs_it(tmp_path):
    empty = str(tmp_path)
    process = subprocess.run([sys.executable, '-I', SCRIPT, '--registry-dir', empty, '--backup-config-dir', empty,
                              '--certbot-helper', os.path.join(empty, 'none'), 'report'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert process.returncode == 0, process.stderr
    assert process.stdout.endswith('all healthy\n')
    assert re.search(r'WARN +nothing to check: no project, route or backup job is registered', process.stdout)


# -- the URL probe and certificates, for real ---------------------------------------------------

@pytest.fixture(scope='module')
def tls_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tls')
    cert, key = str(folder / 'cert.pem'), str(folder / 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                    '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=app.lab.example'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(502 if self.headers['Host'] == 'down.lab.example' else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert
    server.shutdown()


def test_probe_reads_the_status_and_the_served_certificate(tls_server):
    port, cert = tls_server
    answer = ls.probe_url('127.0.0.1', port, 'app.lab.example', True, 5)
    assert answer['status_code'] == 200
    assert answer['der'] == ssl.PEM_cert_to_DER_cert(open(cert).read())
    assert ls.probe_url('127.0.0.1', port, 'down.lab.example', True, 5)['status_code'] == 502
    not_after = ls.certificate_not_after(ls.Host(), answer['der'])
    days = (not_after - datetime.datetime.now(UTC).timestamp()) / 86400
    assert 29 < days <= 30


def test_probe_failures_say_what_failed(tls_server):
    port, _cert = tls_server
    plain = ls.probe_url('127.0.0.1', port, 'x', False, 5)      # plain HTTP to a TLS port
    assert 'status_code' not in plain and plain['error']
    closed = ls.probe_url('127.0.0.1', 1, 'x', True, 5)
    assert closed['error'].startswith('cannot connect to 127.0.0.1:1')


def test_a_tls_route_checks_days_left_and_that_the_file_is_what_is_served(tls_server, host, tmp_path):
    port, cert = tls_server
    route = {'name': 'app', 'server_names': ['app.lab.example'], 'tls': True, 'upstream': 'http://app:80',
             'certificate_file': cert, 'address': '127.0.0.1', 'port': port, 'network': 'labops_proxy'}
    real = ls.Host()
    settings = ls.Settings(ls.build_parser().parse_args(['--cert-min-days', '14', 'report']))
    [check] = ls.route_checks(real, [('app.json', route)], {}, settings)
    assert check.state == 'ok' and check.detail in ('answers 200, certificate 29 days left',
                                                    'answers 200, certificate 30 days left')
    settings.cert_min_days = 31
    [check] = ls.route_checks(real, [('app.json', route)], {}, settings)
    assert check.counted and 'its certificate expires in' in check.detail and '(fewer than 31)' in check.detail
    other = tmp_path / 'other.pem'
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
                    '-keyout', str(tmp_path / 'k.pem'), '-out', str(other), '-days', '90', '-subj', '/CN=renewed'],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    settings.cert_min_days = 14
    [check] = ls.route_checks(real, [('app.json', dict(route, certificate_file=str(other)))], {}, settings)
    assert check.counted and check.detail == 'serves a certificate other than %s (reload the proxy)' % other
