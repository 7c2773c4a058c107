# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import tarfile

import pytest

from ansible_collections.labops.services.plugins.module_utils._image_archive import (
    ImageArchiveError,
    read_image_ids,
)

DIGEST_A = 'a' * 64
DIGEST_B = '0123456789abcdef' * 4


def make_archive(path, manifest, compress=False):
    data = json.dumps(manifest).encode()
    with tarfile.open(str(path), 'w:gz' if compress else 'w') as archive:
        info = tarfile.TarInfo('manifest.json')
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return str(path)


def test_classic_docker_save_layout(tmp_path):
    path = make_archive(tmp_path / 'a.tar', [
        {'Config': DIGEST_A + '.json', 'RepoTags': ['postgres:17', 'postgres:latest'], 'Layers': []}])
    assert read_image_ids(path) == {'postgres:17': 'sha256:' + DIGEST_A, 'postgres:latest': 'sha256:' + DIGEST_A}


def test_oci_layout_several_images_gzip(tmp_path):
    path = make_archive(tmp_path / 'b.tar.gz', [
        {'Config': 'blobs/sha256/' + DIGEST_A, 'RepoTags': ['nginx:1']},
        {'Config': 'blobs/sha256/' + DIGEST_B, 'RepoTags': ['mysql:8.0']},
    ], compress=True)
    assert read_image_ids(path) == {'nginx:1': 'sha256:' + DIGEST_A, 'mysql:8.0': 'sha256:' + DIGEST_B}


@pytest.mark.parametrize('content, message', [
    (None, 'not found'),
    (b'not a tar at all', 'cannot read image archive'),
])
def test_unreadable_archives(tmp_path, content, message):
    path = tmp_path / 'x.tar'
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageArchiveError, match=message):
        read_image_ids(str(path))


def test_archive_without_manifest(tmp_path):
    path = tmp_path / 'empty.tar'
    with tarfile.open(str(path), 'w'):
        pass
    with pytest.raises(ImageArchiveError, match='no manifest.json'):
        read_image_ids(str(path))


def test_untagged_image_is_refused(tmp_path):
    path = make_archive(tmp_path / 'c.tar', [{'Config': DIGEST_A + '.json', 'RepoTags': None}])
    with pytest.raises(ImageArchiveError, match='no tagged image'):
        read_image_ids(path)


def test_unexpected_config_reference(tmp_path):
    path = make_archive(tmp_path / 'd.tar', [{'Config': 'weird', 'RepoTags': ['x:1']}])
    with pytest.raises(ImageArchiveError, match='unexpected config reference'):
        read_image_ids(path)
