# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Molecule test host and the disposable lab server must run the same way.

Both are systemd containers on a machine where --privileged fails; their settings live in
two files (Molecule's base config cannot include Ansible vars), so this keeps them equal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(*parts):
    with open(os.path.join(ROOT, *parts)) as handle:
        return yaml.safe_load(handle)


def test_lab_server_runs_like_the_molecule_test_host():
    platform = _load('.config', 'molecule', 'config.yml')['platforms'][0]
    sandbox = _load('playbooks', 'vars', 'testhost_platform.yml')
    assert platform['command'] == sandbox['testhost_command']
    assert platform['cgroupns_mode'] == sandbox['testhost_cgroupns_mode']
    assert platform['tmpfs'] == sandbox['testhost_tmpfs']
    assert platform['security_opts'] == sandbox['testhost_security_opts']
    assert platform['capabilities'] == sandbox['testhost_capabilities']
    assert platform['privileged'] is False


def test_capabilities_leave_out_what_these_machines_refuse():
    caps = set(_load('playbooks', 'vars', 'testhost_platform.yml')['testhost_capabilities'])
    assert not caps & {'SYS_RESOURCE', 'BPF', 'PERFMON', 'CHECKPOINT_RESTORE'}
    assert {'SYS_ADMIN', 'NET_ADMIN', 'MKNOD'} <= caps


def test_every_scenario_gives_the_nested_dockerd_its_ipv6_setting():
    """A scenario that links its own group_vars loses the base config's inline ones.

    Molecule writes the base config's `inventory.group_vars` only when a scenario has no
    `inventory.links`; such a scenario must carry docker_service_environment itself, else
    every nested container fails to start with an IPv6 error (see docs/testing.md).
    """
    base = _load('.config', 'molecule', 'config.yml')['provisioner']['inventory']['group_vars']['all']
    wanted = base['docker_service_environment']
    assert wanted == {'DOCKER_ALLOW_IPV6_ON_IPV4_INTERFACE': '1'}
    molecule_dir = os.path.join(ROOT, 'molecule')
    for scenario in sorted(os.listdir(molecule_dir)):
        if not os.path.isfile(os.path.join(molecule_dir, scenario, 'molecule.yml')):
            continue  # molecule/shared: task files the scenarios include
        config = _load('molecule', scenario, 'molecule.yml')
        links = config.get('provisioner', {}).get('inventory', {}).get('links', {})
        if not links:
            continue
        assert _linked_setting(scenario, links) == wanted, scenario


def _linked_setting(scenario, links):
    """docker_service_environment as the scenario's test host gets it from linked inventory files:
    group_vars/all.yml or group_vars/all/*.yml, overridden by host_vars/labops-<scenario>.yml."""
    found = None
    base = os.path.join(ROOT, 'molecule', scenario)
    candidates = []
    if 'group_vars' in links:
        group_vars = os.path.join(base, links['group_vars'].rstrip('/'))
        candidates.append(os.path.join(group_vars, 'all.yml'))
        all_dir = os.path.join(group_vars, 'all')
        if os.path.isdir(all_dir):
            candidates += [os.path.join(all_dir, name) for name in sorted(os.listdir(all_dir))]
    if 'host_vars' in links:
        candidates.append(os.path.join(base, links['host_vars'].rstrip('/'), f'labops-{scenario}.yml'))
    for path in candidates:
        if os.path.isfile(path):
            found = (_load(path) or {}).get('docker_service_environment', found)
    return found
