# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The datalab images' own code: the API's invoke tasks (tasks.py) and the stand-in app's server."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TASKS = os.path.join(ROOT, 'roles', 'datalab', 'files', 'api-image', 'tasks.py')
SERVE = os.path.join(ROOT, 'tests', 'images', 'kit', 'datalab-app', 'serve.py')


def load(name, path, monkeypatch, modules=None):
    for module_name, module in (modules or {}).items():
        monkeypatch.setitem(sys.modules, module_name, module)
    # No __pycache__ beside the sources: build.sh hashes every file of an image's folder.
    monkeypatch.setattr(sys, 'dont_write_bytecode', True)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_invoke():
    """invoke as tasks.py uses it: @task returns the function; Collection records its tasks."""
    module = types.ModuleType('invoke')

    class Collection(object):
        def __init__(self, *args):
            self.name = args[0] if args and isinstance(args[0], str) else None
            self.tasks = [a for a in args if callable(a)]
            self.collections = []

        def add_collection(self, collection):
            self.collections.append(collection)

    module.Collection = Collection
    module.task = lambda **kwargs: (lambda function: function)
    return module


@pytest.fixture
def datalab(monkeypatch, tmp_path):
    """tasks.py with a fake invoke and a fake pydatalab whose file store is tmp_path/files."""
    config = types.SimpleNamespace(FILE_DIRECTORY=str(tmp_path / 'files'),
                                   MONGO_URI='mongodb://database:27017/datalabvue', BACKUP_STRATEGIES={})
    pydatalab = types.ModuleType('pydatalab')
    pydatalab_config = types.ModuleType('pydatalab.config')
    pydatalab_config.CONFIG = config
    (tmp_path / 'files').mkdir()
    tasks = load('labops_datalab_tasks', TASKS, monkeypatch,
                 {'invoke': fake_invoke(), 'pydatalab': pydatalab, 'pydatalab.config': pydatalab_config})
    calls = []

    def run(argv, check):
        calls.append(argv)
        restored = os.path.join(argv[-1], 'items.bson')
        assert os.path.isfile(restored), 'mongorestore must get the extracted dump folder'
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(tasks.subprocess, 'run', run)
    return types.SimpleNamespace(tasks=tasks, config=config, calls=calls, root=tmp_path)


