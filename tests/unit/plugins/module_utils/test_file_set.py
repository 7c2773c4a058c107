# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""file_set: folders and files compared with the disk, written only when they differ, never half."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.labops.services.plugins.module_utils._file_set import FileSet, FileSetError

ME = os.getuid()


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def _project(tmp_path, env='PASSWORD=labops-test-secret\n', conf='listen 80;\n'):
    root = str(tmp_path / 'demo')
    return dict(
        directories=[{'path': root, 'mode': '0750'}, {'path': root + '/conf', 'mode': '0755', 'owner': ME}],
        files=[{'dest': root + '/conf/app.conf', 'content': conf}],
        secret_files=[{'dest': root + '/.env', 'content': env, 'owner': str(ME)}],
    )


def test_first_run_creates_everything_with_its_mode(tmp_path):
    changes = FileSet(**_project(tmp_path)).apply()
    root = str(tmp_path / 'demo')
    assert [c['path'] for c in changes] == [root, root + '/conf', root + '/.env', root + '/conf/app.conf']
    assert all(c['created'] for c in changes)
    assert _mode(root) == 0o750 and _mode(root + '/conf') == 0o755
    assert _mode(root + '/conf/app.conf') == 0o644 and _mode(root + '/.env') == 0o600
    with open(root + '/.env') as handle:
        assert handle.read() == 'PASSWORD=labops-test-secret\n'


def test_second_run_changes_nothing(tmp_path):
    FileSet(**_project(tmp_path)).apply()
    assert FileSet(**_project(tmp_path)).apply() == []


def test_a_changed_file_is_replaced_and_reported_with_its_diff(tmp_path):
    FileSet(**_project(tmp_path)).apply()
    path = str(tmp_path / 'demo' / 'conf' / 'app.conf')
    inode = os.stat(path).st_ino
    changes = FileSet(**_project(tmp_path, conf='listen 8080;\n')).apply()
    assert [(c['path'], c['content'], c['mode']) for c in changes] == [(path, True, False)]
    assert changes[0]['before'] == 'listen 80;\n' and changes[0]['after'] == 'listen 8080;\n'
    assert os.stat(path).st_ino != inode, 'a new file renamed over the old one, not rewritten in place'
    with open(path) as handle:
        assert handle.read() == 'listen 8080;\n'


def test_a_secret_change_is_reported_without_its_content(tmp_path):
    FileSet(**_project(tmp_path)).apply()
    changes = FileSet(**_project(tmp_path, env='PASSWORD=labops-test-secret-2\n')).apply()
    assert len(changes) == 1 and changes[0]['secret'] and changes[0]['content']
    assert 'before' not in changes[0] and 'after' not in changes[0]
    assert 'labops-test-secret' not in repr(changes)


def test_a_wrong_mode_alone_is_corrected_in_place(tmp_path):
    FileSet(**_project(tmp_path)).apply()
    env = str(tmp_path / 'demo' / '.env')
    os.chmod(env, 0o644)
    inode = os.stat(env).st_ino
    changes = FileSet(**_project(tmp_path)).apply()
    assert [(c['path'], c['content'], c['mode']) for c in changes] == [(env, False, True)]
    assert _mode(env) == 0o600 and os.stat(env).st_ino == inode


def test_check_mode_reports_and_writes_nothing(tmp_path):
    changes = FileSet(check=True, **_project(tmp_path)).apply()
    assert len(changes) == 4
    assert not os.path.exists(str(tmp_path / 'demo'))
    FileSet(**_project(tmp_path)).apply()
    changes = FileSet(check=True, **_project(tmp_path, conf='new\n')).apply()
    assert [c['path'] for c in changes] == [str(tmp_path / 'demo' / 'conf' / 'app.conf')]
    with open(str(tmp_path / 'demo' / 'conf' / 'app.conf')) as handle:
        assert handle.read() == 'listen 80;\n'


def test_nothing_listed_is_removed(tmp_path):
    FileSet(**_project(tmp_path)).apply()
    extra = str(tmp_path / 'demo' / 'conf' / 'kept.conf')
    with open(extra, 'w') as handle:
        handle.write('mine\n')
    assert FileSet(**_project(tmp_path)).apply() == []
    assert os.path.exists(extra)


@pytest.mark.parametrize('spec, message', [
    (dict(files=[{'dest': 'relative/file', 'content': 'x'}]), 'absolute path'),
    (dict(files=[{'dest': '/nonexistent-labops/dir/file', 'content': 'x'}]), 'does not exist'),
    (dict(directories=[{'path': '/tmp', 'owner': 'no-such-user-labops'}]), "no user 'no-such-user-labops'"),
    (dict(directories=[{'path': '/tmp', 'mode': 'rw-r--r--'}]), 'octal'),
    (dict(files=[{'dest': '/x/a', 'content': 'x'}], secret_files=[{'dest': '/x/a', 'content': 'y'}]), 'more than once'),
])
def test_refusals_name_what_to_fix(spec, message):
    with pytest.raises(FileSetError, match=message):
        FileSet(**spec).apply()


def test_a_symlink_is_refused_not_followed(tmp_path):
    target = tmp_path / 'target'
    target.write_text('keep\n')
    link = tmp_path / 'link'
    os.symlink(str(target), str(link))
    with pytest.raises(FileSetError, match='not a regular file'):
        FileSet(files=[{'dest': str(link), 'content': 'new\n'}]).apply()
    assert target.read_text() == 'keep\n'


def test_validate_runs_on_the_candidate_and_a_refusal_keeps_the_live_file(tmp_path):
    dest = str(tmp_path / 'nginx.conf')
    seen = []

    def run(command, path):
        seen.append((command, path != dest))
        with open(path) as handle:
            return (0, '') if 'good' in handle.read() else (1, 'syntax error in line 1')

    spec = {'dest': dest, 'content': 'good\n', 'validate': 'nginx -t -c %s'}
    FileSet(files=[spec], run_validate=run).apply()
    assert seen == [('nginx -t -c %s', True)]
    assert FileSet(files=[spec], run_validate=run).apply() == [] and len(seen) == 1, 'no change: not run again'
    with pytest.raises(FileSetError, match='failed to validate and was not written: nginx refused it .rc=1.: syntax error'):
        FileSet(files=[dict(spec, content='bad\n')], run_validate=run).apply()
    with open(dest) as handle:
        assert handle.read() == 'good\n'
    assert os.listdir(str(tmp_path)) == ['nginx.conf'], 'the refused candidate is removed'
