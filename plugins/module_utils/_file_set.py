# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Folders and small files of one project, made what they should be in one pass.

Private to this collection (leading underscore). Pure Python, no Ansible imports, so it is
unit-tested directly; the module ``file_set`` is its Ansible face.

Why: a role that writes a dozen configuration files with ``template``/``copy``/``file`` pays
two or three module runs per file on every run (``stat``, then ``file`` to check attributes),
each of which starts Python on the host and compiles Ansible's module code again. Here one run
compares every folder and file and writes only what differs, each file through ``AtomicFile``
(created with its final mode, then renamed), so a run with nothing to change costs one
module run however many files a project has.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import stat

from ansible_collections.labops.services.plugins.module_utils._atomic_file import AtomicFile


class FileSetError(Exception):
    """A folder or file that cannot be made as asked (the message names it)."""


def _mode(value, default):
    if value is None or value == '':
        return default
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        raise FileSetError('mode %r is not an octal number like "0644"' % (value,))


def _account_id(name, database, what):
    """A uid or gid from a name or a number (None: leave it as it is)."""
    if name is None or name == '':
        return None
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    try:
        return database(name)[2]
    except KeyError:
        raise FileSetError('no %s %r on this host' % (what, name))


def _uid(owner):
    return _account_id(owner, pwd.getpwnam, 'user')


def _gid(group):
    return _account_id(group, grp.getgrnam, 'group')


def _lstat(path, is_kind, kind):
    """The path's lstat, None when it does not exist; refuses another kind (a symlink too)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not is_kind(info.st_mode):
        raise FileSetError('%s exists and is not %s' % (path, kind))
    return info


class Entry(object):
    """One wanted folder or file: its path, mode and owner; a file's content and secrecy."""

    def __init__(self, spec, kind, secret=False):
        self.kind = kind
        self.path = spec['path'] if kind == 'directory' else spec['dest']
        if not os.path.isabs(self.path):
            raise FileSetError('%s must be an absolute path' % (self.path,))
        self.mode = _mode(spec.get('mode'), 0o755 if kind == 'directory' else (0o600 if secret else 0o644))
        self.uid = _uid(spec.get('owner'))
        self.gid = _gid(spec.get('group'))
        self.secret = secret
        self.validate = spec.get('validate') or None
        if self.validate and '%s' not in self.validate:
            raise FileSetError('validate of %s must contain %%s (the candidate file)' % self.path)
        content = spec.get('content')
        self.content = None if content is None else (content if isinstance(content, bytes) else content.encode('utf-8'))


class FileSet(object):
    """Compare entries with the host and (unless ``check``) make them so.

    ``apply()`` returns a list of change records, one per entry that differed:
    ``{'path', 'kind', 'created', 'content', 'mode', 'owner', 'before', 'after', 'secret'}``
    (``before``/``after`` only for a non-secret file whose content changed).
    Folders come first, in the order given, so files may live in folders made in the same run;
    then the secret files (a compose file's ``validate`` reads the ``.env`` beside it), then the others.
    Nothing is removed: an entry no longer listed is left alone.
    """

    def __init__(self, directories=(), files=(), secret_files=(), check=False, run_validate=None):
        self.entries = [Entry(spec, 'directory') for spec in directories]
        self.entries += [Entry(spec, 'file', secret=True) for spec in secret_files]
        self.entries += [Entry(spec, 'file') for spec in files]
        paths = [entry.path for entry in self.entries]
        duplicates = sorted(set(path for path in paths if paths.count(path) > 1))
        if duplicates:
            raise FileSetError('listed more than once: %s' % ', '.join(duplicates))
        self.check = check
        # run_validate(command_with_%s, candidate_path) -> (rc, output): a file with ``validate``
        # replaces the live one only when the command accepts the candidate (rc 0).
        self.run_validate = run_validate

    def apply(self):
        changes = []
        for entry in self.entries:
            change = self._directory(entry) if entry.kind == 'directory' else self._file(entry)
            if change:
                changes.append(change)
        return changes

    # -- folders -----------------------------------------------------------------------------
    def _directory(self, entry):
        info = _lstat(entry.path, stat.S_ISDIR, 'a folder')
        change = self._record(entry, info)
        if change and not self.check:
            if info is None:
                parent = os.path.dirname(entry.path)
                if not os.path.isdir(parent) and parent != entry.path:
                    os.makedirs(parent, 0o755)
                os.mkdir(entry.path, entry.mode)
            self._set_attributes(entry)
        return change

    # -- files ---------------------------------------------------------------------------------
    def _file(self, entry):
        if entry.content is None:
            raise FileSetError('%s has no content' % entry.path)
        info = _lstat(entry.path, stat.S_ISREG, 'a regular file')
        before = None
        if info is not None:
            with open(entry.path, 'rb') as handle:
                before = handle.read()
        change = self._record(entry, info, content_differs=before != entry.content)
        if not change:
            return None
        if not entry.secret and change['content']:
            change['before'] = '' if before is None else before.decode('utf-8', 'replace')
            change['after'] = entry.content.decode('utf-8', 'replace')
        if self.check:
            return change
        if change['content'] or info is None:
            if not os.path.isdir(os.path.dirname(entry.path)):
                raise FileSetError('the folder of %s does not exist (list it under directories)' % entry.path)
            # The new file gets its final mode and owner before a byte is written, then replaces
            # the old one in one rename: a reader sees the old file or the new one, never half.
            with AtomicFile(entry.path, mode=entry.mode) as out:
                if entry.uid is not None or entry.gid is not None:
                    os.chown(out.tmp_path, -1 if entry.uid is None else entry.uid, -1 if entry.gid is None else entry.gid)
                    os.chmod(out.tmp_path, entry.mode)   # chown may clear set-id bits
                out.write(entry.content)
                if entry.validate:
                    out.file.flush()
                    rc, output = self.run_validate(entry.validate, out.tmp_path)
                    if rc != 0:
                        raise FileSetError('%s failed to validate and was not written: %s refused it (rc=%s): %s'
                                           % (entry.path, entry.validate.split()[0], rc, output.strip()))
                out.commit()
        else:
            self._set_attributes(entry)
        return change

    # -- shared ----------------------------------------------------------------------------------
    def _record(self, entry, info, content_differs=False):
        if info is None:
            return {'path': entry.path, 'kind': entry.kind, 'created': True, 'content': entry.kind == 'file',
                    'mode': True, 'owner': True, 'secret': entry.secret}
        mode_differs = stat.S_IMODE(info.st_mode) != entry.mode
        owner_differs = ((entry.uid is not None and info.st_uid != entry.uid)
                         or (entry.gid is not None and info.st_gid != entry.gid))
        if not (content_differs or mode_differs or owner_differs):
            return None
        return {'path': entry.path, 'kind': entry.kind, 'created': False, 'content': content_differs,
                'mode': mode_differs, 'owner': owner_differs, 'secret': entry.secret}

    @staticmethod
    def _set_attributes(entry):
        if entry.uid is not None or entry.gid is not None:
            os.lchown(entry.path, -1 if entry.uid is None else entry.uid, -1 if entry.gid is None else entry.gid)
        os.chmod(entry.path, entry.mode)
