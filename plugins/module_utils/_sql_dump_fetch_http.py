# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTP(S) and file:// layer of ``sql_dump_fetch``.

Private to this collection. Standard library only (``http.client``, ``ssl``), no Ansible
imports, so managed hosts need nothing beyond Python and the class is unit-tested directly.

What it adds over ``urllib.request``:

* credentials are sent only to the origin (scheme, host, port) of the URL the user gave:
  a redirect to another origin drops ``Authorization`` and ``Cookie`` headers;
* basic auth either up front (``force_basic_auth``) or after a ``401`` challenge;
* ``file://`` URLs answer like an HTTP server, ``Range`` included, so resume and the
  date probe work the same way on a local mirror;
* every URL that leaves this layer, in results or errors, has its credentials removed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import email.utils
import http.client
import os
import re
import socket
import ssl

from urllib.parse import unquote, urljoin, urlsplit, urlunsplit
from urllib.request import getproxies, proxy_bypass

USER_AGENT = 'labops.services.sql_dump_fetch'
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
# Headers that carry credentials: never sent to an origin other than the one the user named.
SENSITIVE_HEADERS = ('authorization', 'cookie', 'proxy-authorization')
_RANGE_RE = re.compile(r'^\s*bytes\s*=\s*(\d+)\s*-\s*(\d*)\s*$')


class TransportError(Exception):
    """A request could not be made or answered.

    ``retryable`` tells the caller whether trying again may help (connection refused, reset,
    timeout) or not (TLS verification, bad URL, too many redirects).
    """

    def __init__(self, msg, retryable=True):
        super(TransportError, self).__init__(msg)
        self.msg = msg
        self.retryable = retryable


def strip_credentials(url):
    """Return ``url`` without ``user:password@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return '<unparsable url>'
    if parts.username is None and parts.password is None and '@' not in parts.netloc:
        return url
    host = parts.netloc.rpartition('@')[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def url_credentials(url):
    """Return ``(username, password)`` embedded in ``url`` (unquoted) or ``(None, None)``."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return user, password


def origin(url):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {'http': 80, 'https': 443}.get(scheme)
    except ValueError:
        raise TransportError('invalid port in %s' % strip_credentials(url), retryable=False)
    return scheme, (parts.hostname or '').lower(), port


def http_date(timestamp):
    return email.utils.formatdate(timestamp, usegmt=True)


class Reply(object):
    """One response: ``status``, ``headers`` (lower-case keys), ``url`` (final, no credentials)."""

    def __init__(self, status, reason, headers, url, body=None, conn=None):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.url = url
        self._body = body
        self._conn = conn

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def readinto(self, buf):
        """Fill ``buf`` with body bytes; 0 at the end. Short bodies raise (``IncompleteRead``/``OSError``)."""
        if self._body is None:
            return 0
        return self._body.readinto(buf)

    def read_small(self, limit):
        """Read a body known to be small; refuse more than ``limit`` bytes."""
        chunks = []
        total = 0
        buf = bytearray(65536)
        while True:
            n = self.readinto(buf)
            if not n:
                break
            total += n
            if total > limit:
                raise TransportError('%s sent more than %d bytes where a small file was expected' % (self.url, limit), retryable=False)
            chunks.append(bytes(buf[:n]))
        return b''.join(chunks)

    def close(self):
        body, conn = self._body, self._conn
        self._body = self._conn = None
        if body is not None:
            try:
                body.close()
            except Exception:  # pylint: disable=broad-except
                pass
        if conn is not None:
            conn.close()


class _FileBody(object):
    """A byte range of a local file, read with ``readinto``."""

    def __init__(self, fobj, remaining):
        self._f = fobj
        self._remaining = remaining

    def readinto(self, buf):
        if self._remaining <= 0:
            return 0
        view = memoryview(buf)
        if len(view) > self._remaining:
            view = view[:self._remaining]
        n = self._f.readinto(view)
        self._remaining -= n
        return n

    def close(self):
        self._f.close()


