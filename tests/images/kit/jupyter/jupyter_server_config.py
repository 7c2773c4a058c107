# labops kit jupyter (stand-in for quay.io/jupyter/base-notebook): server defaults.
# Like upstream's /etc/jupyter/jupyter_server_config.py: every address, no browser,
# the port from JUPYTER_PORT. The password hash comes from start-notebook.py, through an
# environment variable this file removes again, so kernels and terminals never see it.
import os

c = get_config()  # noqa: F821  (provided by Jupyter when it loads this file)

c.ServerApp.ip = "0.0.0.0"
c.ServerApp.open_browser = False
c.ServerApp.port = int(os.environ.get("JUPYTER_PORT") or 8888)
c.FileContentsManager.delete_to_trash = False

_hashed = os.environ.pop("LABOPS_KIT_JUPYTER_HASHED_PASSWORD", "")
if _hashed:
    c.PasswordIdentityProvider.hashed_password = _hashed
    # A password is the only way in: no token, and no changing it from the login page.
    c.IdentityProvider.token = ""
    c.PasswordIdentityProvider.allow_password_change = False

# On `docker stop` the server shuts its kernels down before it exits. A kernel gets 3 s
# (Jupyter's default: 5 s) to go by itself before it is killed, so that a server with
# kernels still stops within Docker's 10 s on a loaded machine.
c.KernelManager.shutdown_wait_time = 3.0
