#!/usr/bin/python3
"""labops kit datalab-app: serve the one-page app in /app/dist on 0.0.0.0:8081 (PORT).

Like the real app's `serve -s`: unknown paths get index.html (client-side routes). /config.js
is made at start from the VUE_APP_* environment the real app is built with; without
VUE_APP_API_URL (an http(s) URL) the server refuses to start.
"""
import http.server
import json
import os
import sys
from pathlib import Path

ROOT = Path("/app/dist")
SETTINGS = ("VUE_APP_API_URL", "VUE_APP_LOGO_URL", "VUE_APP_HOMEPAGE_URL", "VUE_APP_EDITABLE_INVENTORY")


def config_script(environ):
    api = environ.get("VUE_APP_API_URL", "")
    if not api.startswith(("http://", "https://")):
        sys.exit("datalab-app: set VUE_APP_API_URL to the API's URL (http:// or https://), got %r" % api)
    values = {name: environ.get(name, "") for name in SETTINGS}
    return ("window.DATALAB_CONFIG = %s;\n" % json.dumps(values, sort_keys=True)).encode()


class Handler(http.server.SimpleHTTPRequestHandler):
    config = b""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(ROOT), **kwargs)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/config.js":
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Content-Length", str(len(self.config)))
            self.end_headers()
            self.wfile.write(self.config)
            return
        target = (ROOT / path.lstrip("/")).resolve()
        if path != "/" and (ROOT not in target.parents or not target.is_file()):
            self.path = "/index.html"
        super().do_GET()

    def log_message(self, fmt, *args):
        sys.stderr.write("datalab-app: %s %s\n" % (self.address_string(), fmt % args))


def main():
    Handler.config = config_script(os.environ)
    port = int(os.environ.get("PORT", "8081"))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print("datalab-app (labops stand-in) on :%d, API %s" % (port, os.environ["VUE_APP_API_URL"]), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
