"""WSGI entry point for Apache's mod_wsgi: alyx-local's own alyx.base.wsgi with this
image's settings module."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labops_alyx_settings")

from alyx.base.wsgi import application  # noqa: E402

__all__ = ["application"]
