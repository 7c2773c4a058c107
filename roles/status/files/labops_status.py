# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops-status: is every labops system on this host up, backed up and certified?

Run by playbooks/status.yml (through Ansible's script module: nothing is installed or changed)
and, when metrics are enabled, by the status role's timer as /usr/local/sbin/labops-status.
Standard library only (Python 3.9+); it reads, it never changes anything.

    labops-status report [--json]   the checks as a table (or JSON); exit 1 when one is a problem
    labops-status metrics FILE      the same checks as a Prometheus textfile (always exit 0)

What it looks at, all of it written by the collection's roles on this host:
- <registry>/stacks/<project>.json (compose_stack): each project's containers, from Docker: running,
  healthy (a one-shot container that exited 0 with no restart policy is fine);
- <registry>/routes/<route>.json (reverse_proxy): each host name over HTTPS (SNI) at the proxy's
  address: an HTTP answer below 500, the served certificate's days left, and that it is the
  certificate file the proxy is given (else nginx was not reloaded);
- <backup config dir>/<service>/<job>.json (backup): the newest backup's age against the job's
  systemd schedule (the longest gap between two runs + its randomized delay + a grace), the
  last run's result and whether its timer is active;
- certbot lineages through labops-certbot (certbot role), when installed;
- the disk use of the filesystems holding each system's data and backups.
A URL that fails because its upstream container is down is shown, and counted under that
container's problem, not as a problem of its own.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import glob
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

PROG = 'labops-status'
UTC = datetime.timezone.utc
OK, WARN, PROBLEM = 'ok', 'warn', 'problem'
CALENDAR_LINE = re.compile(r'^\s*(?:Next elapse|Iter(?:ation|\.) #\d+):\s+\w+\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+UTC\s*$')


class StatusError(Exception):
    """Something this program cannot look at; one line on stderr, exit 2."""


class Check(object):
    """One row of the report."""

    def __init__(self, system, kind, subject, state, detail, metrics=None):
        self.system = system
        self.kind = kind
        self.subject = subject
        self.state = state
        self.detail = detail
        self.metrics = metrics or {}
        self.caused_by = None     # the container check a URL failure comes from
        self.consequences = []    # URL checks failing because of this one

    @property
    def counted(self):
        """A problem of its own (not the consequence of another)."""
        return self.state == PROBLEM and self.caused_by is None

    def problem_text(self):
        text = '%s %s %s: %s' % (self.system, self.kind, self.subject, self.detail)
        if self.consequences:
            effects = [('%s answers %d' % (c.subject, c.metrics['status_code'])) if c.metrics.get('status_code')
                       else '%s does not answer' % c.subject for c in self.consequences]
            text += ' (so %s)' % ', '.join(effects)
        return text

    def as_dict(self):
        return {'system': self.system, 'kind': self.kind, 'subject': self.subject, 'state': self.state,
                'detail': self.detail, 'counted': self.counted}


class Host(object):
    """The commands and clock the checks use; tests replace it."""

    def run(self, argv, env=None):
        full_env = dict(os.environ, **(env or {}))
        try:
            process = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                                     universal_newlines=True, timeout=120, check=False)
        except OSError as exc:
            return 127, '', str(exc)
        except subprocess.TimeoutExpired:
            return 124, '', '%s timed out' % argv[0]
        return process.returncode, process.stdout, process.stderr

    def now(self):
        return time.time()

    def exists(self, path):
        return os.path.exists(path)

    def read_text(self, path):
        with open(path) as handle:
            return handle.read()

    def mtime(self, path):
        return os.stat(path).st_mtime

    def disk(self, path):
        """(mount point, used fraction, free bytes) of the filesystem holding path."""
        stats = os.statvfs(path)
        total = stats.f_blocks * stats.f_frsize
        free = stats.f_bavail * stats.f_frsize
        used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
        usable = used + free
        return mount_point(path), (used / usable if usable else 0.0), free if total else 0

    def tree_bytes(self, path):
        total = 0
        for folder, _dirs, files in os.walk(path):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    pass
        return total

    def probe(self, address, port, server_name, tls, timeout):
        return probe_url(address, port, server_name, tls, timeout)


