# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy a certbot lineage (certificate, key, chain) to where a service expects it.

Private to this collection (leading underscore). No Ansible imports: the module
``labops.services.certbot_copy`` is a thin wrapper around :class:`CertbotCopy`,
which is unit-tested directly.

    job = CertbotCopy('lab.example', '/etc/nginx/ssl', cert_dest_name='web2py.crt',
                      key_dest_name='web2py.key', domains=['lab.example'])
    job.check()          # reads and validates everything, plans the writes
    if job.changed:
        job.apply()      # stages every file, then renames them into place
    job.result()         # values the module returns (never key material)

Everything that goes wrong raises :class:`CertbotCopyError` with a message that
says what and where.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import datetime
import errno
import grp
import os
import pwd
import re
import stat
import traceback

from ansible_collections.labops.services.plugins.module_utils._atomic_file import AtomicFile

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.hazmat.backends import default_backend
    from cryptography.hazmat.primitives import hashes, serialization
except ImportError:  # pragma: no cover - exercised on hosts without cryptography
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True

CERT_SOURCES = {'fullchain': 'fullchain.pem', 'cert': 'cert.pem'}
KEY_SOURCE = 'privkey.pem'
CHAIN_SOURCE = 'chain.pem'

_PEM_CERT_RE = re.compile(br'-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----[ \t]*(?:\r?\n|$)', re.DOTALL)
_MODE_RE = re.compile(r'^0?[0-7]{3,4}$')
_UTC = datetime.timezone.utc


class CertbotCopyError(Exception):
    """Anything that stops the copy; the message says what is wrong and where."""


# --- small helpers ------------------------------------------------------------------