class HttpTransport(object):
    """Make GET/HEAD requests with auth, redirects, TLS options and proxies from the environment."""

    def __init__(self, username=None, password=None, force_basic_auth=True, headers=None,
                 validate_certs=True, ca_path=None, timeout=30, use_proxy=True, max_redirects=10):
        self.username = username
        self.password = password
        self.force_basic_auth = force_basic_auth
        self.headers = dict(headers or {})
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.use_proxy = use_proxy
        self.max_redirects = max_redirects
        self._ssl_context = None

    # -- public -----------------------------------------------------------------------------

    def open(self, method, url, headers=None):
        """Send ``method`` to ``url``; follow redirects; return a :class:`Reply` (any status).

        The caller must ``close()`` the reply. Raises :class:`TransportError`.
        """
        user, password = url_credentials(url)
        if self.username is not None:
            user, password = self.username, self.password
        url = strip_credentials(url)
        home = origin(url)
        extra = dict(headers or {})
        for hop in range(self.max_redirects + 1):
            same_origin = origin(url) == home
            reply = self._open_once(method, url, extra, user if same_origin else None, password, same_origin)
            if reply.status not in REDIRECT_STATUSES or not reply.header('location'):
                return reply
            target = urljoin(url, reply.header('location'))
            reply.close()
            if urlsplit(target).scheme.lower() not in ('http', 'https'):
                raise TransportError('%s redirects to %s, which is not http(s)' % (url, strip_credentials(target)), retryable=False)
            # A redirect may carry credentials of its own; they are never used.
            url = strip_credentials(target)
        raise TransportError('more than %d redirects starting at %s' % (self.max_redirects, strip_credentials(url)), retryable=False)

    # -- one request ------------------------------------------------------------------------

    def _open_once(self, method, url, extra, user, password, same_origin):
        scheme = urlsplit(url).scheme.lower()
        if scheme == 'file':
            return self._open_file(method, url, extra)
        if scheme not in ('http', 'https'):
            raise TransportError('unsupported URL scheme %r in %s (use http, https or file)' % (scheme, url), retryable=False)
        headers = {'User-Agent': USER_AGENT}
        for name, value in self.headers.items():
            if name.lower() in ('range', 'if-range'):
                continue  # ranges are this module's business (resume, probes)
            if same_origin or name.lower() not in SENSITIVE_HEADERS:
                headers[name] = value
        headers.update(extra)
        send_auth = user is not None and same_origin
        if send_auth and self.force_basic_auth:
            headers['Authorization'] = _basic(user, password)
        reply = self._request(method, url, headers)
        if (reply.status == 401 and send_auth and not self.force_basic_auth
                and 'basic' in (reply.header('www-authenticate') or '').lower()):
            reply.close()
            headers['Authorization'] = _basic(user, password)
            reply = self._request(method, url, headers)
        return reply

    def _request(self, method, url, headers):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:
            raise TransportError('invalid port in %s' % url, retryable=False)
        host = parts.hostname
        if not host:
            raise TransportError('no host in %s' % url, retryable=False)
        target = parts.path or '/'
        if parts.query:
            target += '?' + parts.query
        conn, target = self._connection(scheme, host, port, target, url, headers)
        try:
            conn.request(method, target, headers=headers)
            response = conn.getresponse()
        except ssl.SSLError as exc:
            conn.close()
            raise TransportError(_tls_message(host, port or 443, exc), retryable=isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)))
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TransportError('cannot get %s: %s' % (url, _describe(exc)))
        reply_headers = dict((k.lower(), v) for k, v in response.getheaders())
        return Reply(response.status, response.reason, reply_headers, url, body=response, conn=conn)

    def _connection(self, scheme, host, port, target, url, headers):
        proxy = self._proxy_for(scheme, host)
        if scheme == 'https':
            context = self._context()
            if proxy:
                pparts = urlsplit(proxy)
                conn = http.client.HTTPSConnection(pparts.hostname, pparts.port or 3128, timeout=self.timeout, context=context)
                tunnel_headers = {}
                if pparts.username is not None:
                    tunnel_headers['Proxy-Authorization'] = _basic(unquote(pparts.username), unquote(pparts.password or ''))
                conn.set_tunnel(host, port or 443, headers=tunnel_headers)
            else:
                conn = http.client.HTTPSConnection(host, port or 443, timeout=self.timeout, context=context)
            return conn, target
        if proxy:
            pparts = urlsplit(proxy)
            conn = http.client.HTTPConnection(pparts.hostname, pparts.port or 3128, timeout=self.timeout)
            if pparts.username is not None:
                headers['Proxy-Authorization'] = _basic(unquote(pparts.username), unquote(pparts.password or ''))
            return conn, url
        return http.client.HTTPConnection(host, port or 80, timeout=self.timeout), target

    def _proxy_for(self, scheme, host):
        if not self.use_proxy:
            return None
        proxy = getproxies().get(scheme)
        if not proxy or proxy_bypass(host):
            return None
        if '://' not in proxy:
            proxy = 'http://' + proxy
        return proxy

    def _context(self):
        if self._ssl_context is None:
            if self.validate_certs:
                if self.ca_path and os.path.isdir(self.ca_path):
                    context = ssl.create_default_context(capath=self.ca_path)
                else:
                    context = ssl.create_default_context(cafile=self.ca_path)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl_context = context
        return self._ssl_context

    # -- file:// ----------------------------------------------------------------------------

    @staticmethod
    def _open_file(method, url, extra):
        path = unquote(urlsplit(url).path)
        try:
            fobj = open(path, 'rb')
        except (IOError, OSError) as exc:
            if getattr(exc, 'errno', None) == 2:
                return Reply(404, 'Not Found', {}, url)
            if getattr(exc, 'errno', None) in (1, 13):
                return Reply(403, 'Forbidden', {}, url)
            raise TransportError('cannot open %s: %s' % (path, _describe(exc)), retryable=False)
        st = os.fstat(fobj.fileno())
        size = st.st_size
        headers = {'content-length': str(size), 'last-modified': http_date(st.st_mtime),
                   'etag': '"%x-%x-%x"' % (st.st_ino, size, st.st_mtime_ns), 'accept-ranges': 'bytes'}
        status, reason, start = 200, 'OK', 0
        match = _RANGE_RE.match(extra.get('Range', ''))
        validator = extra.get('If-Range')
        if match and (validator is None or validator in (headers['etag'], headers['last-modified'])):
            start = int(match.group(1))
            if start >= size:
                fobj.close()
                return Reply(416, 'Range Not Satisfiable', {'content-range': 'bytes */%d' % size}, url)
            end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            status, reason = 206, 'Partial Content'
            headers['content-range'] = 'bytes %d-%d/%d' % (start, end, size)
            headers['content-length'] = str(end - start + 1)
        if method == 'HEAD':
            fobj.close()
            return Reply(status, reason, headers, url)
        fobj.seek(start)
        return Reply(status, reason, headers, url, body=_FileBody(fobj, int(headers['content-length'])))


def _basic(user, password):
    token = base64.b64encode(('%s:%s' % (user, password or '')).encode('utf-8')).decode('ascii')
    return 'Basic ' + token


def _describe(exc):
    if isinstance(exc, socket.timeout):
        return 'timed out'
    text = str(exc) or exc.__class__.__name__
    return text


def _tls_message(host, port, exc):
    reason = getattr(exc, 'verify_message', None) or getattr(exc, 'reason', None) or str(exc)
    return ('TLS failure talking to %s:%s: %s; give ca_path the CA that signed the server certificate '
            '(or set validate_certs=false only on a network you trust)' % (host, port, reason))