def mount_point(path):
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def read_json_files(host, pattern):
    found = []
    for path in sorted(glob.glob(pattern)):
        try:
            found.append((path, json.loads(host.read_text(path))))
        except (OSError, ValueError) as exc:
            raise StatusError('cannot read %s: %s' % (path, exc))
    return found


def human_age(seconds):
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return '%dd %dh' % (days, hours) if hours else '%dd' % days
    if hours:
        return '%dh %dm' % (hours, minutes) if minutes else '%dh' % hours
    return '%dm' % minutes


def human_bytes(size):
    value = float(size)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024


# -- containers --------------------------------------------------------------------------------

def container_state(container):
    """(state, detail) of one `docker inspect` entry."""
    status = container['State'].get('Status', 'unknown')
    health = (container['State'].get('Health') or {}).get('Status')
    if status == 'running':
        if health in (None, 'healthy'):
            return OK, 'running' + (', healthy' if health else '')
        if health == 'starting':
            return WARN, 'running, health check still starting'
        return PROBLEM, 'running but %s' % health
    code = container['State'].get('ExitCode', 0)
    policy = ((container.get('HostConfig') or {}).get('RestartPolicy') or {}).get('Name') or 'no'
    if status == 'exited' and code == 0 and policy == 'no':
        return OK, 'completed (exit 0, a one-shot job)'
    if status == 'exited':
        return PROBLEM, 'exited (code %d)' % code
    if status == 'created':
        return PROBLEM, 'created but never started'
    return PROBLEM, status


def container_aliases(container):
    aliases = set()
    for network, endpoint in ((container.get('NetworkSettings') or {}).get('Networks') or {}).items():
        for alias in (endpoint or {}).get('Aliases') or []:
            aliases.add((network, alias))
        for alias in (endpoint or {}).get('DNSNames') or []:
            aliases.add((network, alias))
    return aliases


def stack_checks(host, stacks):
    """Container checks of every registered project; also returns {(network, alias): check}."""
    checks, by_alias = [], {}
    for _path, stack in stacks:
        project = stack['project']
        rc, out, err = host.run(['docker', 'ps', '-aq', '--no-trunc', '--filter',
                                 'label=com.docker.compose.project=%s' % project])
        if rc != 0:
            raise StatusError('docker ps failed: %s' % (err.strip() or 'exit %d' % rc))
        ids = out.split()
        containers = []
        if ids:
            rc, out, err = host.run(['docker', 'inspect'] + ids)
            if rc != 0:
                raise StatusError('docker inspect failed: %s' % (err.strip() or 'exit %d' % rc))
            containers = json.loads(out)
        services = set()
        for container in sorted(containers, key=lambda c: c['Name']):
            labels = container['Config'].get('Labels') or {}
            service = labels.get('com.docker.compose.service', '?')
            services.add(service)
            name = container['Name'].lstrip('/')
            state, detail = container_state(container)
            check = Check(project, 'container', name, state, detail, {
                'labels': {'project': project, 'service': service, 'container': name},
                'running': 1 if container['State'].get('Status') == 'running' else 0,
                'healthy': 1 if state == OK else 0,
            })
            checks.append(check)
            for alias in container_aliases(container):
                by_alias[alias] = check
        for service in stack.get('healthy_services') or []:
            if service not in services:
                checks.append(Check(project, 'container', service, PROBLEM,
                                    'service %s has no container (is the project up?)' % service,
                                    {'labels': {'project': project, 'service': service, 'container': ''},
                                     'running': 0, 'healthy': 0}))
        if not containers and not stack.get('healthy_services'):
            checks.append(Check(project, 'container', '-', PROBLEM, 'the project has no containers (is it up?)'))
    return checks, by_alias


