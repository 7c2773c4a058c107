# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CertbotCopy against real certbot-like trees (tests/unit/certbot_tree.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import grp
import os
import pwd
import stat
import subprocess
import uuid

import pytest

from cryptography.hazmat.primitives import serialization

from ansible_collections.labops.services.plugins.module_utils import _certbot_copy as cc
from ansible_collections.labops.services.plugins.module_utils._atomic_file import AtomicFile
from ansible_collections.labops.services.plugins.module_utils._certbot_copy import (
    CertbotCopy,
    CertbotCopyError,
    dns_name_matches,
    parse_certificates,
    parse_mode,
)
from ansible_collections.labops.services.tests.unit.certbot_tree import (
    CertbotTree,
    issue_certificate,
    pem_certificate,
    pem_private_key,
    private_key,
)

NAME = 'lab.example'


@pytest.fixture(scope='session', autouse=True)
def keys():
    """Generate the (slow) RSA keys once per session; certbot_tree caches them."""
    return dict(((kind, index), private_key(kind, index)) for kind in ('rsa', 'ecdsa') for index in (0, 1))


@pytest.fixture
def tree(tmp_path):
    return CertbotTree(tmp_path / 'letsencrypt')


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / 'ssl'
    path.mkdir()
    return str(path)


def job(tree, dest, **kwargs):
    kwargs.setdefault('cert_name', NAME)
    return CertbotCopy(live_dir=tree.live_dir, dest_dir=dest, **kwargs)


def run(tree, dest, **kwargs):
    worker = job(tree, dest, **kwargs).check()
    if worker.changed:
        worker.apply()
    return worker


