# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build certbot-like ``/etc/letsencrypt`` trees with real certificates, for tests.

    tree = CertbotTree(tmp_path / 'letsencrypt')
    lin = tree.make_lineage('lab.example', domains=['lab.example', '*.lab.example'], key_type='ecdsa')
    lin.fullchain          # <root>/live/lab.example/fullchain.pem -> ../../archive/lab.example/fullchain1.pem
    lin = tree.renew('lab.example')   # writes cert2.pem … and repoints the live symlinks
    lin.fingerprint_sha256, lin.not_after, lin.version

Layout as certbot writes it: ``archive/<name>/{cert,chain,fullchain,privkey}N.pem``
(keys ``0600``, archive dirs ``0700``), relative symlinks in ``live/<name>/``, a
``live/README`` and a ``renewal/<name>.conf``. Certificates are issued by a throwaway
root -> intermediate CA; ``chain.pem`` is the intermediate, as with Let's Encrypt.

Key generation is the slow part (RSA), so keys come from :func:`private_key`, which
caches them per process: ``private_key('rsa', 0)`` is the same key every time it is
asked for, ``private_key('rsa', 1)`` another one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

UTC = datetime.timezone.utc
KEY_TYPES = ('rsa', 'ecdsa')
_KEYS = {}
_CA = {}


def now():
    return datetime.datetime.now(UTC)


def private_key(key_type='ecdsa', index=0):
    """The ``index``-th test key of ``key_type`` (``rsa`` 2048 bits or ``ecdsa`` P-256), cached."""
    if key_type not in KEY_TYPES:
        raise ValueError('key_type must be one of %s, got %r' % (KEY_TYPES, key_type))
    cache_key = (key_type, index)
    if cache_key not in _KEYS:
        if key_type == 'rsa':
            _KEYS[cache_key] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            _KEYS[cache_key] = ec.generate_private_key(ec.SECP256R1())
    return _KEYS[cache_key]