# -- URLs through the proxy ----------------------------------------------------------------------

def probe_url(address, port, server_name, tls, timeout):
    """GET / for server_name at address:port: {'status_code', 'der'} or {'error'}."""
    result = {}
    try:
        sock = socket.create_connection((address, int(port)), timeout=timeout)
    except OSError as exc:
        return {'error': 'cannot connect to %s:%s: %s' % (address, port, exc.strerror or exc)}
    try:
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE   # the certificate is checked below, not trusted blindly
            try:
                sock = context.wrap_socket(sock, server_hostname=server_name)
            except (ssl.SSLError, OSError) as exc:
                return {'error': 'TLS handshake failed: %s' % exc}
            result['der'] = sock.getpeercert(binary_form=True)
        request = ('GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\nConnection: close\r\n\r\n'
                   % (server_name, PROG))
        sock.sendall(request.encode('ascii'))
        head = b''
        while b'\r\n' not in head and len(head) < 4096:
            chunk = sock.recv(1024)
            if not chunk:
                break
            head += chunk
        match = re.match(br'HTTP/\d(?:\.\d)? (\d{3})', head)
        if not match:
            return dict(result, error='no HTTP answer')
        result['status_code'] = int(match.group(1))
        return result
    except (socket.timeout, OSError) as exc:
        return dict(result, error='no answer within %ss: %s' % (timeout, exc))
    finally:
        sock.close()


def certificate_not_after(host, der):
    """End of validity (Unix time) of a DER certificate, read by openssl."""
    with tempfile.NamedTemporaryFile(suffix='.der') as handle:
        handle.write(der)
        handle.flush()
        rc, out, err = host.run(['openssl', 'x509', '-inform', 'DER', '-noout', '-enddate', '-in', handle.name])
    match = re.search(r'notAfter=(.+)$', out.strip())
    if rc != 0 or not match:
        raise StatusError('openssl could not read a certificate: %s' % err.strip())
    stamp = datetime.datetime.strptime(match.group(1).strip(), '%b %d %H:%M:%S %Y GMT').replace(tzinfo=UTC)
    return stamp.timestamp()


def first_certificate_der(host, path):
    try:
        text = host.read_text(path)
    except OSError:
        return None
    match = re.search(r'-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----', text, re.S)
    return ssl.PEM_cert_to_DER_cert(match.group(0)) if match else None


