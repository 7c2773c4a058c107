# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fetch a dated database dump: date fallback, resume, retries, streaming checks, atomic placement.

Private to this collection. No Ansible imports: ``plugins/modules/sql_dump_fetch.py`` builds a
:class:`DumpFetcher`, calls :meth:`DumpFetcher.run` and turns the one domain exception,
:class:`FetchError`, into one ``fail_json``.

Files beside ``dest`` (``/data/x.sql.gz``):

``/data/x.sql.gz.part``
    the transfer in progress, mode 0600; kept after a network failure so that the next
    attempt (or run) continues with an HTTP ``Range`` request; renamed over ``dest`` only
    when it is complete and checked.
``/data/.x.sql.gz.fetch.json``
    what was recorded at download (source URL without credentials, remote size, ``ETag``,
    ``Last-Modified``, digests, and the stat of the file written), mode 0600, written
    atomically. It makes the idempotence check one ``HEAD`` request and no re-hash.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import hashlib
import http.client
import json
import os
import re
import stat
import time

from urllib.parse import unquote, urlsplit

from ansible_collections.labops.services.plugins.module_utils._atomic_file import write_bytes_atomic
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch_http import (
    HttpTransport,
    TransportError,
    strip_credentials,
)
from ansible_collections.labops.services.plugins.module_utils._sql_dump_fetch_stream import (
    ALIGN,
    StreamCheckError,
    StreamPipeline,
    StreamWriteError,
)

DATE_PLACEHOLDER = '{date}'
CHECKSUM_ALGORITHMS = ('md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512')
VERIFY_CHOICES = ('auto', 'gzip', 'none')
RETRY_STATUSES = (408, 425, 429, 500, 502, 503, 504)
GONE_STATUSES = (404, 410)
AUTH_STATUSES = (401, 403)
SIDECAR_VERSION = 1
MAX_CHECKSUM_FILE = 1 << 20
# Without O_DIRECT, ask the kernel to write the file out every so many bytes, so that the fsync
# before the rename has little left to do and a multi-GB dump does not fill the page cache.
WRITEBACK_STEP = 64 << 20

_DATE_RE = re.compile(r'^\d{4}-\d{2}-\d{2}$')
_CONTENT_RANGE_RE = re.compile(r'^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$')
_UNSATISFIED_RANGE_RE = re.compile(r'^\s*bytes\s+\*/(\d+)\s*$')
_BSD_DIGEST_LINE = re.compile(r'^(\w+) ?\((?P<path>.+)\) ?= (?P<digest>[\w.]+)$')
_GNU_DIGEST_LINE = re.compile(r'^(?P<digest>[\w.]+)\s+(\*|\./|\.)?(?P<path>.+)$')


class FetchError(Exception):
    """The one error this module_utils raises; ``msg`` says what to fix, ``context`` goes to ``fail_json``."""

    def __init__(self, msg, **context):
        super(FetchError, self).__init__(msg)
        self.msg = msg
        self.context = context


class _Retry(Exception):
    """A failed attempt that may succeed when tried again."""

    def __init__(self, msg, retry_after=None):
        super(_Retry, self).__init__(msg)
        self.msg = msg
        self.retry_after = retry_after


class Remote(object):
    """What the server says about one URL."""

    def __init__(self, status, size=None, etag=None, last_modified=None, accept_ranges=None):
        self.status = status
        self.size = size
        self.etag = etag
        self.last_modified = last_modified
        self.accept_ranges = accept_ranges

    @property
    def exists(self):
        return 200 <= self.status < 300

    @classmethod
    def from_reply(cls, reply):
        size = None
        if reply.status == 206:
            match = _CONTENT_RANGE_RE.match(reply.header('content-range') or '')
            if match and match.group(3) != '*':
                size = int(match.group(3))
        elif reply.status == 200:
            size = _int_or_none(reply.header('content-length'))
        return cls(reply.status, size, reply.header('etag'), reply.header('last-modified'), reply.header('accept-ranges'))

    def validators(self):
        return {'etag': self.etag, 'last_modified': self.last_modified, 'size': self.size}


def _int_or_none(text):
    try:
        value = int(text)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


