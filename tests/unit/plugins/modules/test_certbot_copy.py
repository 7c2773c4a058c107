# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops.services.certbot_copy end to end through main()."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.labops.services.plugins.modules import certbot_copy
from ansible_collections.labops.services.tests.unit.certbot_tree import CertbotTree, pem_private_key, private_key
from ansible_collections.labops.services.tests.unit.utils import run_module

NAME = 'vidjil.lab.example'


@pytest.fixture(scope='session', autouse=True)
def keys():
    """Generate the (slow) RSA keys once per session; certbot_tree caches them."""
    return [private_key(kind, index) for kind in ('rsa', 'ecdsa') for index in (0, 1)]


@pytest.fixture
def tree(tmp_path):
    return CertbotTree(tmp_path / 'letsencrypt')


@pytest.fixture
def args(tree, tmp_path):
    dest = tmp_path / 'nginx-ssl'
    dest.mkdir()
    return {
        'cert_name': NAME,
        'live_dir': tree.live_dir,
        'dest_dir': str(dest),
        'cert_dest_name': 'web2py.crt',
        'key_dest_name': 'web2py.key',
        'domains': [NAME],
    }


def files(directory):
    result = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        with open(path, 'rb') as handle:
            result[name] = (handle.read(), stat.S_IMODE(os.stat(path).st_mode))
    return result


def assert_no_key_material(result, *keys):
    text = json.dumps(result)
    assert 'PRIVATE KEY' not in text
    for pem in keys:
        for line in pem.splitlines()[1:-1]:
            assert line.decode() not in text


@pytest.mark.parametrize('key_type', ['rsa', 'ecdsa'])
def test_check_run_check_run(tree, args, key_type):
    lin = tree.make_lineage(NAME, key_type=key_type)
    dest = args['dest_dir']

    result = run_module(certbot_copy, args, check_mode=True)
    assert result['changed'] is True
    assert os.listdir(dest) == []
    assert result['fingerprint_sha256'] == lin.fingerprint_sha256
    assert result['previous_fingerprint_sha256'] is None

    result = run_module(certbot_copy, args)
    assert result['changed'] is True
    assert files(dest) == {'web2py.crt': (lin.fullchain_pem, 0o644), 'web2py.key': (lin.key_pem, 0o600)}
    assert result['cert_dest'] == os.path.join(dest, 'web2py.crt')
    assert result['key_dest'] == os.path.join(dest, 'web2py.key')
    assert isinstance(result['days_left'], int) and result['days_left'] in (89, 90)
    assert result['subject_alt_names'] == [NAME]
    assert result['not_after'] == lin.not_after.strftime('%Y-%m-%dT%H:%M:%SZ')

    result = run_module(certbot_copy, args, check_mode=True)
    assert result['changed'] is False
    assert result['previous_fingerprint_sha256'] == lin.fingerprint_sha256

    result = run_module(certbot_copy, args)
    assert result['changed'] is False


def test_renewal_in_check_mode_then_for_real(tree, args):
    old = tree.make_lineage(NAME, key_type='ecdsa')
    run_module(certbot_copy, args)
    before = files(args['dest_dir'])
    new = tree.renew(NAME)

    result = run_module(certbot_copy, args, check_mode=True, diff=True)
    assert result['changed'] is True
    assert files(args['dest_dir']) == before
    assert result['previous_fingerprint_sha256'] == old.fingerprint_sha256
    assert result['fingerprint_sha256'] == new.fingerprint_sha256
    assert old.fingerprint_sha256 in result['diff']['before']
    assert new.fingerprint_sha256 in result['diff']['after']

    result = run_module(certbot_copy, args)
    assert result['changed'] is True
    assert files(args['dest_dir'])['web2py.key'] == (new.key_pem, 0o600)
    assert run_module(certbot_copy, args)['changed'] is False


def test_results_and_diff_never_carry_key_material(tree, args):
    old = tree.make_lineage(NAME, key_type='rsa')
    run_module(certbot_copy, dict(args, chain_dest_name='chain.pem'))
    new = tree.renew(NAME)
    os.chmod(os.path.join(args['dest_dir'], 'web2py.key'), 0o640)
    for check_mode in (True, False):
        result = run_module(certbot_copy, dict(args, chain_dest_name='chain.pem'), check_mode=check_mode, diff=True)
        assert result['changed'] is True
        assert set(result['diff']) == {'before', 'after', 'before_header', 'after_header'}
        assert 'mode 0640' in result['diff']['before'] and 'mode 0600' in result['diff']['after']
        assert_no_key_material(result, old.key_pem, new.key_pem)
    failure = run_module(certbot_copy, dict(args, domains=['elsewhere.example']), expect_failure=True, diff=True)
    assert_no_key_material(failure, old.key_pem, new.key_pem)


def test_no_diff_unless_asked(tree, args):
    tree.make_lineage(NAME)
    assert 'diff' not in run_module(certbot_copy, args)


def test_yaml_integer_modes(tree, args):
    """``key_mode: 0640`` unquoted reaches the module as the int 416, like Ansible's file modes."""
    tree.make_lineage(NAME)
    run_module(certbot_copy, dict(args, key_mode=0o640, cert_mode=0o644))
    assert files(args['dest_dir'])['web2py.key'][1] == 0o640


@pytest.mark.parametrize('change, expected', [
    (dict(cert_name='missing.example'), 'certbot_copy missing.example -> {dest}: lineage missing.example not found under {live} '
                                        '(lineages there: %s)' % NAME),
    (dict(domains=['other.example']), 'does not cover other.example'),
    (dict(min_days_valid=365), 'fewer than min_days_valid=365'),
    (dict(key_mode='0644'), 'key_mode 0644 would let every user'),
    (dict(cert_mode='rw-r--r--'), 'cert_mode must be an octal mode'),
])
def test_failures_are_one_clear_message(tree, args, change, expected):
    tree.make_lineage(NAME)
    result = run_module(certbot_copy, dict(args, **change), expect_failure=True)
    assert result['failed'] is True
    assert expected.format(dest=args['dest_dir'], live=tree.live_dir) in result['msg']
    assert os.listdir(args['dest_dir']) == []


def test_key_mismatch_message(tree, args):
    lin = tree.make_lineage(NAME, key_type='rsa')
    with open(lin.archive_file('privkey'), 'wb') as handle:
        handle.write(pem_private_key(private_key('rsa', 1)))
    result = run_module(certbot_copy, args, expect_failure=True)
    assert 'key %s does not match certificate %s' % (lin.privkey, lin.fullchain) in result['msg']


def test_missing_cryptography(tree, args, monkeypatch):
    tree.make_lineage(NAME)
    monkeypatch.setattr(certbot_copy, 'HAS_CRYPTOGRAPHY', False)
    monkeypatch.setattr(certbot_copy, 'CRYPTOGRAPHY_IMPORT_ERROR', 'ImportError: No module named cryptography')
    result = run_module(certbot_copy, args, expect_failure=True)
    assert 'cryptography' in result['msg'] and 'Failed to import the required Python library' in result['msg']
    assert os.listdir(args['dest_dir']) == []