def route_checks(host, routes, by_alias, settings):
    checks = []
    for _path, route in routes:
        upstream_host = re.sub(r'^[a-z]+://', '', route.get('upstream', '')).split('/')[0].split(':')[0]
        cause = by_alias.get((route.get('network'), upstream_host))
        system = cause.system if cause is not None else route['name']
        for name in route['server_names']:
            url = '%s://%s/' % ('https' if route['tls'] else 'http', name)
            answer = host.probe(route['address'], route['port'], name, route['tls'], settings.timeout)
            labels = {'route': route['name'], 'url': url}
            metrics = {'labels': labels, 'status_code': answer.get('status_code', 0)}
            problems, notes = [], []
            if 'error' in answer:
                problems.append(answer['error'])
            elif answer['status_code'] >= 500:
                problems.append('answers %d through the proxy' % answer['status_code'])
            else:
                notes.append('answers %d' % answer['status_code'])
            cert_problem = False
            if answer.get('der'):
                not_after = certificate_not_after(host, answer['der'])
                days = int((not_after - host.now()) // 86400)
                metrics['not_after'] = not_after
                notes.append('certificate %d days left' % days)
                if days < settings.cert_min_days:
                    cert_problem = True
                    problems.append('its certificate expires in %d days (fewer than %d)' % (days, settings.cert_min_days))
                expected = first_certificate_der(host, route.get('certificate_file', ''))
                if expected is not None and hashlib.sha256(expected).digest() != hashlib.sha256(answer['der']).digest():
                    cert_problem = True
                    problems.append('serves a certificate other than %s (reload the proxy)' % route['certificate_file'])
            detail = '; '.join(problems) if problems else ', '.join(notes)
            check = Check(system, 'url', url, PROBLEM if problems else OK, detail, metrics)
            if problems and not cert_problem and cause is not None and cause.state == PROBLEM:
                check.caused_by = cause
                check.detail += ' because container %s is %s' % (cause.subject, cause.detail)
                cause.consequences.append(check)
            checks.append(check)
    return checks


# -- backups -------------------------------------------------------------------------------------

def unit_file_settings(text):
    settings = {}
    for line in text.splitlines():
        key, sep, value = line.partition('=')
        if sep and not line.lstrip().startswith(('#', ';')):
            settings[key.strip()] = value.strip()
    return settings


def schedule_gap(host, calendar, iterations=8):
    """Longest gap (seconds) between the next runs of a systemd calendar expression."""
    rc, out, err = host.run(['systemd-analyze', 'calendar', '--iterations=%d' % iterations, calendar], env={'TZ': 'UTC'})
    stamps = []
    for line in out.splitlines():
        match = CALENDAR_LINE.match(line)
        if match:
            stamps.append(datetime.datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S').replace(tzinfo=UTC))
    if rc != 0 or len(stamps) < 2:
        raise StatusError('systemd-analyze calendar %r: %s' % (calendar, err.strip() or 'fewer than two runs'))
    return max(int((later - earlier).total_seconds()) for earlier, later in zip(stamps, stamps[1:]))


def timespan_seconds(host, span):
    if not span or span == '0':
        return 0
    rc, out, err = host.run(['systemd-analyze', 'timespan', span])
    match = re.search(r'(?:\u03bcs|us):\s*(\d+)', out)
    if rc != 0 or not match:
        raise StatusError('systemd-analyze timespan %r: %s' % (span, err.strip()))
    return int(match.group(1)) // 1000000


def systemd_show(host, unit, properties):
    argv = ['systemctl', 'show', unit] + ['--property=%s' % name for name in properties]
    _rc, out, _err = host.run(argv)
    return unit_file_settings(out)


def backup_checks(host, configs, settings):
    checks = []
    for path, config in configs:
        service, job = config['service'], config['job']
        unit = 'labops-backup-%s-%s' % (service, job)
        subject = '%s/%s' % (service, job)
        labels = {'service': service, 'job': job}
        now = host.now()
        # age of the newest backup against the schedule
        try:
            timer = unit_file_settings(host.read_text('/etc/systemd/system/%s.timer' % unit))
        except OSError:
            timer = {}
        max_age = None
        if timer.get('OnCalendar'):
            try:
                max_age = (schedule_gap(host, timer['OnCalendar'])
                           + timespan_seconds(host, timer.get('RandomizedDelaySec')) + settings.backup_grace)
            except StatusError as exc:
                checks.append(Check(service, 'backup', subject, PROBLEM, 'cannot read its schedule: %s' % exc))
                continue
        rc, out, err = host.run([settings.backup_runner, 'list', '--json', path])
        if rc != 0:
            checks.append(Check(service, 'backup', subject, PROBLEM, 'cannot list the backups: %s' % err.strip()))
            artifacts = None
        else:
            artifacts = json.loads(out)
        metrics = {'labels': labels, 'max_age': max_age}
        if artifacts is not None:
            expected = (' (expected every %s, at most %s old)' % (human_age(max_age - settings.backup_grace), human_age(max_age))
                        if max_age else ' (no schedule found)')
            if artifacts:
                newest = artifacts[0]
                age = now - newest['timestamp']
                metrics.update(newest=newest['timestamp'], count=len(artifacts))
                detail = 'newest %s ago, %s, %d kept' % (human_age(age), human_bytes(newest['bytes']), len(artifacts))
                stale = max_age is not None and age > max_age
                checks.append(Check(service, 'backup', subject, PROBLEM if stale else OK,
                                    ('stale: ' if stale else '') + detail + (expected if stale else ''), metrics))
            else:
                since = now - host.mtime(path)
                waiting = max_age is not None and since <= max_age
                checks.append(Check(service, 'backup', subject, WARN if waiting else PROBLEM,
                                    ('none yet, scheduled %s ago' % human_age(since)) if waiting
                                    else 'no backup at all' + expected, metrics))
        # the last run and the timer
        state = systemd_show(host, unit + '.service', ['ActiveState', 'Result', 'ExecMainExitTimestamp'])
        timer_state = systemd_show(host, unit + '.timer', ['ActiveState', 'NextElapseUSecRealtime'])
        problems = []
        if state.get('ActiveState') == 'failed':
            problems.append('last run failed (%s%s); see journalctl -u %s.service'
                            % (state.get('Result', '?'), ', ' + state['ExecMainExitTimestamp']
                               if state.get('ExecMainExitTimestamp') else '', unit))
        if timer_state.get('ActiveState') != 'active':
            problems.append('timer %s.timer is %s: no backups will run' % (unit, timer_state.get('ActiveState', 'missing')))
        if problems:
            detail = '; '.join(problems)
        elif state.get('ActiveState') == 'activating':
            detail = 'running now'
        elif state.get('Result') == 'success' and state.get('ExecMainExitTimestamp'):
            detail = 'last run succeeded, %s' % state['ExecMainExitTimestamp']
        else:
            detail = 'not run since boot; next %s' % (timer_state.get('NextElapseUSecRealtime') or '?')
        checks.append(Check(service, 'backup-run', subject, PROBLEM if problems else OK, detail,
                            {'labels': labels, 'failed': 1 if state.get('ActiveState') == 'failed' else 0}))
    return checks


# -- certbot lineages ---------------------------------------------------------------------------

def certbot_checks(host, settings):
    if not host.exists(settings.certbot_helper):
        return []
    rc, out, err = host.run([settings.certbot_helper, 'expiry', '--min-days', str(settings.cert_min_days)])
    checks = []
    for line in out.splitlines():
        name, _sep, rest = line.partition(': ')
        checks.append(Check('certbot', 'certificate', name, OK, rest))
    for line in err.splitlines():
        text = re.sub(r'^labops-certbot: ', '', line.strip())
        match = re.match(r'certificate (\S+) ', text)
        checks.append(Check('certbot', 'certificate', match.group(1) if match else '-', PROBLEM, text))
    if rc != 0 and not err.strip():
        checks.append(Check('certbot', 'certificate', '-', PROBLEM, 'labops-certbot expiry failed (exit %d)' % rc))
    return checks


# -- disks ---------------------------------------------------------------------------------------

def project_volumes(host, project):
    rc, out, _err = host.run(['docker', 'volume', 'ls', '-q', '--filter', 'label=com.docker.compose.project=%s' % project])
    names = out.split() if rc == 0 else []
    if not names:
        return []
    rc, out, _err = host.run(['docker', 'volume', 'inspect'] + names)
    return [volume['Mountpoint'] for volume in json.loads(out)] if rc == 0 else []


def disk_checks(host, stacks, configs, settings):
    wanted = {}   # (system, what) -> paths
    for _path, stack in stacks:
        paths = [stack['project_dir']] + list(stack.get('data_paths') or []) + project_volumes(host, stack['project'])
        wanted[(stack['project'], 'data')] = paths
    for _path, config in configs:
        wanted.setdefault((config['service'], 'backups'), []).append(
            os.path.join(config['backup_root'], config['service'], config['job']))
    checks = []
    for (system, what), paths in sorted(wanted.items()):
        by_mount = {}
        for path in paths:
            if host.exists(path):
                mount, used, free = host.disk(path)
                by_mount.setdefault(mount, (used, free, []))[2].append(path)
        for mount, (used, free, mount_paths) in sorted(by_mount.items()):
            size = ', %s' % human_bytes(sum(host.tree_bytes(p) for p in mount_paths)) if what == 'backups' else ''
            full = used * 100 >= settings.disk_max_percent
            detail = '%d%% used, %s free on %s (%d folder%s%s)' % (
                round(used * 100), human_bytes(free), mount, len(mount_paths), '' if len(mount_paths) == 1 else 's', size)
            if full:
                detail = 'filesystem %s is %d%% full (limit %d%%)' % (mount, round(used * 100), settings.disk_max_percent)
            checks.append(Check(system, 'disk', '%s on %s' % (what, mount), PROBLEM if full else OK, detail,
                                {'labels': {'system': system, 'what': what, 'mount': mount}, 'used': used}))
    return checks


# -- the report ----------------------------------------------------------------------------------

class Settings(object):
    def __init__(self, args):
        self.registry_dir = args.registry_dir
        self.backup_config_dir = args.backup_config_dir
        self.backup_runner = args.backup_runner
        self.certbot_helper = args.certbot_helper
        self.cert_min_days = args.cert_min_days
        self.disk_max_percent = args.disk_max_percent
        self.backup_grace = args.backup_grace
        self.timeout = args.timeout


def collect(host, settings):
    stacks = read_json_files(host, os.path.join(settings.registry_dir, 'stacks', '*.json'))
    routes = read_json_files(host, os.path.join(settings.registry_dir, 'routes', '*.json'))
    configs = read_json_files(host, os.path.join(settings.backup_config_dir, '*', '*.json'))
    containers, by_alias = stack_checks(host, stacks)
    checks = containers + route_checks(host, routes, by_alias, settings)
    checks += backup_checks(host, configs, settings) + certbot_checks(host, settings)
    checks += disk_checks(host, stacks, configs, settings)
    if not (stacks or routes or configs):
        checks.append(Check('-', 'registry', settings.registry_dir, WARN,
                            'nothing to check: no project, route or backup job is registered on this host '
                            '(site.yml and the system playbooks register them)'))
    order = {'container': 0, 'url': 1, 'backup': 2, 'backup-run': 3, 'certificate': 4, 'disk': 5}
    checks.sort(key=lambda check: (check.system, order.get(check.kind, 9), check.subject))
    return checks


def table(checks):
    rows = [('SYSTEM', 'CHECK', 'SUBJECT', 'STATE', 'DETAIL')]
    for check in checks:
        state = check.state.upper() if check.state != OK else OK
        rows.append((check.system, check.kind, check.subject, state, check.detail))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return ['  '.join(row[column].ljust(widths[column]) for column in range(4)) + '  ' + row[4] for row in rows]


def report(checks):
    problems = [check.problem_text() for check in checks if check.counted]
    return {'host': socket.getfqdn(), 'checks': [check.as_dict() for check in checks],
            'problems': problems, 'table': table(checks)}


def _label_text(labels):
    def escape(value):
        return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')
    return '{%s}' % ','.join('%s="%s"' % (key, escape(value)) for key, value in sorted(labels.items()))


METRICS = (
    # (family, help, check kind, metrics key)
    ('container_running', '1 when the container runs.', 'container', 'running'),
    ('container_healthy', '1 when the container runs and is healthy (or has no health check).', 'container', 'healthy'),
    ('url_status_code', 'HTTP status of GET / through the proxy (0: no answer).', 'url', 'status_code'),
    ('url_certificate_not_after_seconds', "End of validity of the served certificate (Unix time).", 'url', 'not_after'),
    ('backup_newest_timestamp_seconds', 'When the newest backup was taken (Unix time).', 'backup', 'newest'),
    ('backup_max_age_seconds', 'Oldest the newest backup may be before it is stale.', 'backup', 'max_age'),
    ('backup_last_run_failed', '1 when the last run of the backup unit failed.', 'backup-run', 'failed'),
    ('disk_used_ratio', 'Used fraction of the filesystem holding the data or backups.', 'disk', 'used'),
)


def metrics_text(checks, now):
    lines = []
    for family, help_text, kind, key in METRICS:
        samples = [(check.metrics['labels'], check.metrics[key]) for check in checks
                   if check.kind == kind and check.metrics.get(key) is not None and 'labels' in check.metrics]
        lines += ['# HELP labops_status_%s %s' % (family, help_text), '# TYPE labops_status_%s gauge' % family]
        lines += ['labops_status_%s%s %s' % (family, _label_text(labels), _number(value)) for labels, value in samples]
    lines += ['# HELP labops_status_check_ok 1 when the check is not a problem.', '# TYPE labops_status_check_ok gauge']
    for c in checks:
        labels = _label_text({'system': c.system, 'check': c.kind, 'subject': c.subject})
        lines.append('labops_status_check_ok%s %d' % (labels, 0 if c.state == PROBLEM else 1))
    lines += ['# HELP labops_status_problems Problems found (consequences of another not counted).',
              '# TYPE labops_status_problems gauge',
              'labops_status_problems %d' % sum(1 for c in checks if c.counted),
              '# HELP labops_status_timestamp_seconds When the checks ran (Unix time).',
              '# TYPE labops_status_timestamp_seconds gauge',
              'labops_status_timestamp_seconds %d' % now]
    return '\n'.join(lines) + '\n'


def _number(value):
    return ('%.4f' % value) if isinstance(value, float) and not value.is_integer() else '%d' % value


def write_atomically(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, partial = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(path))
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description='Is every labops system on this host up, backed up and certified?')
    parser.add_argument('--registry-dir', default='/etc/labops/status')
    parser.add_argument('--backup-config-dir', default='/etc/labops/backup')
    parser.add_argument('--backup-runner', default='/usr/local/sbin/labops-backup')
    parser.add_argument('--certbot-helper', default='/usr/local/sbin/labops-certbot')
    parser.add_argument('--cert-min-days', type=int, default=14)
    parser.add_argument('--disk-max-percent', type=int, default=90)
    parser.add_argument('--backup-grace', type=int, default=3600, help='seconds added to the schedule before a backup is stale')
    parser.add_argument('--timeout', type=float, default=10.0, help='seconds to wait for a URL')
    commands = parser.add_subparsers(dest='action', metavar='COMMAND')
    commands.required = True
    rep = commands.add_parser('report', help='print the checks; exit 1 when one is a problem')
    rep.add_argument('--json', action='store_true')
    met = commands.add_parser('metrics', help='write the checks as a Prometheus textfile')
    met.add_argument('file')
    return parser


def main(argv=None, host=None):
    args = build_parser().parse_args(argv)
    host = host or Host()
    try:
        checks = collect(host, Settings(args))
    except StatusError as exc:
        sys.stderr.write('%s: error: %s\n' % (PROG, exc))
        return 2
    if args.action == 'metrics':
        write_atomically(args.file, metrics_text(checks, host.now()))
        return 0
    result = report(checks)
    if args.json:
        sys.stdout.write(json.dumps(result) + '\n')
    else:
        sys.stdout.write('\n'.join(result['table']) + '\n')
        if result['problems']:
            sys.stdout.write('\n%d problem%s:\n' % (len(result['problems']), '' if len(result['problems']) == 1 else 's'))
            sys.stdout.write(''.join('- %s\n' % text for text in result['problems']))
        else:
            sys.stdout.write('\nall healthy\n')
    return 1 if result['problems'] else 0


if __name__ == '__main__':
    sys.exit(main())
