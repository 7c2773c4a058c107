#!/opt/venv/bin/python
"""labops kit jupyter: start the Jupyter server (the image's default command).

Like upstream's start-notebook.py it runs `jupyter lab` (DOCKER_STACKS_JUPYTER_CMD: lab,
notebook or server) on 0.0.0.0:$JUPYTER_PORT (8888), with NOTEBOOK_ARGS and this script's
own arguments appended. Unlike upstream it never starts with a random token: it needs
  JUPYTER_SERVER_APP_PASSWORD          the password (hashed here with argon2), or
  JUPYTER_SERVER_APP_HASHED_PASSWORD   a hash from jupyter_server.auth.passwd()
and then the password is the only way in (no token). With neither it refuses to start.
Both variables are removed from the server's environment, so kernels never see them.
"""
import os
import shlex
import sys


def fail(message):
    print(f"start-notebook.py: FATAL: {message}", file=sys.stderr)
    sys.exit(1)


plain = os.environ.pop("JUPYTER_SERVER_APP_PASSWORD", "")
hashed = os.environ.pop("JUPYTER_SERVER_APP_HASHED_PASSWORD", "")
if plain and hashed:
    fail("JUPYTER_SERVER_APP_PASSWORD and JUPYTER_SERVER_APP_HASHED_PASSWORD are both set; set only one")
if not plain and not hashed:
    fail("no password: set JUPYTER_SERVER_APP_PASSWORD (the password) or "
         "JUPYTER_SERVER_APP_HASHED_PASSWORD (a hash from jupyter_server.auth.passwd()).\n"
         "  This image does not start an unprotected server or one with a random token.")
if plain:
    from jupyter_server.auth import passwd

    hashed = passwd(plain)
elif hashed.split(":", 1)[0] not in ("argon2", "sha1", "sha256", "sha512"):
    fail("JUPYTER_SERVER_APP_HASHED_PASSWORD is not a jupyter_server password hash "
         "('argon2:…' or 'sha1:salt:hash'); make one with jupyter_server.auth.passwd()")

command = os.environ.get("DOCKER_STACKS_JUPYTER_CMD", "lab")
if command not in ("lab", "notebook", "server"):
    fail(f"DOCKER_STACKS_JUPYTER_CMD={command!r}: only lab, notebook and server are installed")

env = dict(os.environ, LABOPS_KIT_JUPYTER_HASHED_PASSWORD=hashed)
argv = ["jupyter", command, *shlex.split(os.environ.get("NOTEBOOK_ARGS", "")), *sys.argv[1:]]
print(f"start-notebook.py: {' '.join(shlex.quote(a) for a in argv)} (password login, no token)",
      file=sys.stderr, flush=True)
os.execvpe(argv[0], argv, env)
