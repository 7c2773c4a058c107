# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Plays Flatiron's dump server in the alyx scenario: files under ROOT over HTTP, basic auth.

    dump_server.py --root /srv/alyx-dumps --port 8089 --user NAME --password-file FILE

GET and HEAD of ``/json/<YYYY-MM-DD>_alyxfull.sql.gz`` (any file under ROOT), 401 with a
``Basic`` challenge without the right credentials, 404 for missing days (what makes
``date: latest`` fall back), no Range support (the module then downloads whole files).
Standard library only (the test host's python3); every request is logged on stderr.
"""

import argparse
import base64
import functools
import hmac
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    expected = b''

    def _authorized(self):
        header = self.headers.get('Authorization', '')
        if not header.startswith('Basic '):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(given, self.expected)

    def _challenge(self):
        self.send_response(401)
        self.send_header('WWW-Authenticate', 'Basic realm="alyx dumps"')
        self.send_header('Content-Length', '0')
        self.end_headers()

    def do_GET(self):
        if not self._authorized():
            return self._challenge()
        return super().do_GET()

    def do_HEAD(self):
        if not self._authorized():
            return self._challenge()
        return super().do_HEAD()

    def list_directory(self, path):
        self.send_error(404)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--root', required=True)
    parser.add_argument('--port', type=int, default=8089)
    parser.add_argument('--bind', default='127.0.0.1')
    parser.add_argument('--user', required=True)
    parser.add_argument('--password-file', required=True)
    args = parser.parse_args()
    with open(args.password_file, 'rb') as handle:
        password = handle.read().rstrip(b'\n')
    Handler.expected = args.user.encode() + b':' + password
    handler = functools.partial(Handler, directory=args.root)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), handler)
    sys.stderr.write('serving %s on %s:%d\n' % (args.root, args.bind, args.port))
    server.serve_forever()


if __name__ == '__main__':
    main()
