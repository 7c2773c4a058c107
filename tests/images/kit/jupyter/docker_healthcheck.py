#!/opt/venv/bin/python
"""labops kit jupyter: the image's HEALTHCHECK, as upstream has one: exit 0 when the
Jupyter server in this container answers GET /api on 127.0.0.1:$JUPYTER_PORT (8888)."""
import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('JUPYTER_PORT') or 8888}/api"
try:
    with urllib.request.urlopen(url, timeout=3) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as exc:
    print(f"{url}: {exc}", file=sys.stderr)
    sys.exit(1)
