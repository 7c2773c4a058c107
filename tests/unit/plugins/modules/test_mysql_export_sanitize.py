# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""End-to-end tests of the mysql_export_sanitize module's main()."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import os
import re
import stat

import pytest

from ansible_collections.labops.services.plugins.modules import mysql_export_sanitize

from ansible_collections.labops.services.tests.unit.utils import run_module

DUMP = b"".join([
    b"/*!40101 SET NAMES utf8mb4 */;\n",
    b"CREATE TABLE `session` (\n",
    b"  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'DEFAULT CHARSET=x stays',\n",
    b"  PRIMARY KEY (`nwb_file_name`)\n",
    b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;\n",
    b"INSERT INTO `session` VALUES ('a DEFAULT CHARSET=latin1 b'),('c\\' DEFAULT COLLATE d');\n",
    b"/*!50001 SET collation_connection      = utf8mb4_0900_ai_ci */;\n",
    b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n",
    b"/*!50001 VIEW `v` AS select `session`.`nwb_file_name` AS `n` from `session` */;\n",
])
ARGS = {
    'collation_map': {'utf8mb4_0900_ai_ci': 'utf8mb4_unicode_ci'},
    'strip_definer': True,
    'column_lengths': {'nwb_file_name': 64},
}
EXPECTED = (DUMP.replace(b"varchar(255) COLLATE utf8mb4_0900_ai_ci", b"varchar(64) COLLATE utf8mb4_unicode_ci")
            .replace(b") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;", b") ENGINE=InnoDB;")
            .replace(b"collation_connection      = utf8mb4_0900_ai_ci", b"collation_connection      = utf8mb4_unicode_ci")
            .replace(b"/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */", b"/*!50013 SQL SECURITY DEFINER */"))


def test_check_run_check_run(tmp_path):
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    args = dict(ARGS, path=str(src))

    result = run_module(mysql_export_sanitize, args, check_mode=True, diff=True)
    assert result['changed'] is True
    assert src.read_bytes() == DUMP
    assert 'DEFINER=`root`@`localhost`' in result['diff']['before']
    assert 'DEFINER' not in result['diff']['after'].replace('SQL SECURITY DEFINER', '')

    result = run_module(mysql_export_sanitize, args)
    assert result['changed'] is True
    assert result['dest'] == str(src)
    assert result['statements_changed'] == 3
    assert result['clauses_removed'] == {'charset': 1, 'collation': 1, 'definer': 1}
    assert result['collations_replaced'] == 2
    assert result['columns_shrunk'] == 1
    assert (result['bytes_in'], result['bytes_out']) == (len(DUMP), len(EXPECTED))
    assert result['backup_file'] is None
    assert 'diff' not in result
    assert src.read_bytes() == EXPECTED

    result = run_module(mysql_export_sanitize, args, check_mode=True)
    assert result['changed'] is False
    result = run_module(mysql_export_sanitize, args)
    assert result['changed'] is False and result['statements_changed'] == 0
    assert src.read_bytes() == EXPECTED


def test_dest_gz_with_mode_and_backup(tmp_path):
    src = tmp_path / 'dump.sql.gz'
    src.write_bytes(gzip.compress(DUMP))
    dest = tmp_path / 'out' / 'clean.sql.gz'
    dest.parent.mkdir()
    args = dict(ARGS, path=str(src), dest=str(dest), mode='0640', backup=True)

    result = run_module(mysql_export_sanitize, args, check_mode=True)
    assert result['changed'] is True and not dest.exists()
    result = run_module(mysql_export_sanitize, args)
    assert result['changed'] is True and result['dest'] == str(dest)
    assert result['backup_file'] is None  # there was nothing to back up
    assert gzip.decompress(dest.read_bytes()) == EXPECTED
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o640
    assert gzip.decompress(src.read_bytes()) == DUMP

    # the mode alone changes: reported as a change, content untouched
    result = run_module(mysql_export_sanitize, dict(args, mode='0600'))
    assert result['changed'] is True and result['statements_changed'] == 3
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o600
    result = run_module(mysql_export_sanitize, dict(args, mode='0600'))
    assert result['changed'] is False

    # a stale dest is backed up before it is replaced
    dest.write_bytes(gzip.compress(b"SELECT 'old';\n"))
    result = run_module(mysql_export_sanitize, dict(args, mode='0600'))
    assert result['changed'] is True
    assert gzip.decompress(open(result['backup_file'], 'rb').read()) == b"SELECT 'old';\n"
    assert gzip.decompress(dest.read_bytes()) == EXPECTED


def test_in_place_backup(tmp_path):
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    result = run_module(mysql_export_sanitize, dict(ARGS, path=str(src), backup=True))
    assert result['changed'] is True
    assert os.path.dirname(result['backup_file']) == str(tmp_path)
    assert open(result['backup_file'], 'rb').read() == DUMP
    assert src.read_bytes() == EXPECTED


@pytest.mark.parametrize('args, message', [
    ({'path': 'missing.sql'}, r'cannot read .*missing\.sql: no such file'),
    ({'path': '.'}, r' is a directory, not a \.sql or \.sql\.gz file'),
    ({'path': 'dump.sql', 'collation_map': {'a b': 'c'}}, r"collation_map: 'a b' is not a collation name"),
    ({'path': 'dump.sql', 'column_lengths': {'nwb_file_name': -1}}, r"column_lengths: the length for column 'nwb_file_name'"),
    ({'path': 'broken.sql'}, r"unterminated string literal starting at byte 22 \(line 1\) of .*broken\.sql"),
    ({'path': 'dump.sql', 'dest': 'nowhere/x.sql'}, r"cannot write .*nowhere/x\.sql: directory .*nowhere does not exist"),
])
def test_failures(tmp_path, args, message):
    (tmp_path / 'dump.sql').write_bytes(DUMP)
    (tmp_path / 'broken.sql').write_bytes(b"INSERT INTO t VALUES ('oops);\n")
    args = dict(args)
    args['path'] = str(tmp_path / args['path'])
    if 'dest' in args:
        args['dest'] = str(tmp_path / args['dest'])
    result = run_module(mysql_export_sanitize, args, expect_failure=True)
    assert result['failed'] is True
    assert re.search(message, result['msg']), result['msg']
    assert result['path'] == args['path']
    assert result['dest'] == args.get('dest', args['path'])
    assert (tmp_path / 'dump.sql').read_bytes() == DUMP
    assert sorted(os.listdir(str(tmp_path))) == ['broken.sql', 'dump.sql']