def pem_private_key(key):
    """PKCS#8 PEM, unencrypted, as certbot writes ``privkeyN.pem``."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def pem_certificate(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint_sha256(cert):
    """``ab:cd:…`` like the module returns."""
    return ':'.join('%02x' % byte for byte in bytearray(cert.fingerprint(hashes.SHA256())))


def not_after(cert):
    try:
        return cert.not_valid_after_utc
    except AttributeError:  # cryptography < 42
        return cert.not_valid_after.replace(tzinfo=UTC)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca():
    """(root cert, intermediate cert, intermediate key), made once per process."""
    if not _CA:
        start = now() - datetime.timedelta(days=3650)
        end = now() + datetime.timedelta(days=3650)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = (x509.CertificateBuilder()
                .subject_name(_name('Test Fake Root X1')).issuer_name(_name('Test Fake Root X1'))
                .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .sign(root_key, hashes.SHA256()))
        inter_key = ec.generate_private_key(ec.SECP256R1())
        inter = (x509.CertificateBuilder()
                 .subject_name(_name('Test Fake R3')).issuer_name(root.subject)
                 .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
                 .not_valid_before(start).not_valid_after(end)
                 .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                 .sign(root_key, hashes.SHA256()))
        _CA.update(root=root, intermediate=inter, key=inter_key)
    return _CA['root'], _CA['intermediate'], _CA['key']


def issue_certificate(key, domains, days=90, lifetime=90):
    """A leaf for ``domains`` (first one is the CN) with ``key``'s public key.

    It expires ``days`` from now (negative: already expired) and became valid
    ``lifetime`` days before that (but at least an hour ago).
    """
    _root, inter, inter_key = _ca()
    end = now() + datetime.timedelta(days=days)
    start = min(end - datetime.timedelta(days=lifetime), now() - datetime.timedelta(hours=1))
    builder = (x509.CertificateBuilder()
               .subject_name(_name(domains[0])).issuer_name(inter.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in domains]), critical=False))
    return builder.sign(inter_key, hashes.SHA256())


class Lineage(object):
    """One lineage as it is on disk now: paths in ``live/`` and the current objects."""

    def __init__(self, tree, name, version, cert, key, chain):
        self.tree = tree
        self.name = name
        self.version = version
        self.cert = cert
        self.key = key
        self.chain = chain
        self.live_dir = os.path.join(tree.live_dir, name)
        self.archive_dir = os.path.join(tree.archive_dir, name)
        self.cert_path = os.path.join(self.live_dir, 'cert.pem')
        self.chain_path = os.path.join(self.live_dir, 'chain.pem')
        self.fullchain = os.path.join(self.live_dir, 'fullchain.pem')
        self.privkey = os.path.join(self.live_dir, 'privkey.pem')

    @property
    def fingerprint_sha256(self):
        return fingerprint_sha256(self.cert)

    @property
    def not_after(self):
        return not_after(self.cert)

    @property
    def cert_pem(self):
        return pem_certificate(self.cert)

    @property
    def chain_pem(self):
        return pem_certificate(self.chain)

    @property
    def fullchain_pem(self):
        return self.cert_pem + self.chain_pem

    @property
    def key_pem(self):
        return pem_private_key(self.key)

    def archive_file(self, kind):
        """``archive/<name>/<kind><version>.pem`` for kind cert, chain, fullchain or privkey."""
        return os.path.join(self.archive_dir, '%s%d.pem' % (kind, self.version))


class CertbotTree(object):
    """A certbot config directory (``/etc/letsencrypt``) rooted at ``root``."""

    def __init__(self, root):
        self.root = str(root)
        self.live_dir = os.path.join(self.root, 'live')
        self.archive_dir = os.path.join(self.root, 'archive')
        self.renewal_dir = os.path.join(self.root, 'renewal')
        self.lineages = {}
        for directory, mode in ((self.root, 0o755), (self.live_dir, 0o700), (self.archive_dir, 0o700), (self.renewal_dir, 0o755)):
            if not os.path.isdir(directory):
                os.makedirs(directory)
                os.chmod(directory, mode)
        readme = os.path.join(self.live_dir, 'README')
        if not os.path.exists(readme):
            with open(readme, 'w') as handle:
                handle.write('This directory contains your keys and certificates.\n')

    def make_lineage(self, name, domains=None, key_type='ecdsa', key_index=0, days=90):
        """Issue version 1 of lineage ``name`` for ``domains`` (default ``[name]``); returns a :class:`Lineage`.

        ``days``: days until expiry (negative for an already expired certificate).
        """
        if name in self.lineages:
            raise ValueError('lineage %s exists; use renew()' % name)
        domains = list(domains or [name])
        key = private_key(key_type, key_index)
        lineage = Lineage(self, name, 1, issue_certificate(key, domains, days), key, _ca()[1])
        os.makedirs(lineage.archive_dir)
        os.chmod(lineage.archive_dir, 0o700)
        os.makedirs(lineage.live_dir)
        self._write_version(lineage)
        with open(os.path.join(self.renewal_dir, '%s.conf' % name), 'w') as handle:
            handle.write('version = 2.11.0\narchive_dir = %s\n' % lineage.archive_dir)
            for kind in ('cert', 'privkey', 'chain', 'fullchain'):
                handle.write('%s = %s\n' % (kind, os.path.join(lineage.live_dir, '%s.pem' % kind)))
            handle.write('\n[renewalparams]\nauthenticator = webroot\nkey_type = %s\n' % key_type)
        self.lineages[name] = (lineage, domains, key_type)
        return lineage

    def renew(self, name, days=90, reuse_key=False, domains=None):
        """Issue the next version (``certN+1.pem`` …) and repoint ``live/<name>/*``.

        Like certbot >= 2.0, a renewal gets a new key unless ``reuse_key``.
        """
        old, old_domains, key_type = self.lineages[name]
        domains = list(domains or old_domains)
        if reuse_key:
            key = old.key
        else:
            key = private_key(key_type, _next_key_index(key_type, old.key))
        lineage = Lineage(self, name, old.version + 1, issue_certificate(key, domains, days), key, _ca()[1])
        self._write_version(lineage)
        self.lineages[name] = (lineage, domains, key_type)
        return lineage

    def lineage(self, name):
        return self.lineages[name][0]

    @staticmethod
    def _write_version(lineage):
        contents = {
            'cert': (lineage.cert_pem, 0o644),
            'chain': (lineage.chain_pem, 0o644),
            'fullchain': (lineage.fullchain_pem, 0o644),
            'privkey': (lineage.key_pem, 0o600),
        }
        for kind, (data, mode) in contents.items():
            path = lineage.archive_file(kind)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
            link = os.path.join(lineage.live_dir, '%s.pem' % kind)
            target = os.path.relpath(path, lineage.live_dir)
            tmp = link + '.new'
            os.symlink(target, tmp)
            os.replace(tmp, link)


def _next_key_index(key_type, current):
    """Index of the first cached key of ``key_type`` that is not ``current`` (renewal = new key)."""
    index = 0
    while private_key(key_type, index) is current:
        index += 1
    return index
