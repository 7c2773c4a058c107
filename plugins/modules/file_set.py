#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: file_set
short_description: Make a project's folders and small files what they should be, in one module run
version_added: 0.1.0
description:
  - Takes every folder (path, owner, group, mode) and every file (destination, content, owner, group, mode) of one
    project and, in a single run on the host, writes only those that differ.
  - The same result as one M(ansible.builtin.file) task per folder and one M(ansible.builtin.copy) task per file,
    for a fraction of the time when nothing changed - each of those costs one or two module runs per item, this
    costs one in all. Render templates on the controller first (C(lookup('ansible.builtin.template', ...))).
  - A file is written to a temporary file beside it, created with its final mode and owner before any content,
    then renamed over the old one, so a reader never sees half a file and a secret is never readable by anyone else.
  - Folders are handled first, in the order given, so files may go into folders made in the same run. Missing
    parent folders of a listed folder are created (mode 0755, owned by root). Then the files of O(secret_files),
    then those of O(files), each in the order given, so a validation may read a secret file written before it.
  - Nothing is removed. A file or folder no longer listed stays as it is.
  - Files in O(secret_files) never appear in the result or the diff, only their paths and what changed
    (content, mode, owner).
author:
  - labops.services developers (!UNKNOWN)
extends_documentation_fragment:
  - labops.services.attributes
  - labops.services.attributes.files
attributes:
  check_mode:
    support: full
    details:
      - Reports which folders and files would be created or changed, and writes nothing.
  diff_mode:
    support: full
    details:
      - One diff per changed file of O(files), with its old and new content. For a file of O(secret_files), only
        its path and what changed, never its content.
  idempotent:
    support: full
options:
  directories:
    description: Folders to create or correct.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the folder.
        type: path
        required: true
      owner:
        description: User name or uid. Unset leaves the owner as it is (root for a new folder).
        type: raw
      group:
        description: Group name or gid. Unset leaves the group as it is.
        type: raw
      mode:
        description: Octal mode such as V("0750").
        type: raw
        default: "0755"
  files:
    description: Files whose content may be shown in the diff.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file. Its folder must exist or be listed in O(directories).
        type: path
        required: true
      content:
        description: The whole content of the file (text).
        type: str
        required: true
      owner:
        description: User name or uid.
        type: raw
      group:
        description: Group name or gid.
        type: raw
      mode:
        description: Octal mode.
        type: raw
        default: "0644"
      validate:
        description:
          - A command that checks the new content before it replaces the file, with V(%s) standing for the candidate
            (a temporary file beside the destination, already with its final mode and owner). Run only when the
            content changed. When it fails nothing is replaced and the task fails with the command's output.
          - Run without a shell, like the O(ansible.builtin.template#module:validate) option.
        type: str
  secret_files:
    description: Files holding secrets. Their content is never returned or shown.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      owner:
        description: User name or uid.
        type: raw
      group:
        description: Group name or gid.
        type: raw
      mode:
        description: Octal mode.
        type: raw
        default: "0600"
notes:
  - Symlinks are refused, not followed. Only regular files and folders are managed.
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.file
'''

EXAMPLES = r'''
- name: Write the project's folders and configuration files in one run
  labops.services.file_set:
    directories:
      - {path: /opt/labops/demo, mode: "0750"}
      - {path: /opt/labops/demo/conf, mode: "0755"}
    files:
      - dest: /opt/labops/demo/conf/app.ini
        content: "{{ lookup('ansible.builtin.template', 'app.ini.j2') }}"
    secret_files:
      - dest: /opt/labops/demo/.env
        content: "{{ lookup('ansible.builtin.template', 'env.j2') }}"
  register: demo_files

- name: Restart the app when its configuration changed
  ansible.builtin.debug:
    msg: restart
  when: "'/opt/labops/demo/conf/app.ini' in demo_files.changed_paths"
'''

RETURN = r'''
changed_paths:
  description: The folders and files that were (or in check mode would be) created or changed.
  returned: always
  type: list
  elements: str
  sample: [/opt/labops/demo/conf/app.ini]
changes:
  description: One record per changed path, saying what changed. Never any content.
  returned: always
  type: list
  elements: dict
  sample: [{path: /opt/labops/demo/.env, kind: file, created: false, content: true, mode: false, owner: false,
            secret: true}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labops.services.plugins.module_utils._file_set import FileSet, FileSetError


def _attributes(mode_default):
    return dict(owner=dict(type='raw'), group=dict(type='raw'), mode=dict(type='raw', default=mode_default))


def _validate(module, command, path):
    rc, out, err = module.run_command(command % path)
    return rc, (out + err)[-2000:]


def main():
    file_options = dict(dest=dict(type='path', required=True), content=dict(type='str', required=True),
                        validate=dict(type='str'))
    secret_options = dict(dest=dict(type='path', required=True), content=dict(type='str', required=True, no_log=True))
    file_options.update(_attributes('0644'))
    secret_options.update(_attributes('0600'))
    directory_options = dict(path=dict(type='path', required=True))
    directory_options.update(_attributes('0755'))
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type='list', elements='dict', default=[], options=directory_options),
            files=dict(type='list', elements='dict', default=[], options=file_options),
            # Not secret itself (paths, modes, owners): its content suboption is.
            secret_files=dict(type='list', elements='dict', default=[], options=secret_options, no_log=False),
        ),
        supports_check_mode=True,
    )
    try:
        changes = FileSet(module.params['directories'], module.params['files'], module.params['secret_files'],
                          check=module.check_mode, run_validate=lambda command, path: _validate(module, command, path)).apply()
    except (FileSetError, OSError) as error:
        module.fail_json(msg='file_set: %s' % error)

    diffs = []
    for change in changes:
        what = [name for name in ('content', 'mode', 'owner') if change[name]]
        header = '%s (%s%s)' % (change['path'], 'created' if change['created'] else 'changed: ' + ', '.join(what),
                                ', secret: content not shown' if change['secret'] else '')
        diff = dict(before_header=header, after_header=header)
        diff['before'] = change.pop('before', '')
        diff['after'] = change.pop('after', '')
        if not diff['before'] and not diff['after']:
            diff['before'], diff['after'] = '', '%s\n' % header
        diffs.append(diff)
    module.exit_json(changed=bool(changes), changed_paths=[change['path'] for change in changes],
                     changes=changes, diff=diffs)


if __name__ == '__main__':
    main()