def read(path):
    with open(path, 'rb') as handle:
        return handle.read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def snapshot(directory):
    """Every entry of ``directory``: name -> (bytes or link target, mode, uid, gid)."""
    result = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        st = os.lstat(path)
        content = os.readlink(path) if stat.S_ISLNK(st.st_mode) else read(path)
        result[name] = (content, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return result


# --- name matching, modes, parsing ---------------------------------------------------


@pytest.mark.parametrize('pattern, name, expected', [
    ('lab.example', 'lab.example', True),
    ('Lab.Example', 'lab.EXAMPLE', True),
    ('lab.example', 'lab.example.', True),
    ('lab.example', 'www.lab.example', False),
    ('*.lab.example', 'a.lab.example', True),
    ('*.lab.example', 'A.LAB.example', True),
    ('*.lab.example', 'lab.example', False),
    ('*.lab.example', 'a.b.lab.example', False),
    ('*.lab.example', '.lab.example', False),
    ('*.lab.example', 'a.otherlab.example', False),
    ('*.lab.example', '*.lab.example', True),
    ('a.lab.example', '*.lab.example', False),
    ('*.*.example', 'a.b.example', False),
    ('a*.lab.example', 'ab.lab.example', False),
    ('xn--bcher-kva.example', u'b\u00fccher.example', True),
])
def test_dns_name_matches(pattern, name, expected):
    assert dns_name_matches(pattern, name) is expected


@pytest.mark.parametrize('value, expected', [
    ('0644', 0o644), ('644', 0o644), ('0600', 0o600), ('2750', 0o2750), (0o640, 0o640), (384, 0o600),
])
def test_parse_mode(value, expected):
    assert parse_mode(value, 'cert_mode') == expected


@pytest.mark.parametrize('value', ['u=rw', '0999', '', '012345', 'rw-r--r--', True, -1, 0o17777])
def test_parse_mode_rejects(value):
    with pytest.raises(CertbotCopyError, match='cert_mode must be an octal mode'):
        parse_mode(value, 'cert_mode')


def test_parse_certificates_keeps_order_and_refuses_other_blocks():
    key = private_key('ecdsa', 0)
    first = issue_certificate(key, ['a.example'])
    second = issue_certificate(key, ['b.example'])
    data = pem_certificate(first) + pem_certificate(second)
    assert [c.serial_number for c in parse_certificates(data, '/x')] == [first.serial_number, second.serial_number]
    with pytest.raises(CertbotCopyError, match='certificate /x contains data outside its PEM certificate blocks'):
        parse_certificates(data + pem_private_key(key), '/x')
    with pytest.raises(CertbotCopyError, match=r'certificate /x is not a PEM certificate'):
        parse_certificates(b'hello\n', '/x')
    broken = pem_certificate(first).replace(b'\n', b'\nAAAA', 3)
    with pytest.raises(CertbotCopyError, match='certificate /x: PEM block 1 does not parse'):
        parse_certificates(broken, '/x')


# --- copying -------------------------------------------------------------------------


@pytest.mark.parametrize('key_type', ['rsa', 'ecdsa'])
def test_first_copy(tree, dest, key_type):
    lin = tree.make_lineage(NAME, domains=[NAME, 'www.' + NAME], key_type=key_type, days=60)
    worker = run(tree, dest)
    assert worker.changed
    cert_dest, key_dest = os.path.join(dest, 'fullchain.pem'), os.path.join(dest, 'privkey.pem')
    assert read(cert_dest) == lin.fullchain_pem == read(lin.fullchain)
    assert read(key_dest) == lin.key_pem
    assert (mode(cert_dest), mode(key_dest)) == (0o644, 0o600)
    assert os.path.isfile(cert_dest) and not os.path.islink(cert_dest)
    result = worker.result()
    assert result == {
        'cert_dest': cert_dest,
        'key_dest': key_dest,
        'fingerprint_sha256': lin.fingerprint_sha256,
        'previous_fingerprint_sha256': None,
        'not_after': lin.not_after.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'days_left': 59,
        'subject_alt_names': [NAME, 'www.' + NAME],
    }
    assert sorted(os.listdir(dest)) == ['fullchain.pem', 'privkey.pem']


def test_rerun_changes_nothing(tree, dest):
    tree.make_lineage(NAME)
    run(tree, dest)
    inodes = dict((n, os.stat(os.path.join(dest, n)).st_ino) for n in os.listdir(dest))
    worker = run(tree, dest)
    assert not worker.changed
    assert [p.reasons for p in worker.plans] == [[], []]
    assert dict((n, os.stat(os.path.join(dest, n)).st_ino) for n in os.listdir(dest)) == inodes
    assert worker.result()['previous_fingerprint_sha256'] == worker.result()['fingerprint_sha256']


@pytest.mark.parametrize('reuse_key', [False, True])
def test_renewal_is_picked_up(tree, dest, reuse_key):
    old = tree.make_lineage(NAME, key_type='rsa')
    run(tree, dest)
    new = tree.renew(NAME, reuse_key=reuse_key)
    assert new.version == 2 and os.readlink(new.fullchain) == '../../archive/%s/fullchain2.pem' % NAME
    worker = run(tree, dest)
    assert worker.changed
    result = worker.result()
    assert result['previous_fingerprint_sha256'] == old.fingerprint_sha256
    assert result['fingerprint_sha256'] == new.fingerprint_sha256 != old.fingerprint_sha256
    assert read(os.path.join(dest, 'fullchain.pem')) == new.fullchain_pem
    assert read(os.path.join(dest, 'privkey.pem')) == new.key_pem
    assert [p.reasons for p in worker.plans] == [[] if reuse_key else ['content'], ['content']]
    assert not run(tree, dest).changed


def test_cert_source_cert_and_chain(tree, dest):
    lin = tree.make_lineage(NAME)
    worker = run(tree, dest, cert_source='cert', cert_dest_name='server.crt', key_dest_name='server.key',
                 chain_dest_name='chain.crt')
    assert read(os.path.join(dest, 'server.crt')) == lin.cert_pem
    assert read(os.path.join(dest, 'server.key')) == lin.key_pem
    assert read(os.path.join(dest, 'chain.crt')) == lin.chain_pem
    assert mode(os.path.join(dest, 'chain.crt')) == 0o644
    assert worker.result()['chain_dest'] == os.path.join(dest, 'chain.crt')
    assert 'chain_dest' not in run(tree, dest).result()


@pytest.mark.parametrize('name, wrong_mode', [('privkey.pem', 0o644), ('fullchain.pem', 0o600)])
def test_wrong_mode_is_fixed_even_if_content_is_right(tree, dest, name, wrong_mode):
    tree.make_lineage(NAME)
    run(tree, dest)
    other = 'fullchain.pem' if name == 'privkey.pem' else 'privkey.pem'
    other_inode = os.stat(os.path.join(dest, other)).st_ino
    os.chmod(os.path.join(dest, name), wrong_mode)
    worker = run(tree, dest)
    assert worker.changed
    assert [p.reasons for p in worker.plans if p.changed] == [['mode']]
    assert mode(os.path.join(dest, name)) == (0o600 if name == 'privkey.pem' else 0o644)
    assert os.stat(os.path.join(dest, other)).st_ino == other_inode  # untouched
    assert not run(tree, dest).changed


def test_wrong_content_in_destination_is_replaced(tree, dest):
    lin = tree.make_lineage(NAME, key_type='ecdsa')
    run(tree, dest)
    with open(os.path.join(dest, 'privkey.pem'), 'wb') as handle:
        handle.write(pem_private_key(private_key('ecdsa', 1)))
    worker = run(tree, dest)
    assert [p.reasons for p in worker.plans] == [['content'], []]
    assert read(os.path.join(dest, 'privkey.pem')) == lin.key_pem


def test_symlink_destination_becomes_a_file(tree, dest):
    lin = tree.make_lineage(NAME)
    os.symlink(lin.fullchain, os.path.join(dest, 'fullchain.pem'))
    worker = run(tree, dest)
    assert worker.plans[1].reasons == ['symlink']
    assert not os.path.islink(os.path.join(dest, 'fullchain.pem'))
    assert read(os.path.join(dest, 'fullchain.pem')) == lin.fullchain_pem
    assert os.path.islink(lin.fullchain)  # the source symlink is left alone


def test_check_only_plans(tree, dest):
    tree.make_lineage(NAME)
    worker = job(tree, dest).check()
    assert worker.changed
    assert [p.reasons for p in worker.plans] == [['absent'], ['absent']]
    assert os.listdir(dest) == []


# --- refusals: nothing is written ----------------------------------------------------


@pytest.fixture
def deployed(tree, dest):
    """A lineage copied once; returns the destination snapshot to compare against."""
    tree.make_lineage(NAME, domains=[NAME, '*.' + NAME], key_type='rsa')
    run(tree, dest)
    return snapshot(dest)


def refuse(tree, dest, before, match, **kwargs):
    with pytest.raises(CertbotCopyError, match=match) as info:
        run(tree, dest, **kwargs)
    assert snapshot(dest) == before
    return str(info.value)


def test_key_mismatch(tree, dest, deployed):
    lin = tree.renew(NAME)
    with open(lin.archive_file('privkey'), 'wb') as handle:
        handle.write(pem_private_key(private_key('ecdsa', 1)))
    msg = refuse(tree, dest, deployed, 'does not match')
    assert msg.startswith('key %s does not match certificate %s' % (lin.privkey, lin.fullchain))
    assert 'PRIVATE' not in msg


def test_expired(tree, dest, deployed):
    lin = tree.renew(NAME, days=-2)
    msg = refuse(tree, dest, deployed, 'expired')
    assert msg.startswith('certificate for %s expired on %s (%s)' % (NAME, lin.not_after.strftime('%Y-%m-%dT%H:%M:%SZ'), lin.fullchain))


def test_min_days_valid(tree, dest, deployed):
    lin = tree.renew(NAME, days=10)
    refuse(tree, dest, deployed, r'expires on .*, in 9 days, fewer than min_days_valid=30', min_days_valid=30)
    # Whole days in UTC: exactly 10 days before expiry is 10 days, a second later 9.
    at = lin.not_after - datetime.timedelta(days=10)
    assert job(tree, dest, min_days_valid=10, now=at).check().result()['days_left'] == 10
    with pytest.raises(CertbotCopyError, match='in 9 days'):
        job(tree, dest, min_days_valid=10, now=at + datetime.timedelta(seconds=1)).check()
    assert run(tree, dest, min_days_valid=9).changed


@pytest.mark.parametrize('domains, missing', [
    (['lab.example', 'a.lab.example'], None),
    (['LAB.EXAMPLE', 'Wiki.Lab.Example.'], None),
    (['*.lab.example'], None),
    (['a.b.lab.example'], 'a.b.lab.example'),
    (['lab.example', 'other.example'], 'other.example'),
    (['example'], 'example'),
])
def test_domains(tree, dest, deployed, domains, missing):
    if missing is None:
        assert not run(tree, dest, domains=domains).changed
    else:
        msg = refuse(tree, dest, deployed, 'does not cover', domains=domains)
        assert 'does not cover %s; its subjectAltNames are: lab.example, *.lab.example' % missing in msg


def test_missing_lineage(tree, dest, deployed):
    msg = refuse(tree, dest, deployed, 'not found', cert_name='nope.example')
    assert msg == 'lineage nope.example not found under %s (lineages there: %s)' % (tree.live_dir, NAME)
    missing_live = os.path.join(tree.root, 'nowhere')
    with pytest.raises(CertbotCopyError, match='lineage %s not found under %s: that directory does not exist' % (NAME, missing_live)):
        CertbotCopy(NAME, dest, live_dir=missing_live).check()


def test_broken_symlink(tree, dest, deployed):
    lin = tree.lineage(NAME)
    os.unlink(lin.archive_file('privkey'))
    refuse(tree, dest, deployed, r'cannot read %s: broken symlink to \.\./\.\./archive/%s/privkey1\.pem' % (lin.privkey, NAME))


@pytest.mark.parametrize('kind, content, match', [
    ('fullchain', b'not a certificate\n', 'is not a PEM certificate'),
    ('privkey', b'not a key\n', 'is not a PEM private key'),
    ('privkey', b'-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'does not parse as a PEM private key'),
    ('privkey', 'encrypted', 'is encrypted'),
    ('fullchain', 'with-key', 'contains data outside its PEM certificate blocks'),
])
def test_unparseable_sources(tree, dest, deployed, kind, content, match):
    lin = tree.lineage(NAME)
    if content == 'encrypted':
        content = lin.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(b'secret'))
    elif content == 'with-key':
        content = lin.fullchain_pem + lin.key_pem
    with open(lin.archive_file(kind), 'wb') as handle:
        handle.write(content)
    msg = refuse(tree, dest, deployed, match)
    assert os.path.join(lin.live_dir, kind + '.pem') in msg
    assert 'PRIVATE KEY' not in msg


@pytest.mark.parametrize('kwargs, match', [
    (dict(key_mode='0644'), 'key_mode 0644 would let every user on the host read'),
    (dict(key_mode='0601'), 'key_mode 0601'),
    (dict(cert_dest_name='same.pem', key_dest_name='same.pem'), "cert_dest_name and key_dest_name are both 'same.pem'"),
    (dict(chain_dest_name='privkey.pem'), "key_dest_name and chain_dest_name are both 'privkey.pem'"),
    (dict(key_dest_name='../key.pem'), 'key_dest_name must be a file name inside dest_dir'),
    (dict(cert_name='../lab.example'), 'cert_name must be a certbot lineage name'),
    (dict(cert_source='chain'), 'cert_source must be one of cert, fullchain'),
    (dict(min_days_valid=-1), 'min_days_valid must not be negative'),
    (dict(owner='no-such-user-%s' % uuid.uuid4().hex[:8]), 'owner: no user named'),
    (dict(group='no-such-group-%s' % uuid.uuid4().hex[:8]), 'group: no group named'),
])
def test_bad_options(tree, dest, deployed, kwargs, match):
    refuse(tree, dest, deployed, match, **kwargs)


def test_missing_dest_dir(tree, tmp_path):
    tree.make_lineage(NAME)
    with pytest.raises(CertbotCopyError, match='destination directory %s does not exist' % (tmp_path / 'missing')):
        run(tree, str(tmp_path / 'missing'))


def test_destination_is_a_directory(tree, dest):
    tree.make_lineage(NAME)
    os.mkdir(os.path.join(dest, 'privkey.pem'))
    with pytest.raises(CertbotCopyError, match='destination %s is a directory' % os.path.join(dest, 'privkey.pem')):
        run(tree, dest)


# --- write safety --------------------------------------------------------------------


def test_key_is_never_readable_by_others(tree, dest, monkeypatch):
    """At the moment any byte is written, the temp file already has its final mode and owner."""
    tree.make_lineage(NAME)
    seen = []
    real_write = AtomicFile.write

    def spying_write(self, data):
        st = os.fstat(self.file.fileno())
        seen.append((self.dest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, self.tmp_path))
        return real_write(self, data)

    monkeypatch.setattr(AtomicFile, 'write', spying_write)
    run(tree, dest, owner='4242', group='4343', key_mode='0640')
    key_dest = os.path.join(dest, 'privkey.pem')
    assert [s[:4] for s in seen] == [
        (key_dest, 0o640, 4242, 4343),
        (os.path.join(dest, 'fullchain.pem'), 0o644, 4242, 4343),
    ]
    assert all(os.path.dirname(s[4]) == dest for s in seen)  # beside the destination: rename is atomic


def test_existing_world_readable_key_is_replaced_not_chmodded(tree, dest):
    """The new key is a new inode created 0600; the old 0644 inode is never refilled."""
    tree.make_lineage(NAME)
    key_dest = os.path.join(dest, 'privkey.pem')
    with open(key_dest, 'wb') as handle:
        handle.write(b'old')
    os.chmod(key_dest, 0o644)
    old_inode = os.stat(key_dest).st_ino
    run(tree, dest)
    assert os.stat(key_dest).st_ino != old_inode
    assert mode(key_dest) == 0o600


def test_failure_while_staging_leaves_destination(tree, dest, deployed, monkeypatch):
    tree.renew(NAME)
    real_write = AtomicFile.write

    def failing_write(self, data):
        if self.dest.endswith('fullchain.pem'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write(self, data)

    monkeypatch.setattr(AtomicFile, 'write', failing_write)
    msg = refuse(tree, dest, deployed, 'No space left on device')
    assert msg.startswith('cannot write %s (temporary file ' % os.path.join(dest, 'fullchain.pem'))
    assert sorted(os.listdir(dest)) == ['fullchain.pem', 'privkey.pem']  # no temp files left


@pytest.mark.parametrize('first_run', [True, False])
def test_failure_while_renaming_rolls_back(tree, dest, monkeypatch, first_run):
    """Key renamed, certificate rename fails: the key is put back (or removed if it was new)."""
    tree.make_lineage(NAME, key_type='ecdsa')
    if not first_run:
        run(tree, dest)
        os.chmod(os.path.join(dest, 'privkey.pem'), 0o400)
        tree.renew(NAME)
    before = snapshot(dest)
    real_replace = os.replace
    cert_dest = os.path.join(dest, 'fullchain.pem')

    def failing_replace(src, dst, *args, **kwargs):
        if dst == cert_dest and '.fullchain.pem.' in src:
            raise OSError(errno.EIO, 'Input/output error')
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, 'replace', failing_replace)
    with pytest.raises(CertbotCopyError) as info:
        run(tree, dest)
    msg = str(info.value)
    assert msg.startswith('cannot replace %s: ' % cert_dest)
    assert msg.endswith('restored %s, the destination is as it was' % os.path.join(dest, 'privkey.pem'))
    assert snapshot(dest) == before


# --- ownership -----------------------------------------------------------------------


@pytest.fixture(scope='module')
def service_account():
    """A throwaway user and group (root only); removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip('creating a user needs root')
    name = 'lbcc%s' % uuid.uuid4().hex[:8]
    subprocess.check_call(['groupadd', '--system', name])
    try:
        subprocess.check_call(['useradd', '--system', '--no-create-home', '--gid', name, '--shell', '/usr/sbin/nologin', name])
        try:
            yield name, pwd.getpwnam(name).pw_uid, grp.getgrnam(name).gr_gid
        finally:
            subprocess.check_call(['userdel', name])
    finally:
        if _group_exists(name):
            subprocess.check_call(['groupdel', name])


def _group_exists(name):
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def owner_of(path):
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def test_owner_and_group_by_name(tree, dest, service_account):
    name, uid, gid = service_account
    tree.make_lineage(NAME)
    run(tree, dest, owner=name, group=name, key_mode='0640')
    for file_name in ('fullchain.pem', 'privkey.pem'):
        assert owner_of(os.path.join(dest, file_name)) == (uid, gid)
    assert mode(os.path.join(dest, 'privkey.pem')) == 0o640
    assert not run(tree, dest, owner=name, group=name, key_mode='0640').changed
    # Group only changes back to root: both files are rewritten, the owner stays.
    worker = run(tree, dest, owner=name, group='root', key_mode='0640')
    assert [p.reasons for p in worker.plans] == [['group'], ['group']]
    assert owner_of(os.path.join(dest, 'privkey.pem')) == (uid, 0)


def test_owner_kept_when_not_given(tree, dest, service_account):
    name, uid, gid = service_account
    tree.make_lineage(NAME)
    run(tree, dest, owner=name, group=name)
    tree.renew(NAME)
    worker = run(tree, dest)
    assert [p.reasons for p in worker.plans] == [['content'], ['content']]
    assert owner_of(os.path.join(dest, 'privkey.pem')) == (uid, gid)


def test_numeric_ids(tree, dest):
    if os.geteuid() != 0:
        pytest.skip('chown to another user needs root')
    tree.make_lineage(NAME)
    run(tree, dest, owner='54321', group='54322')
    assert owner_of(os.path.join(dest, 'privkey.pem')) == (54321, 54322)
    assert owner_of(os.path.join(dest, 'fullchain.pem')) == (54321, 54322)
    worker = run(tree, dest, owner='54321', group='54323')
    assert [p.reasons for p in worker.plans] == [['group'], ['group']]


# --- diff ----------------------------------------------------------------------------


def test_diff_shows_public_facts_only(tree, dest):
    old = tree.make_lineage(NAME, key_type='rsa')
    run(tree, dest)
    new = tree.renew(NAME)
    diff = job(tree, dest).check().diff()
    key_dest = os.path.join(dest, 'privkey.pem')
    assert 'fingerprint_sha256: %s' % old.fingerprint_sha256 in diff['before']
    assert 'fingerprint_sha256: %s' % new.fingerprint_sha256 in diff['after']
    assert 'not_after: %s' % new.not_after.strftime('%Y-%m-%dT%H:%M:%SZ') in diff['after']
    assert 'subject_alt_names: lab.example' in diff['after']
    me = '%s:%s' % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)
    assert 'key %s: mode 0600, owner %s' % (key_dest, me) in diff['before']
    assert '  content: differs from %s' % new.privkey in diff['before']
    assert diff['before'] != diff['after']
    for text in (diff['before'], diff['after']):
        assert 'PRIVATE' not in text
        for key in (old.key_pem, new.key_pem):
            body = b''.join(key.splitlines()[1:-1]).decode()
            assert body[:40] not in text.replace('\n', '')
    job(tree, dest).check().apply()
    diff = job(tree, dest).check().diff()
    assert diff['before'] == diff['after']


def test_module_utils_has_no_ansible_imports():
    with open(cc.__file__) as handle:
        source = handle.read()
    assert 'from ansible.' not in source and 'import ansible' not in source