def parse_checksum(spec):
    """Split ``algorithm:value`` (``value`` a hex digest or a URL); return ``(algorithm, value, is_url)``."""
    if not spec or ':' not in spec:
        raise FetchError('checksum must be <algorithm>:<hex digest> or <algorithm>:<url of a checksum file>, e.g. sha256:9f86d08…')
    algorithm, value = spec.split(':', 1)
    algorithm = algorithm.strip().lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise FetchError('checksum algorithm %r is not supported; use one of %s' % (algorithm, ', '.join(CHECKSUM_ALGORITHMS)))
    value = value.strip()
    if urlsplit(value).scheme.lower() in ('http', 'https', 'file'):
        return algorithm, value, True
    return algorithm, normalize_digest(algorithm, value), False


def normalize_digest(algorithm, value):
    # Like get_url: drop anything that is not a word character (spaces, the infamous zero-width space).
    digest = re.sub(r'\W+', '', value).lower()
    expected_len = hashlib.new(algorithm).digest_size * 2
    if len(digest) != expected_len or re.search(r'[^0-9a-f]', digest):
        raise FetchError('checksum %r is not a %s digest (%d hex characters)' % (value, algorithm, expected_len))
    return digest


def parse_checksum_file(text, filename):
    """Find the digest for ``filename`` in a ``sha256sum``/BSD style checksum file (as get_url does).

    A line for exactly ``filename`` wins; else the first line whose path ends in ``/filename``.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith('#')]
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return lines[0]
    entries = []
    for line in lines:
        match = _BSD_DIGEST_LINE.match(line)
        if match:
            path = match.group('path')
        else:
            match = _GNU_DIGEST_LINE.match(line)
            if not match:
                continue
            path = match.group('path').lstrip('./')
        entries.append((path, match.group('digest')))
    for path, digest in entries:
        if path == filename:
            return digest
    for path, digest in entries:
        if os.path.basename(path) == filename:
            return digest
    return None


def url_filename(url):
    return unquote(os.path.basename(urlsplit(url).path))


def hash_file(path, algorithm, buffer_size=1 << 20):
    hasher = hashlib.new(algorithm)
    buf = bytearray(buffer_size)
    view = memoryview(buf)
    with open(path, 'rb', buffering=0) as fobj:
        while True:
            n = fobj.readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
    return hasher.hexdigest()


class Sidecar(object):
    """``.<name>.fetch.json`` beside ``dest``: the download record and the partial transfer."""

    def __init__(self, dest):
        directory, name = os.path.split(dest)
        self.path = os.path.join(directory, '.%s.fetch.json' % name)
        self.data = {}

    def load(self):
        try:
            with open(self.path, 'r') as fobj:
                data = json.load(fobj)
        except (IOError, OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or data.get('version') != SIDECAR_VERSION:
            data = {}
        self.data = data
        return data

    def save(self, **sections):
        data = dict(self.data)
        data['version'] = SIDECAR_VERSION
        for key, value in sections.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        self.data = data
        if 'complete' not in data and 'partial' not in data:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            return
        write_bytes_atomic(self.path, json.dumps(data, indent=2, sort_keys=True).encode('utf-8'), mode=0o600)

    def complete_for(self, dest):
        """The download record if ``dest`` is still the very file it describes, else ``None``."""
        record = self.data.get('complete')
        if not isinstance(record, dict):
            return None
        try:
            st = os.stat(dest)
        except OSError:
            return None
        if record.get('file') != _file_identity(st):
            return None
        return record


def _file_identity(st):
    return {'size': st.st_size, 'mtime_ns': st.st_mtime_ns, 'inode': st.st_ino}


class _Transfer(object):
    """State of one body transfer into ``<dest>.part``."""

    def __init__(self, fd, offset, pipe):
        self.fd = fd
        self.offset = offset
        self.pipe = pipe
        self.total = None
        self.resumed_from = 0
        self.validators = {}

    def restart(self):
        self.pipe.restart()
        self.offset = 0


class DumpFetcher(object):
    """Download ``url`` (with ``{date}`` resolved) to ``dest``, whole and checked, or fail with a reason.

    ``today`` (a callable returning a ``datetime.date``) and ``sleep`` are injectable so that
    tests control the calendar and the back-off.
    """

    def __init__(self, url, dest, date='latest', max_age_days=7, checksum=None, verify='auto',
                 retries=5, resume=True, force=False, transport=None, today=None, sleep=time.sleep,
                 backoff=1.0, backoff_max=60.0, buffer_size=1 << 20, threaded=True, direct_io=True,
                 new_file_mode=0o600, clock=time.monotonic):
        self.url_template = url
        self.public_template = strip_credentials(url)
        self.dest_arg = dest
        self.date_arg = date or 'latest'
        self.max_age_days = max_age_days
        self.checksum = checksum
        self.verify = verify
        self.retries = retries
        self.resume = resume
        self.force = force
        self.transport = transport or HttpTransport()
        self.today = today or (lambda: datetime.datetime.now(datetime.timezone.utc).date())
        self.sleep = sleep
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.buffer_size = buffer_size
        self.threaded = threaded
        self.direct_io = direct_io
        self.new_file_mode = new_file_mode
        self.clock = clock
        self._remote = {}
        self.diff = None
        self._validate()

    # -- arguments --------------------------------------------------------------------------

    def _validate(self):
        if self.verify not in VERIFY_CHOICES:
            raise FetchError('verify must be one of %s, not %r' % (', '.join(VERIFY_CHOICES), self.verify))
        if self.max_age_days is None or self.max_age_days < 0:
            raise FetchError('max_age_days must be 0 or more')
        if self.retries is None or self.retries < 0:
            raise FetchError('retries must be 0 or more')
        scheme = urlsplit(self.url_template).scheme.lower()
        if scheme not in ('http', 'https', 'file'):
            raise FetchError('url must be an http, https or file URL, not %s' % self.public_template)
        if self.date_arg not in ('latest', 'today'):
            if not _DATE_RE.match(self.date_arg):
                raise FetchError('date must be YYYY-MM-DD, today or latest, not %r' % self.date_arg)
            try:
                datetime.datetime.strptime(self.date_arg, '%Y-%m-%d')
            except ValueError:
                raise FetchError('date %s is not a calendar date' % self.date_arg)
        if self.checksum:
            parse_checksum(self.checksum)  # fail early on a malformed checksum

    # -- main entry -------------------------------------------------------------------------

    def run(self, check_mode=False):
        """Resolve, decide, download if needed. Returns the result dict (``changed`` for the content only)."""
        started = self.clock()
        context = {'url': self.public_template, 'dest': self.dest_arg}
        try:
            date, url = self.resolve()
            public_url = strip_credentials(url)
            context.update(url=public_url, date=date)
            dest = self.dest_path(url)
            context['dest'] = dest
            result = {'changed': False, 'dest': dest, 'url': public_url, 'date': date, 'size': None, 'sha256': None,
                      'resumed_from': 0, 'attempts': 0}
            expected = self._expected_digest(url, date)
            sidecar = Sidecar(dest)
            sidecar.load()
            record = sidecar.complete_for(dest) if os.path.isfile(dest) else None
            before = self._state_of(dest, record)
            need, why, local_sha256 = self._needs_download(url, date, dest, expected, record)
            if not need:
                result.update(size=os.path.getsize(dest), sha256=local_sha256, msg=why)
                self.diff = {'before': before, 'after': before}
            elif check_mode:
                remote = self.remote(url, date)
                if remote.status in GONE_STATUSES:
                    raise self._not_found(url, date, remote.status)
                sha256 = expected[1] if expected and expected[0] == 'sha256' else None
                result.update(changed=True, size=remote.size, sha256=sha256,
                              msg='would download %s to %s (%s)' % (public_url, dest, why))
                self.diff = {'before': before, 'after': {'path': dest, 'url': public_url, 'size': result['size'], 'sha256': sha256}}
            else:
                outcome = self._download(url, date, dest, expected, sidecar)
                result.update(outcome)
                result['changed'] = True
                result['msg'] = 'downloaded %d bytes from %s (%s)%s' % (
                    outcome['size'], public_url, why,
                    ', resumed from byte %d' % outcome['resumed_from'] if outcome['resumed_from'] else '')
                self.diff = {'before': before, 'after': {'path': dest, 'url': public_url, 'size': outcome['size'],
                                                         'sha256': outcome['sha256']}}
        except FetchError as exc:
            for key, value in context.items():
                exc.context.setdefault(key, value)
            exc.context.setdefault('elapsed', round(self.clock() - started, 3))
            raise
        result['elapsed'] = round(self.clock() - started, 3)
        return result

    # -- date and destination ---------------------------------------------------------------

    def url_for(self, date):
        return self.url_template.replace(DATE_PLACEHOLDER, date)

    def resolve(self):
        """Return ``(date or None, url)``; for ``latest`` probe back from today."""
        if DATE_PLACEHOLDER not in self.url_template:
            return None, self.url_template
        if self.date_arg == 'today':
            date = self.today().isoformat()
            return date, self.url_for(date)
        if self.date_arg != 'latest':
            return self.date_arg, self.url_for(self.date_arg)
        today = self.today()
        tried = []
        for back in range(self.max_age_days + 1):
            date = (today - datetime.timedelta(days=back)).isoformat()
            url = self.url_for(date)
            remote = self.remote(url, date)
            if remote.exists:
                return date, url
            tried.append('%s (HTTP %d)' % (date, remote.status))
        raise FetchError('no dump at %s for any date from %s back to %s (max_age_days=%d); tried %s' % (
            self.public_template, today.isoformat(), (today - datetime.timedelta(days=self.max_age_days)).isoformat(),
            self.max_age_days, ', '.join(tried)), url=self.public_template, tried=[t.split(' ')[0] for t in tried])

    def dest_path(self, url):
        dest = self.dest_arg
        if os.path.isdir(dest) or dest.endswith(os.sep):
            name = url_filename(url)
            if not name or name in ('.', '..'):
                raise FetchError('cannot take a file name from %s; give dest as a file path' % strip_credentials(url))
            dest = os.path.join(dest, name)
        directory = os.path.dirname(os.path.abspath(dest))
        if not os.path.isdir(directory):
            raise FetchError('the directory of dest, %s, does not exist' % directory, dest=dest)
        if os.path.lexists(dest) and not os.path.isfile(dest):
            raise FetchError('dest %s exists and is not a regular file' % dest, dest=dest)
        return dest

    # -- remote metadata --------------------------------------------------------------------

    def remote(self, url, date):
        """HEAD ``url`` (or a 1-byte ranged GET where HEAD is refused); cached per URL."""
        if url in self._remote:
            return self._remote[url]
        remote = self._with_retries(url, lambda: self._probe_once(url, date))[0]
        self._remote[url] = remote
        return remote

    def _probe_once(self, url, date):
        reply = self._open('HEAD', url)
        reply.close()
        if reply.status in (405, 501):
            reply = self._open('GET', url, {'Range': 'bytes=0-0'})
            try:
                if reply.status == 206:
                    reply.read_small(1024)
            except (OSError, http.client.HTTPException, TransportError):
                pass
            finally:
                reply.close()
        self._check_status(reply, url, date)
        return Remote.from_reply(reply)

    def _open(self, method, url, headers=None):
        try:
            return self.transport.open(method, url, headers)
        except TransportError as exc:
            if exc.retryable:
                raise _Retry(exc.msg)
            raise FetchError(exc.msg, url=strip_credentials(url))

    def _check_status(self, reply, url, date, gone_is_error=False):
        status = reply.status
        public = strip_credentials(url)
        if status in AUTH_STATUSES:
            raise FetchError('authentication failed for %s (HTTP %d) — check url_username/url_password' % (public, status),
                             url=public, status_code=status)
        if status in RETRY_STATUSES:
            raise _Retry('HTTP %d %s' % (status, reply.reason or ''), _int_or_none(reply.header('retry-after')))
        if status in GONE_STATUSES:
            if gone_is_error:
                raise self._not_found(url, date, status)
            return
        if not 200 <= status < 300 and status not in (416,):
            raise FetchError('unexpected answer from %s: HTTP %d %s' % (public, status, reply.reason or ''), url=public, status_code=status)

    @staticmethod
    def _not_found(url, date, status):
        public = strip_credentials(url)
        if date:
            return FetchError('no dump for %s at %s (HTTP %d)' % (date, public, status), url=public, status_code=status)
        return FetchError('nothing at %s (HTTP %d)' % (public, status), url=public, status_code=status)

    def _with_retries(self, url, attempt, progress=None):
        """Call ``attempt()`` until it returns; retry on :class:`_Retry` with exponential back-off.

        ``progress()`` (optional) returns a number that grows when an attempt made headway:
        a failure after headway does not use up a retry and restarts the back-off.
        Returns ``(value, attempts)``.
        """
        failures = 0
        attempts = 0
        while True:
            attempts += 1
            mark = progress() if progress else None
            try:
                return attempt(), attempts
            except _Retry as exc:
                if progress is not None and progress() > mark:
                    failures = 0
                failures += 1
                if failures > self.retries:
                    raise FetchError('getting %s failed after %d attempt%s: %s' % (
                        strip_credentials(url), attempts, '' if attempts == 1 else 's', exc.msg),
                        url=strip_credentials(url), attempts=attempts)
                delay = min(self.backoff * (2 ** (failures - 1)), self.backoff_max)
                if exc.retry_after is not None:
                    delay = min(max(delay, exc.retry_after), self.backoff_max)
                self.sleep(delay)

    # -- checksum ---------------------------------------------------------------------------

    def _expected_digest(self, url, date):
        if not self.checksum:
            return None
        algorithm, value, is_url = parse_checksum(self.checksum)
        if not is_url:
            return algorithm, value
        sum_url = value.replace(DATE_PLACEHOLDER, date) if date else value
        public = strip_credentials(sum_url)

        def get():
            reply = self._open('GET', sum_url)
            try:
                self._check_status(reply, sum_url, None)
                if reply.status in GONE_STATUSES:
                    raise FetchError('no checksum file at %s (HTTP %d)' % (public, reply.status), url=public, status_code=reply.status)
                try:
                    return reply.read_small(MAX_CHECKSUM_FILE)
                except TransportError as exc:
                    raise FetchError(exc.msg, url=public)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry('reading %s: %s' % (public, exc))
            finally:
                reply.close()

        text = self._with_retries(sum_url, get)[0].decode('utf-8', 'replace')
        filename = url_filename(url)
        digest = parse_checksum_file(text, filename)
        if digest is None:
            raise FetchError('no %s checksum for %s in %s' % (algorithm, filename, public), url=public)
        return algorithm, normalize_digest(algorithm, digest)

    # -- idempotence ------------------------------------------------------------------------

    @staticmethod
    def _state_of(dest, record):
        if not os.path.isfile(dest):
            return {'path': dest, 'state': 'absent'}
        state = {'path': dest, 'size': os.path.getsize(dest)}
        if record:
            state.update(url=record.get('url'), sha256=record.get('digests', {}).get('sha256'))
        return state

    def _needs_download(self, url, date, dest, expected, record):
        """Return ``(needed, reason, sha256 of dest when known)``."""
        if self.force:
            return True, 'force=true', None
        if not os.path.isfile(dest):
            return True, 'dest does not exist', None
        recorded = (record or {}).get('digests', {})
        if expected:
            algorithm, want = expected
            have = recorded.get(algorithm) or hash_file(dest, algorithm)
            sha256 = have if algorithm == 'sha256' else recorded.get('sha256')
            if have == want:
                return False, 'dest matches the %s checksum' % algorithm, sha256
            return True, 'dest does not match the %s checksum' % algorithm, None
        if not record:
            return True, 'no download record for dest (it was not written by this module or was changed since)', None
        if record.get('url') != strip_credentials(url):
            return True, 'dest was downloaded from %s' % record.get('url'), None
        remote = self.remote(url, date)
        if remote.status in GONE_STATUSES:
            return False, 'dest is complete as recorded at download; the remote copy is gone (HTTP %d)' % remote.status, recorded.get('sha256')
        if remote.size is not None and remote.size != record.get('size'):
            return True, 'remote size %d differs from the %s recorded' % (remote.size, record.get('size')), None
        if remote.etag and record.get('etag'):
            if remote.etag != record.get('etag'):
                return True, 'remote ETag changed', None
        elif remote.last_modified and record.get('last_modified'):
            if remote.last_modified != record.get('last_modified'):
                return True, 'remote Last-Modified changed', None
        elif remote.size is None:
            return True, 'the server gives neither size nor ETag/Last-Modified to compare with', None
        return False, 'dest matches the remote size and validators recorded at download', recorded.get('sha256')

    # -- download ---------------------------------------------------------------------------

    def _gzip_check(self, dest, url):
        if self.verify == 'gzip':
            return True
        if self.verify == 'none':
            return False
        return dest.lower().endswith('.gz') or url_filename(url).lower().endswith('.gz')

    def _download(self, url, date, dest, expected, sidecar):
        public = strip_credentials(url)
        remote = self.remote(url, date)
        if remote.status in GONE_STATUSES:
            raise self._not_found(url, date, remote.status)
        part = dest + '.part'
        offset = self._resumable_offset(part, url, remote, sidecar)
        algorithms = ['sha256']
        if expected and expected[0] != 'sha256':
            algorithms.append(expected[0])
        fd = _open_part(part)
        pipe = None
        keep_part = self.resume
        try:
            os.ftruncate(fd, offset)
            self._check_space(dest, part, remote.size, offset)
            if self.resume:
                sidecar.save(partial={'url': public, 'etag': remote.etag, 'last_modified': remote.last_modified,
                                      'size': remote.size})
            pipe = StreamPipeline(fd, offset, algorithms, gzip=self._gzip_check(dest, url), buffer_size=self.buffer_size,
                                  threaded=self.threaded, direct=self.direct_io, writeback_step=WRITEBACK_STEP)
            transfer = _Transfer(fd, offset, pipe)
            transfer.validators = remote.validators()
            try:
                if offset:
                    self._check_prefix(transfer, part)
                dummy, attempts = self._with_retries(url, lambda: self._attempt(transfer, url, date, part),
                                                     progress=lambda: transfer.offset if self.resume else -1)
                digests = pipe.finish()
            except StreamWriteError as exc:
                raise _write_error(exc, part, transfer.total)
            except StreamCheckError as exc:
                keep_part = False
                raise FetchError('%s from %s; the download was discarded' % (exc, public), url=public)
            if expected and digests[expected[0]] != expected[1]:
                keep_part = False
                raise FetchError('checksum mismatch for %s: expected %s %s, got %s; the download was discarded' % (
                    public, expected[0], expected[1], digests[expected[0]]), url=public)
            self._place(fd, part, dest)
            fd = None
            st = os.stat(dest)
            record = {'url': public, 'date': date, 'size': st.st_size, 'etag': transfer.validators.get('etag'),
                      'last_modified': transfer.validators.get('last_modified'), 'digests': digests,
                      'file': _file_identity(st)}
            sidecar.save(complete=record, partial=None)
            return {'size': st.st_size, 'sha256': digests['sha256'], 'resumed_from': transfer.resumed_from,
                    'attempts': attempts}
        except BaseException:
            if pipe is not None:
                pipe.close()
            if fd is not None:
                os.close(fd)
                if not keep_part:
                    _unlink(part)
                    if sidecar.data.get('partial'):
                        sidecar.save(partial=None)
            raise

    def _resumable_offset(self, part, url, remote, sidecar):
        if not self.resume or not os.path.isfile(part):
            return 0
        partial = sidecar.data.get('partial') or {}
        if partial.get('url') != strip_credentials(url):
            return 0
        for key in ('etag', 'last_modified', 'size'):
            if partial.get(key) != getattr(remote, key):
                return 0
        size = os.path.getsize(part)
        if remote.size is not None and size > remote.size:
            return 0
        # Continue from a 4 KiB boundary (the few bytes after it are fetched again) so that
        # the writes stay aligned for O_DIRECT.
        return size - size % ALIGN

    def _check_space(self, dest, part, size, offset):
        if size is None:
            return
        try:
            st = os.statvfs(os.path.dirname(os.path.abspath(dest)))
        except OSError:
            return
        free = st.f_bavail * st.f_frsize
        need = size - offset
        if need > free:
            raise FetchError('no space left for %s: it needs %d more bytes, %d are free in %s' % (
                dest, need, free, os.path.dirname(os.path.abspath(dest))), dest=dest)

    def _check_prefix(self, transfer, part):
        """Feed the bytes already in ``.part`` to the digests (read once, from disk)."""
        remaining = transfer.offset
        position = 0
        while remaining:
            buf = transfer.pipe.acquire()
            want = min(len(buf), remaining)
            n = _pread_into(transfer.fd, buf, want, position)
            if not n:
                transfer.pipe.release(buf)
                raise FetchError('%s shrank while being read' % part)
            transfer.pipe.check_only(buf, n)
            position += n
            remaining -= n
        transfer.resumed_from = transfer.offset

    def _attempt(self, transfer, url, date, part):
        """One GET of the body (ranged when there is something to continue); raises :class:`_Retry`."""
        if not self.resume and transfer.offset:
            transfer.restart()
        headers = {}
        start = transfer.offset
        if start:
            headers['Range'] = 'bytes=%d-' % start
            etag = transfer.validators.get('etag')
            validator = etag if etag and not etag.startswith('W/') else transfer.validators.get('last_modified')
            if validator:
                headers['If-Range'] = validator
        reply = self._open('GET', url, headers)
        try:
            self._check_status(reply, url, date, gone_is_error=True)
            if reply.status == 416:
                match = _UNSATISFIED_RANGE_RE.match(reply.header('content-range') or '')
                if start and match and int(match.group(1)) == start:
                    transfer.total = start
                    transfer.resumed_from = start
                    return
                transfer.restart()
                raise _Retry('the range request was refused (HTTP 416); starting again from byte 0')
            if reply.status == 206:
                match = _CONTENT_RANGE_RE.match(reply.header('content-range') or '')
                if not match or int(match.group(1)) != start:
                    transfer.restart()
                    raise _Retry('a range request got Content-Range %r; starting again from byte 0' % reply.header('content-range'))
                transfer.total = int(match.group(3)) if match.group(3) != '*' else None
            else:
                if start:
                    # The server ignored the Range or the file changed (If-Range): begin again.
                    transfer.restart()
                    start = 0
                transfer.total = _int_or_none(reply.header('content-length'))
                transfer.validators = {'etag': reply.header('etag'), 'last_modified': reply.header('last-modified'),
                                       'size': transfer.total}
            transfer.resumed_from = start
            self._stream(reply, transfer)
        finally:
            reply.close()
        if transfer.total is not None and transfer.offset != transfer.total:
            raise _Retry('the body ended at byte %d of %d' % (transfer.offset, transfer.total))

    @staticmethod
    def _stream(reply, transfer):
        pipe = transfer.pipe
        while True:
            buf = pipe.acquire()
            try:
                n = reply.readinto(buf)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                pipe.release(buf)
                raise _Retry('the connection broke at byte %d: %s' % (transfer.offset, _describe(exc)))
            if not n:
                pipe.release(buf)
                return
            pipe.submit(buf, n)
            transfer.offset += n

    def _place(self, fd, part, dest):
        """fsync, give the final mode, rename over ``dest``; closes ``fd``."""
        try:
            os.fsync(fd)
            mode = self.new_file_mode
            try:
                st = os.stat(dest)
            except OSError:
                st = None
            if st is not None:
                mode = st.st_mode & 0o7777
                if os.geteuid() == 0:
                    os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(part, dest)
        # The directory entry is made durable by the fsync of the directory that
        # AtomicFile.commit() does when the download record is written right after.


def _open_part(part):
    flags = os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
    try:
        fd = os.open(part, flags, 0o600)
    except OSError as exc:
        raise FetchError('cannot open %s: %s' % (part, exc.strerror or exc))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FetchError('%s exists and is not a regular file' % part)
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _pread_into(fd, buf, want, position):
    if hasattr(os, 'preadv'):
        return os.preadv(fd, [memoryview(buf)[:want]], position)
    data = os.pread(fd, want, position)
    buf[:len(data)] = data
    return len(data)


def _write_error(exc, part, total):
    error = exc.error
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return FetchError('no space left on device writing %s at byte %d%s; free some space and run again '
                          '(the partial download is kept and resumed)' % (part, exc.offset, ' of %d' % total if total else ''))
    return FetchError('cannot write %s at byte %d: %s' % (part, exc.offset, error.strerror or error))


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _describe(exc):
    if isinstance(exc, http.client.IncompleteRead):
        return 'the connection closed early'
    return str(exc) or exc.__class__.__name__
