# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's ``main()`` in-process, the way community.internal_test_tools does; import a role's
host program.

    result = run_module(sql_dump_fetch, {'url': ..., 'dest': ...})          # exit_json
    result = run_module(sql_dump_fetch, {...}, expect_failure=True)         # fail_json
    result['changed'], result['msg']
    lb = load_program(path_to('backup', 'labops_backup.py'))              # roles/backup/files/...
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import importlib.util
import json
import os

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # pragma: no cover - older ansible-core
    @contextlib.contextmanager
    def patch_module_args(args):
        with mock.patch.object(basic, '_ANSIBLE_ARGS', to_bytes(json.dumps({'ANSIBLE_MODULE_ARGS': args}))):
            yield


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super(ModuleExit, self).__init__(result.get('msg', ''))
        self.result = result
        self.failed = failed


def _exit_json(self, **kwargs):
    kwargs.setdefault('changed', False)
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs['failed'] = True
    kwargs['msg'] = msg
    raise ModuleExit(kwargs, failed=True)


def run_module(module, args, check_mode=False, diff=False, expect_failure=False):
    """Call ``module.main()`` with ``args``; return the result dict it exits with."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args):
        with mock.patch.multiple(basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json):
            try:
                module.main()
            except ModuleExit as exc:
                if exc.failed != expect_failure:
                    raise AssertionError('module %s unexpectedly: %r' % (
                        'failed' if exc.failed else 'succeeded', exc.result))
                return exc.result
    raise AssertionError('module did not call exit_json or fail_json')


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def path_to(role, name):
    """roles/<role>/files/<name>: a program the role installs on hosts (run as a subprocess too)."""
    return os.path.join(ROOT, 'roles', role, 'files', name)


def load_program(path):
    """Import a role's host program by path (it is not on sys.path); the module is named after the file."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
