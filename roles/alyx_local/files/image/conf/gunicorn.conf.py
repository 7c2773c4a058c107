# gunicorn settings of the alyx-local flavour (alyx-gunicorn): upstream binds 0.0.0.0:8000
# with 3 workers; its `reload` (a development convenience) is left out.
import os

bind = f"0.0.0.0:{os.environ.get('ALYX_PORT', '8000')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
accesslog = "-"
errorlog = "-"
