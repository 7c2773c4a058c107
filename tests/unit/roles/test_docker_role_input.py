# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bad input to the docker role fails before anything changes, naming what to fix.

The role runs for real (ansible-playbook, local connection) against a host whose facts come
from a JSON fact cache written by the test, so any OS can be presented without a machine
of that OS. Nothing may change: the play must stop in validation with changed=0.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

PLAY = """
- hosts: target
  gather_facts: false
  tasks:
    - name: Apply the docker role
      ansible.builtin.include_role:
        name: labops.services.docker
"""


def facts(distribution, version, family):
    return {
        'ansible_distribution': distribution,
        'ansible_distribution_major_version': version.split('.')[0],
        'ansible_distribution_version': version,
        'ansible_distribution_release': 'test',
        'ansible_os_family': family,
        'ansible_architecture': 'x86_64',
    }


def run_role(tmp_path, host_facts, extra_vars=None):
    cache = tmp_path / 'facts'
    cache.mkdir()
    # jsonfile cache entries as ansible-core >= 2.19 writes them (s1_<host>, a JSON payload),
    # and as older versions do (<host>, plain JSON).
    (cache / 's1_target').write_text(json.dumps({'__payload__': json.dumps(host_facts)}))
    (cache / 'target').write_text(json.dumps(host_facts))
    (tmp_path / 'play.yml').write_text(PLAY)
    (tmp_path / 'hosts.yml').write_text(json.dumps({'all': {'hosts': {'target': {
        'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}}}}))
    env = dict(os.environ)
    env.update({
        'ANSIBLE_CONFIG': os.path.join(ROOT, 'ansible.cfg'),
        'ANSIBLE_COLLECTIONS_PATH': os.path.join(ROOT, 'collections'),
        'ANSIBLE_CACHE_PLUGIN': 'ansible.builtin.jsonfile',
        'ANSIBLE_CACHE_PLUGIN_CONNECTION': str(cache),
        'ANSIBLE_GATHERING': 'explicit',
        'ANSIBLE_HOME': str(tmp_path / 'ansible-home'),
        'ANSIBLE_NOCOLOR': '1',
    })
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(tmp_path / 'hosts.yml'),
           str(tmp_path / 'play.yml')]
    for key, value in (extra_vars or {}).items():
        cmd += ['-e', '%s=%s' % (key, value)]
    return subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, check=False)


def assert_stopped_unchanged(result):
    assert result.returncode != 0, result.stdout
    assert 'changed=0' in result.stdout, result.stdout
    assert 'Install Docker' not in result.stdout, result.stdout


@pytest.mark.parametrize('host_facts', [
    facts('Gentoo', '2.15', 'Gentoo'),
    facts('Debian', '11.9', 'Debian'),
    facts('Ubuntu', '20.04', 'Debian'),
])
def test_unsupported_os_fails_before_changing_anything(tmp_path, host_facts):
    result = run_role(tmp_path, host_facts)
    assert_stopped_unchanged(result)
    assert 'does not support %s' % host_facts['ansible_distribution'] in result.stdout
    assert 'Supported: Debian 12 and 13' in result.stdout


def test_unknown_install_source_names_the_variable_and_allowed_values(tmp_path):
    result = run_role(tmp_path, facts('Debian', '13.1', 'Debian'), {'docker_install_source': 'snap'})
    assert_stopped_unchanged(result)
    assert 'docker_install_source' in result.stdout
    assert 'auto, distribution, docker' in result.stdout


def test_distribution_without_compose_v2_is_refused(tmp_path):
    result = run_role(tmp_path, facts('Debian', '12.7', 'Debian'), {'docker_install_source': 'distribution'})
    assert_stopped_unchanged(result)
    assert 'ships no Compose v2 package' in result.stdout
    assert 'docker_install_source=docker' in result.stdout
