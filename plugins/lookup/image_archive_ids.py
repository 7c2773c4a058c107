# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: image_archive_ids
short_description: Image IDs held by docker save archives on the controller
version_added: 0.1.0
author: labops.services developers (!UNKNOWN)
description:
  - Reads C(manifest.json) of each C(docker save) archive and returns a mapping of repo tag to
    image ID (C(sha256:...)), without loading anything.
  - The compose_stack role compares it with C(docker image inspect) on a host to load an archive
    only when the host lacks that image ID.
options:
  _terms:
    description: Paths of image archives on the controller (C(.tar), C(.tar.gz)).
    required: true
    type: list
    elements: path
'''

EXAMPLES = r'''
---
- name: Show which images an archive holds
  ansible.builtin.debug:
    msg: "{{ lookup('labops.services.image_archive_ids', 'images/postgres-17.tar') }}"
'''

RETURN = r'''
_raw:
  description: One mapping per archive, repo tag to image ID.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.labops.services.plugins.module_utils._image_archive import (
    ImageArchiveError,
    read_image_ids,
)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        result = []
        for term in terms:
            path = self.find_file_in_search_path(variables, 'files', term, ignore_missing=True) or term
            try:
                result.append(read_image_ids(path))
            except ImageArchiveError as exc:
                raise AnsibleLookupError(to_native(exc))
        return result