def format_time(value):
    """``2026-03-01T12:00:00Z`` for an aware UTC datetime."""
    return value.astimezone(_UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def colon_hex(digest):
    """``ab:cd:…`` lower-case hex, the form community.crypto returns fingerprints in."""
    text = binascii.hexlify(digest).decode('ascii')
    return ':'.join(text[i:i + 2] for i in range(0, len(text), 2))


def parse_mode(value, option):
    """Octal string (``"0640"``) or int (already numeric, as Ansible's file options) -> int."""
    if isinstance(value, bool):
        raise CertbotCopyError('%s must be an octal mode such as "0640", got %r' % (option, value))
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not _MODE_RE.match(text):
            raise CertbotCopyError('%s must be an octal mode such as "0640", got %r' % (option, value))
        mode = int(text, 8)
    if not 0 <= mode <= 0o7777:
        raise CertbotCopyError('%s must be an octal mode such as "0640", got %r' % (option, value))
    return mode


def resolve_user(name):
    """User name or numeric id -> uid; ``None`` stays ``None``."""
    if name is None:
        return None
    name = str(name)
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        raise CertbotCopyError('owner: no user named %r on this host' % name)


def resolve_group(name):
    """Group name or numeric id -> gid; ``None`` stays ``None``."""
    if name is None:
        return None
    name = str(name)
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise CertbotCopyError('group: no group named %r on this host' % name)


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def normalize_dns_name(name):
    """Lower-case, no trailing dot, internationalized names in their ``xn--`` form."""
    name = name.strip().rstrip('.').lower()
    try:
        name.encode('ascii')
    except UnicodeEncodeError:
        try:
            name = name.encode('idna').decode('ascii')
        except UnicodeError:
            pass
    return name


def dns_name_matches(pattern, name):
    """Does the certificate name ``pattern`` (maybe ``*.zone``) cover the host ``name``?

    Case-insensitive. A wildcard stands for exactly one whole, non-empty left-most
    label: ``*.lab.example`` covers ``a.lab.example`` but neither ``lab.example`` nor
    ``a.b.lab.example``. A requested ``*.lab.example`` is covered only by the same
    wildcard.
    """
    pattern = normalize_dns_name(pattern)
    name = normalize_dns_name(name)
    if pattern == name:
        return True
    if not pattern.startswith('*.') or '*' in pattern[2:] or '*' in name:
        return False
    label, dot, rest = name.partition('.')
    return bool(label) and bool(dot) and rest == pattern[2:]


def _backend():
    # Optional since cryptography 3.1, required before; still accepted today.
    return default_backend()


# --- reading certificates and keys --------------------------------------------------


def parse_certificates(data, path):
    """All certificates of a PEM file, in order; nothing but certificates is allowed.

    Refusing anything outside ``CERTIFICATE`` blocks keeps a file that also carries a
    private key from being copied with a world-readable certificate mode.
    """
    blocks = _PEM_CERT_RE.findall(data)
    if not blocks:
        raise CertbotCopyError('certificate %s is not a PEM certificate (no "BEGIN CERTIFICATE" block)' % path)
    leftover = _PEM_CERT_RE.sub(b'', data)
    if leftover.strip():
        raise CertbotCopyError('certificate %s contains data outside its PEM certificate blocks; refusing to copy it' % path)
    certs = []
    for index, block in enumerate(blocks, 1):
        try:
            certs.append(x509.load_pem_x509_certificate(block, _backend()))
        except ValueError as exc:
            raise CertbotCopyError('certificate %s: PEM block %d does not parse: %s' % (path, index, exc))
    return certs


def load_private_key(data, path):
    """The private key of a PEM file (unencrypted, as certbot writes it)."""
    if b'PRIVATE KEY-----' not in data:
        raise CertbotCopyError('key %s is not a PEM private key (no private key block found)' % path)
    try:
        return serialization.load_pem_private_key(data, None, _backend())
    except TypeError:
        raise CertbotCopyError('key %s is encrypted; certbot keys are not, and a service cannot use it unattended' % path)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm; never echo the key
        raise CertbotCopyError('key %s does not parse as a PEM private key: %s' % (path, type(exc).__name__))


def public_key_der(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class CertificateInfo(object):
    """What the module reports about a certificate (all public)."""

    def __init__(self, cert):
        self.cert = cert
        self.fingerprint_sha256 = colon_hex(cert.fingerprint(hashes.SHA256()))
        self.public_key_der = public_key_der(cert.public_key())
        try:
            self.not_after = cert.not_valid_after_utc  # cryptography >= 42
        except AttributeError:
            self.not_after = cert.not_valid_after.replace(tzinfo=_UTC)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            self.dns_names = []
        else:
            self.dns_names = [str(name) for name in san.get_values_for_type(x509.DNSName)]

    def days_left(self, now):
        """Whole days until expiry, in UTC, rounded down (negative once expired)."""
        return int((self.not_after - now).total_seconds() // 86400)

    def covers(self, domain):
        return any(dns_name_matches(pattern, domain) for pattern in self.dns_names)

    def describe(self):
        return [
            'fingerprint_sha256: %s' % self.fingerprint_sha256,
            'not_after: %s' % format_time(self.not_after),
            'subject_alt_names: %s' % (', '.join(self.dns_names) or '(none)'),
        ]


# --- files --------------------------------------------------------------------------


def read_source(path):
    """Bytes of a lineage file, following certbot's live -> archive symlinks."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        detail = exc.strerror or str(exc)
        if exc.errno == errno.ENOENT and os.path.islink(path):
            detail = 'broken symlink to %s' % os.readlink(path)
        raise CertbotCopyError('cannot read %s: %s' % (path, detail))


class DestState(object):
    """A destination file as it is now (``lstat``, never following a symlink)."""

    def __init__(self, path):
        self.path = path
        self.exists = False
        self.regular = False
        self.link_target = None
        self.data = None
        self.mode = self.uid = self.gid = None
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise CertbotCopyError('cannot inspect %s: %s' % (path, exc.strerror))
        if stat.S_ISDIR(st.st_mode):
            raise CertbotCopyError('destination %s is a directory' % path)
        self.exists = True
        self.mode = stat.S_IMODE(st.st_mode)
        self.uid, self.gid = st.st_uid, st.st_gid
        if stat.S_ISLNK(st.st_mode):
            self.link_target = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            self.regular = True
            try:
                with open(path, 'rb') as handle:
                    self.data = handle.read()
            except (IOError, OSError) as exc:
                raise CertbotCopyError('cannot read %s: %s' % (path, exc.strerror))
        else:
            raise CertbotCopyError('destination %s is neither a file nor a symlink' % path)

    def attributes(self):
        if not self.exists:
            return 'absent'
        if self.link_target is not None:
            return 'symlink to %s' % self.link_target
        return 'mode %04o, owner %s:%s' % (self.mode, _user_name(self.uid), _group_name(self.gid))


class FilePlan(object):
    """One destination file: what it should contain and how it should look."""

    def __init__(self, role, source, dest, data, mode, uid, gid):
        self.role = role          # 'certificate', 'key' or 'chain'
        self.source = source
        self.dest = dest
        self.data = data
        self.mode = mode
        self.before = DestState(dest)
        # Owner/group not given: keep those of the file being replaced (a new file gets
        # the process's, i.e. usually root's). Never follow a symlink's owner.
        if uid is None and self.before.regular:
            uid = self.before.uid
        if gid is None and self.before.regular:
            gid = self.before.gid
        self.uid, self.gid = uid, gid
        self.reasons = self._reasons()

    def _reasons(self):
        before = self.before
        if not before.exists:
            return ['absent']
        if not before.regular:
            return ['symlink']
        reasons = []
        if before.data != self.data:
            reasons.append('content')
        if before.mode != self.mode:
            reasons.append('mode')
        if self.uid is not None and before.uid != self.uid:
            reasons.append('owner')
        if self.gid is not None and before.gid != self.gid:
            reasons.append('group')
        return reasons

    @property
    def changed(self):
        return bool(self.reasons)

    def after_attributes(self):
        uid = os.geteuid() if self.uid is None else self.uid
        gid = _default_gid(os.path.dirname(self.dest)) if self.gid is None else self.gid
        return 'mode %04o, owner %s:%s' % (self.mode, _user_name(uid), _group_name(gid))


def _default_gid(directory):
    """Group a new file in ``directory`` gets: the directory's if it is setgid, else ours."""
    try:
        st = os.stat(directory)
    except OSError:
        return os.getegid()
    return st.st_gid if st.st_mode & stat.S_ISGID else os.getegid()


# --- the job ------------------------------------------------------------------------


class CertbotCopy(object):
    """Validate a certbot lineage and copy it into ``dest_dir``, changing only what differs.

    ``check()`` reads and validates everything and plans the writes without touching
    the destination; ``apply()`` performs the planned writes:

    1. stage: for every file that differs, a temp file beside its destination is
       created with its final mode (``AtomicFile``), given its final owner/group with
       ``fchown`` and only then filled. A failure here (disk full, unknown id, no
       permission) removes the temp files; the destination is untouched.
    2. commit: the temp files are renamed over their destinations, key first, then
       certificate, then chain. If a rename fails, the files already renamed are put
       back from the copies read in ``check()``.

    Remaining window: the renames are separate system calls, so for microseconds a
    process opening both files may see the new key with the old certificate. Services
    read them when they (re)load, which a handler does after this task.
    """

    def __init__(self, cert_name, dest_dir, live_dir='/etc/letsencrypt/live',
                 cert_dest_name='fullchain.pem', key_dest_name='privkey.pem', cert_source='fullchain',
                 chain_dest_name=None, owner=None, group=None, cert_mode='0644', key_mode='0600',
                 domains=None, min_days_valid=0, now=None):
        self.cert_name = cert_name
        self.dest_dir = dest_dir
        self.live_dir = live_dir
        self.cert_dest_name = cert_dest_name
        self.key_dest_name = key_dest_name
        self.cert_source = cert_source
        self.chain_dest_name = chain_dest_name
        self.owner = owner
        self.group = group
        self.cert_mode = parse_mode(cert_mode, 'cert_mode')
        self.key_mode = parse_mode(key_mode, 'key_mode')
        self.domains = list(domains or [])
        self.min_days_valid = min_days_valid or 0
        self.now = now or datetime.datetime.now(_UTC)
        self.info = None
        self.previous = None
        self.plans = []
        self._validate_options()

    # -- options ---------------------------------------------------------------------

    def _validate_options(self):
        if self.cert_source not in CERT_SOURCES:
            raise CertbotCopyError('cert_source must be one of %s, got %r' % (', '.join(sorted(CERT_SOURCES)), self.cert_source))
        if not self.cert_name or self.cert_name in ('.', '..') or '/' in self.cert_name:
            raise CertbotCopyError('cert_name must be a certbot lineage name such as "lab.example", got %r' % self.cert_name)
        names = [('cert_dest_name', self.cert_dest_name), ('key_dest_name', self.key_dest_name)]
        if self.chain_dest_name is not None:
            names.append(('chain_dest_name', self.chain_dest_name))
        for option, name in names:
            if not name or name in ('.', '..') or '/' in name:
                raise CertbotCopyError('%s must be a file name inside dest_dir, got %r' % (option, name))
        seen = {}
        for option, name in names:
            if name in seen:
                raise CertbotCopyError('%s and %s are both %r' % (seen[name], option, name))
            seen[name] = option
        if self.key_mode & 0o007:
            raise CertbotCopyError('key_mode %04o would let every user on the host read or use the private key; '
                                   'give access through owner/group instead' % self.key_mode)
        if self.min_days_valid < 0:
            raise CertbotCopyError('min_days_valid must not be negative, got %d' % self.min_days_valid)

    # -- paths -----------------------------------------------------------------------

    @property
    def lineage_dir(self):
        return os.path.join(self.live_dir, self.cert_name)

    @property
    def cert_dest(self):
        return os.path.join(self.dest_dir, self.cert_dest_name)

    @property
    def key_dest(self):
        return os.path.join(self.dest_dir, self.key_dest_name)

    @property
    def chain_dest(self):
        return None if self.chain_dest_name is None else os.path.join(self.dest_dir, self.chain_dest_name)

    def _lineage_file(self, name):
        return os.path.join(self.lineage_dir, name)

    # -- check -----------------------------------------------------------------------

    def _find_lineage(self):
        if os.path.isdir(self.lineage_dir):
            return
        if not os.path.isdir(self.live_dir):
            raise CertbotCopyError('lineage %s not found under %s: that directory does not exist (is certbot installed '
                                   'and has it issued a certificate?)' % (self.cert_name, self.live_dir))
        try:
            known = sorted(name for name in os.listdir(self.live_dir) if os.path.isdir(os.path.join(self.live_dir, name)))
        except OSError as exc:
            raise CertbotCopyError('lineage %s not found: cannot list %s: %s' % (self.cert_name, self.live_dir, exc.strerror))
        raise CertbotCopyError('lineage %s not found under %s (lineages there: %s)'
                               % (self.cert_name, self.live_dir, ', '.join(known) or 'none'))

    def _check_certificate(self, info, cert_path):
        if self.now >= info.not_after:
            raise CertbotCopyError('certificate for %s expired on %s (%s); renew it with certbot first'
                                   % (self.cert_name, format_time(info.not_after), cert_path))
        days_left = info.days_left(self.now)
        if days_left < self.min_days_valid:
            raise CertbotCopyError('certificate for %s expires on %s, in %d days, fewer than min_days_valid=%d (%s)'
                                   % (self.cert_name, format_time(info.not_after), days_left, self.min_days_valid, cert_path))
        missing = [domain for domain in self.domains if not info.covers(domain)]
        if missing:
            raise CertbotCopyError('certificate for %s (%s) does not cover %s; its subjectAltNames are: %s'
                                   % (self.cert_name, cert_path, ', '.join(missing), ', '.join(info.dns_names) or 'none'))

    def check(self):
        """Read and validate the lineage and the destination; plan the writes. Returns self."""
        self._find_lineage()
        cert_path = self._lineage_file(CERT_SOURCES[self.cert_source])
        key_path = self._lineage_file(KEY_SOURCE)
        cert_data = read_source(cert_path)
        key_data = read_source(key_path)

        certs = parse_certificates(cert_data, cert_path)
        key = load_private_key(key_data, key_path)
        info = CertificateInfo(certs[0])
        if public_key_der(key.public_key()) != info.public_key_der:
            raise CertbotCopyError('key %s does not match certificate %s (issued for %s, serial %x): their public keys differ'
                                   % (key_path, cert_path, ', '.join(info.dns_names) or 'no DNS names', certs[0].serial_number))
        self._check_certificate(info, cert_path)

        chain_data = chain_path = None
        if self.chain_dest_name is not None:
            chain_path = self._lineage_file(CHAIN_SOURCE)
            chain_data = read_source(chain_path)
            parse_certificates(chain_data, chain_path)

        if not os.path.isdir(self.dest_dir):
            raise CertbotCopyError('destination directory %s does not exist; create it first (with the owner and mode '
                                   'the service needs)' % self.dest_dir)
        uid = resolve_user(self.owner)
        gid = resolve_group(self.group)

        # Commit order: key, certificate, chain (see the class docstring).
        self.plans = [
            FilePlan('key', key_path, self.key_dest, key_data, self.key_mode, uid, gid),
            FilePlan('certificate', cert_path, self.cert_dest, cert_data, self.cert_mode, uid, gid),
        ]
        if chain_data is not None:
            self.plans.append(FilePlan('chain', chain_path, self.chain_dest, chain_data, self.cert_mode, uid, gid))
        self.info = info
        self.previous = self._previous_certificate(self.plans[1].before)
        return self

    @staticmethod
    def _previous_certificate(before):
        if before.data is None:
            return None
        try:
            return CertificateInfo(parse_certificates(before.data, before.path)[0])
        except CertbotCopyError:
            return None

    @property
    def changed(self):
        return any(plan.changed for plan in self.plans)

    # -- apply -----------------------------------------------------------------------

    def apply(self):
        """Write every planned file that differs (see the class docstring for the order)."""
        if self.info is None:
            raise CertbotCopyError('internal error: apply() called before check()')
        pending = [plan for plan in self.plans if plan.changed]
        staged = []
        try:
            for plan in pending:
                staged.append((plan, self._stage(plan)))
            committed = []
            for plan, out in staged:
                try:
                    out.commit()
                except (IOError, OSError) as exc:
                    # If the rename happened and only the directory fsync failed, the
                    # destination holds the new file: roll that one back too.
                    if out.committed:
                        committed.append(plan)
                    raise CertbotCopyError('cannot replace %s: %s; %s' % (plan.dest, exc, self._rollback(committed)))
                committed.append(plan)
        finally:
            for _plan, out in staged:
                out.abort()
        return [plan.dest for plan in pending]

    @staticmethod
    def _stage(plan):
        try:
            out = AtomicFile(plan.dest, mode=plan.mode)
        except (IOError, OSError) as exc:
            raise CertbotCopyError('cannot create a temporary file beside %s: %s' % (plan.dest, exc.strerror or exc))
        try:
            # Ownership before content: the file holds nothing while it has the wrong
            # owner. chown may clear set-id bits, so the mode is set again after it.
            if plan.uid is not None or plan.gid is not None:
                os.fchown(out.file.fileno(), -1 if plan.uid is None else plan.uid, -1 if plan.gid is None else plan.gid)
                os.fchmod(out.file.fileno(), plan.mode)
            out.write(plan.data)
            out.file.flush()
        except (IOError, OSError) as exc:
            out.abort()
            raise CertbotCopyError('cannot write %s (temporary file %s): %s' % (plan.dest, out.tmp_path, exc.strerror or exc))
        return out

    @staticmethod
    def _rollback(committed):
        if not committed:
            return 'nothing was replaced, the destination is as it was'
        problems = []
        for plan in reversed(committed):
            before = plan.before
            try:
                if not before.exists:
                    os.unlink(plan.dest)
                elif before.link_target is not None:
                    tmp = '%s.certbot_copy.restore' % plan.dest
                    if os.path.lexists(tmp):
                        os.unlink(tmp)
                    os.symlink(before.link_target, tmp)
                    os.replace(tmp, plan.dest)
                else:
                    with AtomicFile(plan.dest, mode=before.mode) as out:
                        os.fchown(out.file.fileno(), before.uid, before.gid)
                        os.fchmod(out.file.fileno(), before.mode)
                        out.write(before.data)
                        out.commit()
            except (IOError, OSError) as exc:
                problems.append('%s (%s)' % (plan.dest, exc))
        restored = ', '.join(plan.dest for plan in committed)
        if problems:
            return 'could not restore %s: the destination may hold a mix of old and new files' % '; '.join(problems)
        return 'restored %s, the destination is as it was' % restored

    # -- results ---------------------------------------------------------------------

    def result(self):
        """Return values of the module: public information only, never key material."""
        result = {
            'cert_dest': self.cert_dest,
            'key_dest': self.key_dest,
            'fingerprint_sha256': self.info.fingerprint_sha256,
            'previous_fingerprint_sha256': self.previous.fingerprint_sha256 if self.previous else None,
            'not_after': format_time(self.info.not_after),
            'days_left': self.info.days_left(self.now),
            'subject_alt_names': list(self.info.dns_names),
        }
        if self.chain_dest is not None:
            result['chain_dest'] = self.chain_dest
        return result

    def diff(self):
        """``before``/``after`` text blocks: fingerprints, expiry, names, modes, owners."""
        before, after = [], []
        order = {'certificate': 0, 'key': 1, 'chain': 2}
        for plan in sorted(self.plans, key=lambda p: order[p.role]):
            before.append('%s %s: %s' % (plan.role, plan.dest, plan.before.attributes()))
            after.append('%s %s: %s' % (plan.role, plan.dest, plan.after_attributes()))
            if plan.before.exists:
                before.append('  content: %s' % ('differs from %s' % plan.source if 'content' in plan.reasons or
                                                 'symlink' in plan.reasons else 'same as %s' % plan.source))
            after.append('  content: same as %s' % plan.source)
            before.extend('  ' + line for line in self._describe(plan.role, plan.before.data))
            after.extend('  ' + line for line in self._describe(plan.role, plan.data))
        return {
            'before_header': '%s (before)' % self.dest_dir,
            'after_header': '%s (lineage %s)' % (self.dest_dir, self.cert_name),
            'before': '\n'.join(before) + '\n',
            'after': '\n'.join(after) + '\n',
        }

    @staticmethod
    def _describe(role, data):
        """Public facts about a file's content; for keys only the public key's hash."""
        if data is None:
            return []
        try:
            if role == 'key':
                key = load_private_key(data, '(key)')
                return ['public_key_sha256: %s' % colon_hex(_sha256(public_key_der(key.public_key())))]
            return CertificateInfo(parse_certificates(data, '(certificate)')[0]).describe()
        except CertbotCopyError:
            return ['(not a valid PEM %s)' % ('key' if role == 'key' else 'certificate')]


def _sha256(data):
    digest = hashes.Hash(hashes.SHA256(), _backend())
    digest.update(data)
    return digest.finalize()
