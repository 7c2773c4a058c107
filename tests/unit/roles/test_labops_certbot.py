# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/certbot/files/labops_certbot.py: the certbot hooks and expiry check, run for real.

The program runs as a subprocess, exactly as the role installs it: ``python3 -I`` (isolated, no
PYTHONPATH) with the collection's ``_certbot_copy.py`` and ``_atomic_file.py`` copied into a lib
folder in the ``ansible_collections/...`` layout the role creates. Lineages are real certbot-like
trees with real certificates (tests/unit/certbot_tree.py). The only fake is ``docker``: a shell
script that records its arguments (``LABOPS_CERTBOT_DOCKER`` points the program at it), since
what is tested is which container gets reloaded how often, not Docker.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from ansible_collections.labops.services.tests.unit.utils import load_program

from ansible_collections.labops.services.tests.unit.certbot_tree import CertbotTree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'certbot', 'files', 'labops_certbot.py')
MODULE_UTILS = os.path.join(ROOT, 'plugins', 'module_utils')
DOMAINS = ['app1.lab.example', 'app2.lab.example']
PROXY = {'project_dir': '/opt/labops/reverse_proxy', 'service': 'proxy', 'signal': 'HUP'}

FAKE_DOCKER = r'''#!/bin/sh
# Records each call, one line of arguments; `docker ps` prints $FAKE_DOCKER_PS; exits $FAKE_DOCKER_RC.
printf '%s\n' "$*" >> "$FAKE_DOCKER_LOG"
if [ "$1" = ps ]; then printf '%s\n' $FAKE_DOCKER_PS; fi
if [ "${FAKE_DOCKER_RC:-0}" != 0 ]; then echo "fake docker: exit $FAKE_DOCKER_RC" >&2; fi
exit "${FAKE_DOCKER_RC:-0}"
'''


lc = load_program(SCRIPT)


