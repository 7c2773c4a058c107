# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One way to write a file: a temp file beside the destination, atomically renamed.

Private to this collection (leading underscore). Pure Python, no Ansible imports, so
it is unit-tested directly.

Why not ``AnsibleModule.atomic_move`` alone: when the destination does not exist yet,
``atomic_move`` chmods the new file to ``0666 & ~umask`` after the rename, so a private
key would be world-readable until the module sets its mode. Here the temp file is
created with its final mode before a byte is written (``O_EXCL``, mode forced past the
umask), and the rename keeps that mode. Modules then apply owner/group/SELinux with
``set_fs_attributes_if_different``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


class AtomicFile(object):
    """A binary file written beside ``dest`` and renamed over it on ``commit()``.

    Use as a context manager: leaving the block with an exception (or without calling
    ``commit()``) removes the temp file and leaves ``dest`` exactly as it was.

    >>> with AtomicFile('/etc/x.conf', mode=0o640) as out:
    ...     out.write(b'data')
    ...     out.commit()
    """

    def __init__(self, dest, mode=0o600, prefix=None):
        self.dest = dest
        self.mode = mode
        directory = os.path.dirname(os.path.abspath(dest)) or '.'
        fd, self.tmp_path = tempfile.mkstemp(
            prefix=prefix or ('.%s.' % os.path.basename(dest)), suffix='.tmp', dir=directory)
        try:
            # mkstemp creates 0600; set the final mode before any content exists.
            os.fchmod(fd, mode)
            self.file = os.fdopen(fd, 'wb')
        except Exception:
            os.close(fd)
            os.unlink(self.tmp_path)
            raise
        self.committed = False

    def write(self, data):
        return self.file.write(data)

    def commit(self):
        """Flush to disk and rename over ``dest``; returns ``dest``."""
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp_path, self.dest)
        self.committed = True
        _fsync_directory(os.path.dirname(os.path.abspath(self.dest)))
        return self.dest

    def abort(self):
        if not self.file.closed:
            self.file.close()
        if not self.committed and os.path.exists(self.tmp_path):
            os.unlink(self.tmp_path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.abort()
        return False


def write_bytes_atomic(dest, data, mode=0o600):
    """Write ``data`` to ``dest`` atomically with ``mode``; returns ``dest``."""
    with AtomicFile(dest, mode=mode) as out:
        out.write(data)
        return out.commit()


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