def add(tar, name, data=None, kind=tarfile.REGTYPE, link=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    if data is not None:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    else:
        if kind == tarfile.DIRTYPE:
            info.mode = 0o755
        tar.addfile(info)


def snapshot(path, extra=()):
    """A snapshot shaped as pydatalab's take_snapshot() writes it."""
    with tarfile.open(str(path), 'w:gz') as tar:
        add(tar, 'files/drill', kind=tarfile.DIRTYPE)
        add(tar, 'files/drill/sample.bin', b'sample bytes')
        add(tar, 'files/top.txt', b'top')
        add(tar, 'mongodb', kind=tarfile.DIRTYPE)
        add(tar, 'mongodb/items.bson', b'\x05\x00\x00\x00\x00')
        add(tar, 'config/config.json', b'')
        for item in extra:
            add(tar, *item[:2], **item[2] if len(item) > 2 else {})
    return str(path)


def answer(monkeypatch, text):
    monkeypatch.setattr(sys, 'stdin', io.StringIO(text))


def test_tasks_are_under_admin(datalab):
    namespace = datalab.tasks.namespace
    admin = namespace.collections[0]
    assert admin.name == 'admin'
    assert [t.__name__ for t in admin.tasks] == ['create_backup', 'restore_backup']


def test_restore_puts_files_where_the_snapshot_took_them(datalab, monkeypatch):
    path = snapshot(datalab.root / 'snap.tar.gz')
    answer(monkeypatch, 'y\ny\n')
    datalab.tasks.restore_backup(None, path)
    files = datalab.root / 'files'
    assert (files / 'drill' / 'sample.bin').read_bytes() == b'sample bytes'
    assert (files / 'top.txt').read_bytes() == b'top'
    # Not upstream 0.7.12's FILE_DIRECTORY/files/... nesting.
    assert not (files / 'files').exists()
    assert datalab.calls[0][:3] == ['mongorestore', 'mongodb://database:27017/datalabvue', '--drop']


@pytest.mark.parametrize('answers', ['', 'n\n', 'y\nn\n', 'yes\n\n'])
def test_restore_changes_nothing_unless_confirmed_twice(datalab, monkeypatch, answers):
    path = snapshot(datalab.root / 'snap.tar.gz')
    answer(monkeypatch, answers)
    with pytest.raises(SystemExit) as exited:
        datalab.tasks.restore_backup(None, path)
    assert 'Not confirmed' in str(exited.value)
    assert datalab.calls == [] and list((datalab.root / 'files').iterdir()) == []


@pytest.mark.parametrize('member', [
    ('files/../../escape.txt', b'x'),
    ('files/drill/link', None, {'kind': tarfile.SYMTYPE, 'link': '/etc/passwd'}),
])
def test_restore_refuses_members_outside_the_file_store(datalab, monkeypatch, member):
    path = snapshot(datalab.root / 'snap.tar.gz', extra=[member])
    answer(monkeypatch, 'y\ny\n')
    with pytest.raises(SystemExit) as exited:
        datalab.tasks.restore_backup(None, path)
    assert 'Refusing snapshot member' in str(exited.value)
    assert datalab.calls == [] and not (datalab.root / 'escape.txt').exists()


def test_restore_refuses_a_tar_without_a_database_dump(datalab, monkeypatch):
    path = datalab.root / 'other.tar.gz'
    with tarfile.open(str(path), 'w:gz') as tar:
        add(tar, 'files/a.txt', b'a')
    answer(monkeypatch, 'y\ny\n')
    with pytest.raises(SystemExit) as exited:
        datalab.tasks.restore_backup(None, str(path))
    assert 'not a datalab snapshot' in str(exited.value)
    assert list((datalab.root / 'files').iterdir()) == []


def test_create_backup_names_the_known_strategies(datalab, monkeypatch):
    backups = types.ModuleType('pydatalab.backups')
    made = []
    backups.create_backup = lambda strategy: made.append(strategy) or True
    monkeypatch.setitem(sys.modules, 'pydatalab.backups', backups)
    datalab.config.BACKUP_STRATEGIES = {'daily-snapshots': 'daily', 'weekly-snapshots': 'weekly'}
    datalab.tasks.create_backup(None, 'weekly-snapshots')
    assert made == ['weekly']
    with pytest.raises(SystemExit) as exited:
        datalab.tasks.create_backup(None, 'hourly')
    assert "No backup strategy 'hourly'" in str(exited.value) and 'daily-snapshots, weekly-snapshots' in str(exited.value)


def test_app_config_from_the_environment(monkeypatch):
    serve = load('labops_datalab_serve', SERVE, monkeypatch)
    script = serve.config_script({'VUE_APP_API_URL': 'https://datalab-api.lab.example', 'OTHER': 'x'}).decode()
    assert script.startswith('window.DATALAB_CONFIG = ') and script.endswith(';\n')
    values = json.loads(script[len('window.DATALAB_CONFIG = '):-2])
    assert values == {'VUE_APP_API_URL': 'https://datalab-api.lab.example', 'VUE_APP_EDITABLE_INVENTORY': '',
                      'VUE_APP_HOMEPAGE_URL': '', 'VUE_APP_LOGO_URL': ''}


@pytest.mark.parametrize('environ', [{}, {'VUE_APP_API_URL': ''}, {'VUE_APP_API_URL': 'datalab-api:5001'}])
def test_app_refuses_to_start_without_an_api_url(monkeypatch, environ):
    serve = load('labops_datalab_serve', SERVE, monkeypatch)
    with pytest.raises(SystemExit) as exited:
        serve.config_script(environ)
    assert 'VUE_APP_API_URL' in str(exited.value)