def sha256(path):
    with open(path, 'rb') as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Host(object):
    """A host as the role leaves it: certbot tree, config dir, state dir, lib dir, fake docker."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.tree = CertbotTree(tmp_path / 'letsencrypt')
        self.config_dir = str(tmp_path / 'etc-labops-certbot')
        self.state_dir = str(tmp_path / 'state')
        os.makedirs(os.path.join(self.config_dir, 'lineages'))
        self.lib = str(tmp_path / 'lib')
        utils = os.path.join(self.lib, 'ansible_collections', 'labops', 'services', 'plugins', 'module_utils')
        os.makedirs(utils)
        for name in ('_certbot_copy.py', '_atomic_file.py'):
            shutil.copy(os.path.join(MODULE_UTILS, name), utils)
        self.docker = str(tmp_path / 'docker')
        with open(self.docker, 'w') as handle:
            handle.write(FAKE_DOCKER)
        os.chmod(self.docker, 0o755)
        self.docker_log = str(tmp_path / 'docker.log')
        open(self.docker_log, 'w').close()
        self.env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LABOPS_CERTBOT_LIB': self.lib,
                    'LABOPS_CERTBOT_DOCKER': self.docker, 'FAKE_DOCKER_LOG': self.docker_log}

    def folder(self, name):
        path = str(self.tmp / name)
        os.makedirs(path, exist_ok=True)
        return path

    def configure(self, name, domains, consumers):
        with open(os.path.join(self.config_dir, 'lineages', '%s.json' % name), 'w') as handle:
            json.dump({'name': name, 'domains': domains, 'consumers': consumers}, handle)

    def run(self, *args, **env):
        argv = [sys.executable, '-I', SCRIPT, '--config-dir', self.config_dir, '--state-dir', self.state_dir,
                '--live-dir', self.tree.live_dir] + list(args)
        environment = dict(self.env, **env)
        return subprocess.run(argv, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60, check=False)

    def deploy(self, name, **env):
        return self.run('deploy', RENEWED_LINEAGE=os.path.join(self.tree.live_dir, name), **env)

    def docker_calls(self):
        with open(self.docker_log) as handle:
            return [line.rstrip('\n') for line in handle if line.strip()]

    def queue(self):
        path = os.path.join(self.state_dir, 'pending-reloads.json')
        if not os.path.exists(path):
            return None
        with open(path) as handle:
            return json.load(handle)


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_deploy_copies_to_every_consumer_and_reload_pending_reloads_once(host):
    lineage = host.tree.make_lineage('lab', domains=DOMAINS)
    proxy_certs = host.folder('proxy-certs')
    vidjil = host.folder('vidjil-ssl')
    host.configure('lab', DOMAINS, [
        {'dest_dir': proxy_certs, 'reload': PROXY},
        {'dest_dir': vidjil, 'cert_name': 'web2py.crt', 'key_name': 'web2py.key', 'reload': None},
    ])

    result = host.deploy('lab')
    assert result.returncode == 0, result.stderr
    assert sha256(os.path.join(proxy_certs, 'fullchain.pem')) == sha256(lineage.fullchain)
    assert sha256(os.path.join(proxy_certs, 'privkey.pem')) == sha256(lineage.privkey)
    assert sha256(os.path.join(vidjil, 'web2py.crt')) == sha256(lineage.fullchain)
    assert stat.S_IMODE(os.stat(os.path.join(vidjil, 'web2py.key')).st_mode) == 0o600
    assert host.queue() == [PROXY]
    assert host.docker_calls() == []          # the deploy hook only queues

    result = host.run('reload-pending')
    assert result.returncode == 0, result.stderr
    assert host.docker_calls() == ['compose --project-directory /opt/labops/reverse_proxy kill --signal HUP proxy']
    assert host.queue() is None

    # Nothing renewed: a second hook run copies nothing and queues nothing.
    assert host.deploy('lab').returncode == 0
    assert host.queue() is None
    assert host.run('reload-pending').returncode == 0
    assert len(host.docker_calls()) == 1


def test_two_lineages_renewed_in_one_run_reload_the_shared_proxy_once(host):
    for name in ('alyx', 'vidjil'):
        host.tree.make_lineage(name, domains=['%s.lab.example' % name])
        host.configure(name, ['%s.lab.example' % name], [{'dest_dir': host.folder('proxy/' + name), 'reload': PROXY}])
        assert host.deploy(name).returncode == 0
    assert host.queue() == [PROXY]
    assert host.run('reload-pending').returncode == 0
    assert len(host.docker_calls()) == 1


def test_a_renewal_reaches_the_consumer_and_queues_only_its_container(host):
    host.tree.make_lineage('lab', domains=DOMAINS)
    web = {'project': 'vidjil', 'service': 'nginx'}
    folders = [host.folder('a'), host.folder('b')]
    host.configure('lab', DOMAINS, [{'dest_dir': folders[0], 'reload': PROXY}, {'dest_dir': folders[1], 'reload': web}])
    assert host.deploy('lab').returncode == 0
    assert host.run('reload-pending', FAKE_DOCKER_PS='c0ffee').returncode == 0
    open(host.docker_log, 'w').close()

    renewed = host.tree.renew('lab')
    # Only the second consumer is behind: the first already has the new files.
    shutil.copy(renewed.fullchain, os.path.join(folders[0], 'fullchain.pem'))
    shutil.copy(renewed.privkey, os.path.join(folders[0], 'privkey.pem'))
    assert host.deploy('lab').returncode == 0
    assert host.queue() == [web]
    assert host.run('reload-pending', FAKE_DOCKER_PS='c0ffee beef').returncode == 0
    assert host.docker_calls() == [
        'ps --quiet --filter label=com.docker.compose.project=vidjil --filter label=com.docker.compose.service=nginx',
        'exec c0ffee nginx -s reload',
        'exec beef nginx -s reload',
    ]
    assert sha256(os.path.join(folders[1], 'fullchain.pem')) == sha256(renewed.fullchain)


def test_a_certificate_that_fails_the_checks_is_not_copied(host):
    host.tree.make_lineage('lab', domains=DOMAINS[:1])
    dest = host.folder('dest')
    with open(os.path.join(dest, 'fullchain.pem'), 'w') as handle:
        handle.write('the old certificate\n')
    host.configure('lab', DOMAINS, [{'dest_dir': dest, 'reload': PROXY}, {'dest_dir': str(host.tmp / 'missing'), 'reload': None}])

    result = host.deploy('lab')
    assert result.returncode == 1
    assert 'does not cover app2.lab.example' in result.stderr
    with open(os.path.join(dest, 'fullchain.pem')) as handle:
        assert handle.read() == 'the old certificate\n'
    assert not os.path.exists(os.path.join(dest, 'privkey.pem'))
    assert host.queue() is None


def test_a_missing_consumer_folder_fails_that_consumer_only(host):
    host.tree.make_lineage('lab', domains=DOMAINS)
    good = host.folder('good')
    host.configure('lab', DOMAINS, [{'dest_dir': str(host.tmp / 'missing'), 'reload': None}, {'dest_dir': good, 'reload': PROXY}])
    result = host.deploy('lab')
    assert result.returncode == 1
    assert 'missing does not exist' in result.stderr
    assert os.path.exists(os.path.join(good, 'fullchain.pem'))
    assert host.queue() == [PROXY]


def test_owner_group_and_modes_reach_the_files(host):
    host.tree.make_lineage('lab', domains=DOMAINS)
    dest = host.folder('dest')
    uid, gid = os.getuid(), os.getgid()
    host.configure('lab', DOMAINS, [{'dest_dir': dest, 'owner': str(uid), 'group': str(gid), 'mode': '0640', 'reload': None}])
    assert host.deploy('lab').returncode == 0, host.deploy('lab').stderr
    for name in ('fullchain.pem', 'privkey.pem'):
        info = os.stat(os.path.join(dest, name))
        assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, uid, gid)


def test_a_key_mode_open_to_others_is_refused(host):
    host.tree.make_lineage('lab', domains=DOMAINS)
    dest = host.folder('dest')
    host.configure('lab', DOMAINS, [{'dest_dir': dest, 'key_mode': '0644', 'reload': None}])
    result = host.deploy('lab')
    assert result.returncode == 1
    assert os.listdir(dest) == []


def test_a_lineage_labops_does_not_manage_is_left_alone(host):
    host.tree.make_lineage('other', domains=['other.lab.example'])
    result = host.deploy('other')
    assert result.returncode == 0
    assert 'not managed by labops' in result.stderr
    assert host.queue() is None


def test_deploy_without_a_lineage_is_a_usage_error(host):
    result = host.run('deploy')
    assert result.returncode == 2
    assert 'RENEWED_LINEAGE' in result.stderr


def test_a_failed_reload_stays_queued_for_the_next_run(host):
    host.tree.make_lineage('lab', domains=DOMAINS)
    host.configure('lab', DOMAINS, [{'dest_dir': host.folder('d'), 'reload': PROXY}])
    assert host.deploy('lab').returncode == 0
    result = host.run('reload-pending', FAKE_DOCKER_RC='1')
    assert result.returncode == 1
    assert 'kept for the next run' in result.stderr and 'fake docker: exit 1' in result.stderr
    assert host.queue() == [PROXY]
    assert host.run('reload-pending').returncode == 0
    assert host.queue() is None


def test_reload_with_a_project_and_no_running_container_fails(host):
    result = host.run('reload', json.dumps({'project': 'vidjil', 'service': 'nginx'}), FAKE_DOCKER_PS='')
    assert result.returncode == 1
    assert 'no running container for service nginx of Compose project vidjil' in result.stderr


@pytest.mark.parametrize('target, argv', [
    ({'project_dir': '/opt/x', 'service': 'web'}, 'compose --project-directory /opt/x exec -T web nginx -s reload'),
    ({'project_dir': '/opt/x', 'service': 'web', 'command': ['apachectl', 'graceful']},
     'compose --project-directory /opt/x exec -T web apachectl graceful'),
    ({'project_dir': '/opt/x', 'service': 'web', 'signal': 'USR1'}, 'compose --project-directory /opt/x kill --signal USR1 web'),
])
def test_reload_runs_the_command_for_the_target(host, target, argv):
    result = host.run('reload', json.dumps(target))
    assert result.returncode == 0, result.stderr
    assert host.docker_calls() == [argv]


@pytest.mark.parametrize('target, message', [
    ({'project_dir': '/opt/x'}, 'needs a service'),
    ({'service': 'web'}, 'exactly one of project_dir and project'),
    ({'service': 'web', 'project_dir': '/x', 'project': 'x'}, 'exactly one of project_dir and project'),
    ({'service': 'web', 'project': 'x', 'signal': 'HUP', 'command': ['true']}, 'exclude each other'),
])
def test_bad_reload_targets_are_refused(target, message):
    with pytest.raises(lc.LabopsCertbotError, match=message):
        lc.check_target(target)


def test_reload_target_must_be_json(host):
    result = host.run('reload', '{not json')
    assert result.returncode == 2


def test_expiry_passes_fails_and_writes_metrics(host):
    host.tree.make_lineage('fresh', domains=['fresh.lab.example'], days=60)
    host.tree.make_lineage('old', domains=['old.lab.example'], days=5)
    for name in ('fresh', 'old'):
        host.configure(name, ['%s.lab.example' % name], [])
    metrics = str(host.tmp / 'metrics' / 'labops_certbot.prom')
    os.makedirs(os.path.dirname(metrics))

    result = host.run('expiry', '--min-days', '3', '--metrics', metrics)
    assert result.returncode == 0, result.stderr
    assert 'fresh: 59 days left' in result.stdout and 'old: 4 days left' in result.stdout

    result = host.run('expiry', '--min-days', '14', '--metrics', metrics)
    assert result.returncode == 1
    assert 'certificate old expires on' in result.stderr and 'in 4 days (fewer than 14)' in result.stderr
    assert 'fresh' not in result.stderr
    with open(metrics) as handle:
        text = handle.read()
    assert 'labops_certbot_certificate_ok{lineage="fresh"} 1' in text
    assert 'labops_certbot_certificate_ok{lineage="old"} 0' in text
    not_after = host.tree.lineage('old').not_after
    assert 'labops_certbot_certificate_not_after_seconds{lineage="old"} %d' % not_after.timestamp() in text
    assert stat.S_IMODE(os.stat(metrics).st_mode) == 0o644


def test_expiry_reports_a_managed_lineage_certbot_does_not_have(host):
    host.configure('ghost', ['ghost.lab.example'], [])
    result = host.run('expiry', '--min-days', '1')
    assert result.returncode == 1
    assert 'lineage' not in result.stdout
    assert 'cannot read' in result.stderr and 'ghost' in result.stderr


def test_expiry_with_no_managed_lineage_passes(host):
    assert host.run('expiry', '--min-days', '30').returncode == 0


def test_metrics_text_has_one_sample_per_lineage():
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    later = now + datetime.timedelta(days=10)
    text = lc.metrics_text([('a', 10, later, None), ('b', None, None, 'cannot read')], now)
    assert text.count('labops_certbot_certificate_not_after_seconds{') == 1
    assert 'labops_certbot_certificate_ok{lineage="b"} 0' in text
    assert text.endswith('labops_certbot_expiry_check_timestamp_seconds %d\n' % now.timestamp())
