# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read which images a ``docker save`` archive holds, without loading it.

A ``docker save`` tarball (Docker's classic layout and the OCI layout Docker 25+ writes) has a
``manifest.json`` listing, per image, its config blob and its repo tags. The image ID Docker
shows after ``docker load`` is ``sha256:`` + the digest of that config blob, so comparing it
with ``docker image inspect`` on a host tells whether the host already has that very image.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import tarfile


class ImageArchiveError(Exception):
    pass


_DIGEST = re.compile(r'(?:^|/)(?:sha256/)?([0-9a-f]{64})(?:\.json)?$')


def read_image_ids(path):
    """Return ``{repo_tag: image_id}`` for every tagged image in the archive at ``path``."""
    if not os.path.isfile(path):
        raise ImageArchiveError('image archive %s not found' % path)
    try:
        with tarfile.open(path, 'r:*') as archive:
            try:
                member = archive.getmember('manifest.json')
            except KeyError:
                raise ImageArchiveError('%s is not a docker save archive: no manifest.json' % path)
            handle = archive.extractfile(member)
            manifest = json.loads(handle.read().decode('utf-8'))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ImageArchiveError('cannot read image archive %s: %s' % (path, exc))
    except ValueError as exc:
        raise ImageArchiveError('manifest.json of %s is not valid JSON: %s' % (path, exc))

    result = {}
    for entry in manifest:
        match = _DIGEST.search(entry.get('Config', ''))
        if not match:
            raise ImageArchiveError('%s: unexpected config reference %r in manifest.json' % (path, entry.get('Config')))
        for tag in entry.get('RepoTags') or []:
            result[tag] = 'sha256:' + match.group(1)
    if not result:
        raise ImageArchiveError('%s holds no tagged image (save it with `docker save NAME:TAG`)' % path)
    return result
