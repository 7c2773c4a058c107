# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real HTTP(S) server on 127.0.0.x for download tests, with the misbehaviours to test against.

    server = DumpServer(files={'/a.sql.gz': data}, auth=('u', 'p'), ranges=True)
    server.start(); server.url('/a.sql.gz'); server.log; server.stop()

Knobs (all on ``server``, changeable while it runs):
``files``      path -> bytes (ETag and Last-Modified derived from the content, or set in ``etags``)
``auth``       (user, password) required for every request, else 401 with a Basic challenge
``ranges``     honour ``Range``/``If-Range`` (206) or ignore them (200, whole body)
``head``       answer HEAD, or 405 when False
``cuts``       list of byte counts: the next GET bodies are cut after that many bytes
``statuses``   list of statuses to answer the next requests with (e.g. 503) before serving normally
``redirects``  path -> Location
``log``        one dict per request: method, path, headers (lower-case), status, sent (body bytes)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import email.utils
import hashlib
import re
import socket
import ssl
import threading

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r'^bytes=(\d+)-(\d*)$')
LAST_MODIFIED = email.utils.formatdate(1700000000, usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'DumpServer/1'

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head):
        srv = self.server.owner
        entry = {'method': self.command, 'path': self.path, 'headers': dict((k.lower(), v) for k, v in self.headers.items()),
                 'status': None, 'sent': 0}
        with srv.lock:
            srv.log.append(entry)
            status = srv.statuses.pop(0) if srv.statuses else None
        path = self.path
        if path.startswith('http://'):  # proxied request (absolute URI)
            entry['proxied'] = True
            path = '/' + path.split('/', 3)[3]
        if status:
            return self._reply(entry, status, b'try later\n', extra={'Retry-After': '0'} if status == 503 else None)
        if srv.auth and not self._authorized(srv.auth):
            return self._reply(entry, 401, b'auth required\n', extra={'WWW-Authenticate': 'Basic realm="dumps"'})
        if path in srv.redirects:
            return self._reply(entry, srv.redirect_status, b'', extra={'Location': srv.redirects[path]})
        if head and not srv.head:
            return self._reply(entry, 405, b'', extra={'Allow': 'GET'})
        data = srv.files.get(path)
        if data is None:
            return self._reply(entry, 404, b'not found\n')
        etag = srv.etags.get(path) or '"%s"' % hashlib.sha1(data).hexdigest()[:16]
        headers = {'ETag': etag, 'Last-Modified': LAST_MODIFIED, 'Content-Type': 'application/octet-stream'}
        if srv.ranges:
            headers['Accept-Ranges'] = 'bytes'
        start, end, status = 0, len(data) - 1, 200
        match = _RANGE.match(self.headers.get('Range', ''))
        if_range = self.headers.get('If-Range')
        if srv.ranges and match and (if_range is None or if_range in (etag, LAST_MODIFIED)):
            start = int(match.group(1))
            if start >= len(data):
                return self._reply(entry, 416, b'', extra={'Content-Range': 'bytes */%d' % len(data)})
            end = min(int(match.group(2)) if match.group(2) else len(data) - 1, len(data) - 1)
            status = 206
            headers['Content-Range'] = 'bytes %d-%d/%d' % (start, end, len(data))
        body = data[start:end + 1]
        with srv.lock:
            cut = srv.cuts.pop(0) if (srv.cuts and not head) else None
        self._reply(entry, status, b'' if head else body, extra=headers, length=len(body), cut=cut)

    def _authorized(self, auth):
        header = self.headers.get('Authorization', '')
        want = 'Basic ' + base64.b64encode(('%s:%s' % auth).encode()).decode()
        return header == want

    def _reply(self, entry, status, body, extra=None, length=None, cut=None):
        entry['status'] = status
        self.send_response(status)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header('Content-Length', str(len(body) if length is None else length))
        if cut is not None:
            self.send_header('Connection', 'close')
        self.end_headers()
        if cut is not None:
            body = body[:cut]
        view = memoryview(body)
        try:
            while len(view):
                n = self.wfile.write(view[:65536])
                entry['sent'] += n
                view = view[n:]
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if cut is not None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class DumpServer(object):
    def __init__(self, files=None, host='127.0.0.1', auth=None, ranges=True, head=True, tls=None):
        self.files = dict(files or {})
        self.etags = {}
        self.auth = auth
        self.ranges = ranges
        self.head = head
        self.cuts = []
        self.statuses = []
        self.redirects = {}
        self.redirect_status = 302
        self.log = []
        self.lock = threading.Lock()
        self.host = host
        self.tls = tls
        self._httpd = None
        self._thread = None

    def start(self):
        self._httpd = _Server((self.host, 0), _Handler)
        self._httpd.owner = self
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={'poll_interval': 0.01})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    @property
    def port(self):
        return self._httpd.server_address[1]

    @property
    def base(self):
        return '%s://%s:%d' % ('https' if self.tls else 'http', self.host, self.port)

    def url(self, path):
        return self.base + path

    def requests(self, method=None):
        with self.lock:
            return [e for e in self.log if method is None or e['method'] == method]

    def body_bytes(self):
        with self.lock:
            return sum(e['sent'] for e in self.log if e['method'] == 'GET')


def second_loopback_host():
    """127.0.0.2 when it can be bound (Linux routes all of 127/8 to lo), else 127.0.0.1."""
    probe = socket.socket()
    try:
        probe.bind(('127.0.0.2', 0))
        return '127.0.0.2'
    except OSError:
        return '127.0.0.1'
    finally:
        probe.close()


def make_tls_files(directory):
    """A CA and a server certificate for 127.0.0.1 made with ``cryptography``; returns (ca.pem, cert.pem, key.pem)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'labops test CA')])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'127.0.0.1')]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(u'127.0.0.1'))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = [str(directory / name) for name in ('ca.pem', 'cert.pem', 'key.pem')]
    with open(paths[0], 'wb') as f:
        f.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], 'wb') as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], 'wb') as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


class ConnectProxy(object):
    """A minimal HTTPS forward proxy: answers ``CONNECT host:port`` and pipes bytes both ways.

    ``log`` lists the CONNECT request lines and headers it saw; every tunnel is bounded by a
    socket timeout, so a stuck peer cannot hang a test.
    """

    def __init__(self, host='127.0.0.1'):
        self.log = []
        self._sock = socket.socket()
        self._sock.bind((host, 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept)
        self._thread.daemon = True

    @property
    def url(self):
        return 'http://%s:%d' % self._sock.getsockname()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._tunnel, args=(client,))
            worker.daemon = True
            worker.start()

    def _tunnel(self, client):
        client.settimeout(5)
        head = b''
        while b'\r\n\r\n' not in head and len(head) < 65536:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        lines = head.split(b'\r\n\r\n', 1)[0].decode('latin-1').split('\r\n')
        self.log.append(lines)
        method, target = lines[0].split(' ')[:2]
        if method != 'CONNECT':
            client.sendall(b'HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n')
            client.close()
            return
        host, port = target.rsplit(':', 1)
        upstream = socket.create_connection((host, int(port)), timeout=5)
        client.sendall(b'HTTP/1.1 200 Connection established\r\n\r\n')

        def pipe(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        back = threading.Thread(target=pipe, args=(upstream, client))
        back.daemon = True
        back.start()
        pipe(client, upstream)
        back.join(5)
        client.close()
        upstream.close()
