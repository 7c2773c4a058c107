# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of the mysql_export_sanitize worker classes (no Ansible involved)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import os
import random
import re
import stat
import tracemalloc

import pytest

from ansible_collections.labops.services.plugins.module_utils import _mysql_export_sanitize as mes
from ansible_collections.labops.services.plugins.module_utils._mysql_export_sanitize import (
    MysqlExportSanitizer,
    SanitizeError,
    SanitizeOptions,
    StatementEditor,
)

MAP = {'utf8mb4_0900_ai_ci': 'utf8mb4_unicode_ci'}
NOTHING = dict(strip_charset=False, strip_collation=False)


def sanitize(tmp_path, data, name='dump.sql', chunk_size=mes.CHUNK_SIZE, check_mode=False, diff=False, **options):
    """Run the sanitizer on ``data``; returns (result, bytes of the result file)."""
    src = tmp_path / name
    if name.endswith('.gz'):
        src.write_bytes(gzip.compress(data))
    else:
        src.write_bytes(data)
    result = MysqlExportSanitizer(str(src), options=SanitizeOptions(**options), check_mode=check_mode,
                                  want_diff=diff, chunk_size=chunk_size).run()
    out = src.read_bytes()
    return result, gzip.decompress(out) if name.endswith('.gz') else out


def edit(stmt, **options):
    result = StatementEditor(SanitizeOptions(**options)).edit(stmt)
    return stmt if result is None else result[0]


# -- the editor: every option, and what it must leave alone -------------------------------

MYSQL8_TABLE = (b"CREATE TABLE `t` (\n"
                b"  `id` int NOT NULL AUTO_INCREMENT,\n"
                b"  `name` varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'x DEFAULT CHARSET=latin1',\n"
                b"  PRIMARY KEY (`id`)\n"
                b") ENGINE=InnoDB AUTO_INCREMENT=3 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci COMMENT='DEFAULT COLLATE x'")


@pytest.mark.parametrize('options, before, after', [
    # table-level options in all their spellings
    ({}, b"CREATE TABLE t (a int) ENGINE=InnoDB DEFAULT CHARSET=latin1", b"CREATE TABLE t (a int) ENGINE=InnoDB"),
    ({}, b"CREATE TABLE t (a int) DEFAULT CHARACTER SET = utf8 ENGINE=MyISAM", b"CREATE TABLE t (a int) ENGINE=MyISAM"),
    ({}, b"CREATE TABLE t (a int) CHARSET utf8mb4", b"CREATE TABLE t (a int)"),
    ({}, b"CREATE TABLE t (a int) CHAR SET=utf8mb4 COLLATE utf8mb4_bin", b"CREATE TABLE t (a int)"),
    ({}, b"create table t (a int) engine=InnoDB default charset=latin1 default collate=latin1_bin",
     b"create table t (a int) engine=InnoDB"),
    ({}, b"CREATE TABLE t (a int) DEFAULT CHARSET='latin1'", b"CREATE TABLE t (a int)"),
    ({}, b"CREATE TABLE t (a int)DEFAULT CHARSET=latin1 ENGINE=InnoDB", b"CREATE TABLE t (a int)ENGINE=InnoDB"),
    ({}, b"CREATE TABLE t (a int) ENGINE=InnoDB, DEFAULT CHARSET=latin1, COMMENT='c'",
     b"CREATE TABLE t (a int) ENGINE=InnoDB, COMMENT='c'"),
    ({}, b"CREATE TABLE t (a int) DEFAULT CHARSET=latin1, ENGINE=InnoDB", b"CREATE TABLE t (a int) ENGINE=InnoDB"),
    ({}, b"CREATE TEMPORARY TABLE IF NOT EXISTS `db`.`t` (a int)\r\nDEFAULT CHARSET=latin1", b"CREATE TEMPORARY TABLE IF NOT EXISTS `db`.`t` (a int)"),
    ({}, b"CREATE TABLE t (a int) ENGINE=InnoDB /*!40100 DEFAULT CHARSET=latin1 */", b"CREATE TABLE t (a int) ENGINE=InnoDB"),
    # only the table level: column level, COMMENT text, partitions stay
    ({}, MYSQL8_TABLE, MYSQL8_TABLE.replace(b" DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci", b"")),
    ({}, b"CREATE TABLE t (a int) ENGINE=InnoDB PARTITION BY KEY (a) (PARTITION p0 COMMENT 'DEFAULT CHARSET=x')",
     b"CREATE TABLE t (a int) ENGINE=InnoDB PARTITION BY KEY (a) (PARTITION p0 COMMENT 'DEFAULT CHARSET=x')"),
    ({}, b"CREATE TABLE t (a varchar(3) CHARACTER SET latin1 COLLATE latin1_bin) ENGINE=InnoDB",
     b"CREATE TABLE t (a varchar(3) CHARACTER SET latin1 COLLATE latin1_bin) ENGINE=InnoDB"),
    ({}, b"CREATE TABLE t LIKE u", b"CREATE TABLE t LIKE u"),
    ({}, b"CREATE DATABASE d /*!40100 DEFAULT CHARACTER SET latin1 */", b"CREATE DATABASE d /*!40100 DEFAULT CHARACTER SET latin1 */"),
    ({}, b"ALTER TABLE t DEFAULT CHARSET=latin1", b"ALTER TABLE t DEFAULT CHARSET=latin1"),
    # one option at a time
    ({'strip_collation': False}, b"CREATE TABLE t (a int) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
     b"CREATE TABLE t (a int) COLLATE=utf8mb4_bin"),
    ({'strip_charset': False}, b"CREATE TABLE t (a int) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
     b"CREATE TABLE t (a int) DEFAULT CHARSET=utf8mb4"),
    (NOTHING, b"CREATE TABLE t (a int) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
     b"CREATE TABLE t (a int) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"),
])
def test_table_options(options, before, after):
    assert edit(before, **options) == after


@pytest.mark.parametrize('before, after', [
    (b"CREATE TABLE t (a varchar(9) COLLATE utf8mb4_0900_ai_ci) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci",
     b"CREATE TABLE t (a varchar(9) COLLATE utf8mb4_unicode_ci) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"),
    (b"CREATE TABLE t (a varchar(9) COLLATE 'UTF8MB4_0900_AI_CI', b text COLLATE `utf8mb4_0900_ai_ci`)",
     b"CREATE TABLE t (a varchar(9) COLLATE 'utf8mb4_unicode_ci', b text COLLATE `utf8mb4_unicode_ci`)"),
    (b"/*!50001 SET collation_connection      = utf8mb4_0900_ai_ci */", b"/*!50001 SET collation_connection      = utf8mb4_unicode_ci */"),
    (b"SET @@session.collation_connection := 'utf8mb4_0900_ai_ci', collation_server=utf8mb4_0900_ai_ci",
     b"SET @@session.collation_connection := 'utf8mb4_unicode_ci', collation_server=utf8mb4_unicode_ci"),
    (b"SET NAMES utf8mb4 COLLATE utf8mb4_0900_ai_ci", b"SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci"),
    (b"/*!50003 SET @saved_col_connection = @@collation_connection */", b"/*!50003 SET @saved_col_connection = @@collation_connection */"),
    (b"SET @x = 'utf8mb4_0900_ai_ci'", b"SET @x = 'utf8mb4_0900_ai_ci'"),
    (b"CREATE DATABASE d /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */",
     b"CREATE DATABASE d /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci */"),
    (b"ALTER DATABASE `d` CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci", b"ALTER DATABASE `d` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    (b"CREATE FUNCTION f(a varchar(9) CHARSET utf8mb4 COLLATE utf8mb4_0900_ai_ci) RETURNS int RETURN 'COLLATE utf8mb4_0900_ai_ci' = a",
     b"CREATE FUNCTION f(a varchar(9) CHARSET utf8mb4 COLLATE utf8mb4_unicode_ci) RETURNS int RETURN 'COLLATE utf8mb4_0900_ai_ci' = a"),
    (b"CREATE TABLE t (a int COMMENT 'COLLATE utf8mb4_0900_ai_ci') -- COLLATE utf8mb4_0900_ai_ci\n",
     b"CREATE TABLE t (a int COMMENT 'COLLATE utf8mb4_0900_ai_ci') -- COLLATE utf8mb4_0900_ai_ci\n"),
    (b"CREATE TABLE t (a text COLLATE latin1_bin)", b"CREATE TABLE t (a text COLLATE latin1_bin)"),
])
def test_collation_map(before, after):
    assert edit(before, collation_map=MAP, **NOTHING) == after


def test_collation_map_counts_and_table_strip_wins():
    result = StatementEditor(SanitizeOptions(collation_map=MAP)).edit(MYSQL8_TABLE)
    new, counts = result
    assert b'0900' not in new
    assert b'COLLATE utf8mb4_unicode_ci NOT NULL' in new
    assert counts == {'charset': 1, 'collation': 1, 'definer': 0, 'collations_replaced': 1, 'columns_shrunk': 0}


@pytest.mark.parametrize('before, after', [
    (b"CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN\n  SELECT 1;\nEND",
     b"CREATE PROCEDURE `p`()\nBEGIN\n  SELECT 1;\nEND"),
    (b"CREATE DEFINER='admin'@'%' FUNCTION f() RETURNS int RETURN 1", b"CREATE FUNCTION f() RETURNS int RETURN 1"),
    (b"CREATE DEFINER = root@localhost EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1", b"CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1"),
    (b"CREATE DEFINER=root@192.168.1.10 VIEW v AS SELECT 1", b"CREATE VIEW v AS SELECT 1"),
    (b"CREATE DEFINER=CURRENT_USER() TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1",
     b"CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1"),
    (b"CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1", b"CREATE VIEW v AS SELECT 1"),
    (b"CREATE OR REPLACE ALGORITHM=MERGE DEFINER=`some_role` SQL SECURITY INVOKER VIEW v AS SELECT 1",
     b"CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW v AS SELECT 1"),
    (b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n"
     b"/*!50001 VIEW `v` AS select `t`.`definer` AS `definer` from `t` where `t`.`definer` = 'DEFINER=x' */",
     b"/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 SQL SECURITY DEFINER */\n"
     b"/*!50001 VIEW `v` AS select `t`.`definer` AS `definer` from `t` where `t`.`definer` = 'DEFINER=x' */"),
    (b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `trg` BEFORE INSERT ON `t` FOR EACH ROW "
     b"SET NEW.a = 'x;;y' */", b"/*!50003 CREATE*/ /*!50003 TRIGGER `trg` BEFORE INSERT ON `t` FOR EACH ROW SET NEW.a = 'x;;y' */"),
    (b"/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`localhost`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1 */",
     b"/*!50106 CREATE*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1 */"),
    (b"ALTER DEFINER=`root`@`%` VIEW v AS SELECT 1", b"ALTER VIEW v AS SELECT 1"),
    # not a header clause: left alone
    (b"CREATE VIEW v AS SELECT definer = 1 FROM t", b"CREATE VIEW v AS SELECT definer = 1 FROM t"),
    (b"CREATE /* DEFINER=`x`@`y` */ VIEW v AS SELECT 1", b"CREATE /* DEFINER=`x`@`y` */ VIEW v AS SELECT 1"),
    (b"CREATE TABLE definer (definer int)", b"CREATE TABLE definer (definer int)"),
])
def test_strip_definer(before, after):
    assert edit(before, strip_definer=True, **NOTHING) == after


def test_definer_kept_by_default():
    stmt = b"CREATE DEFINER=`root`@`localhost` PROCEDURE p() SELECT 1"
    assert edit(stmt) == stmt


@pytest.mark.parametrize('before, after', [
    (b"CREATE TABLE t (\n  `nwb_file_name` varchar(255) NOT NULL,\n  `interval_list_name` VARCHAR (200),\n"
     b"  `other` varchar(255),\n  PRIMARY KEY (`nwb_file_name`(100),`interval_list_name`)\n)",
     b"CREATE TABLE t (\n  `nwb_file_name` varchar(64) NOT NULL,\n  `interval_list_name` VARCHAR (170),\n"
     b"  `other` varchar(255),\n  PRIMARY KEY (`nwb_file_name`(100),`interval_list_name`)\n)"),
    (b"CREATE TABLE t (NWB_File_Name varchar(300), x int DEFAULT 1)", b"CREATE TABLE t (NWB_File_Name varchar(64), x int DEFAULT 1)"),
    (b"CREATE TABLE t (nwb_file_name varchar(32))", b"CREATE TABLE t (nwb_file_name varchar(32))"),
    (b"CREATE TABLE t (nwb_file_name char(255), c varchar(255) COMMENT 'nwb_file_name varchar(255)')",
     b"CREATE TABLE t (nwb_file_name char(255), c varchar(255) COMMENT 'nwb_file_name varchar(255)')"),
    (b"CREATE PROCEDURE p(nwb_file_name varchar(255)) SELECT 1", b"CREATE PROCEDURE p(nwb_file_name varchar(255)) SELECT 1"),
])
def test_column_lengths(before, after):
    assert edit(before, column_lengths={'nwb_file_name': 64, 'Interval_List_Name': '170'}, **NOTHING) == after


@pytest.mark.parametrize('stmt', [
    b"CREATE TABLE t (a int) ENGINE=InnoDB",
    b"/*!40000 ALTER TABLE `t` DISABLE KEYS */",
    b"SET @saved_cs_client = @@character_set_client",
    b"CREATE TABLE t (a int) COMMENT 'it''s \\' DEFAULT CHARSET=x'",
    b"CREATE TABLE t (a int) \\ DEFAULT CHARSET=x",  # a backslash outside a string: not SQL, not touched
])
def test_editor_leaves_alone(stmt):
    assert StatementEditor(SanitizeOptions(collation_map=MAP, strip_definer=True, column_lengths={'a': 1})).edit(stmt) is None


@pytest.mark.parametrize('options, message', [
    ({'collation_map': {'utf8mb4 0900': 'x'}}, "collation_map: 'utf8mb4 0900' is not a collation name"),
    ({'collation_map': {'a': 'b;DROP'}}, "collation_map: 'b;DROP' is not a collation name"),
    ({'column_lengths': {'a': 0}}, "the length for column 'a' must be an integer between 1 and 65535, got 0"),
    ({'column_lengths': {'a': 'x'}}, "got 'x'"),
    ({'collation_map': {'utf8mb4_0900_ai_ci': 'utf8mb4_general_ci', 'UTF8MB4_GENERAL_CI': 'utf8mb4_unicode_ci'}},
     'collation_map: utf8mb4_general_ci is both replaced and a replacement'),
    ({'collation_map': {'latin1_bin': 'LATIN1_BIN', 'x': 'y\n'}}, "'y\\n' is not a collation name"),
])
def test_invalid_options(options, message):
    with pytest.raises(SanitizeError, match=re.escape(message)):
        SanitizeOptions(**options)


# -- the scanner: data, comments and literals are never edited -------------------------------

TRAPS = b"".join([
    b"-- MySQL dump; it's DEFAULT CHARSET=latin1\n",
    b"# another 'comment' DEFAULT CHARSET=latin1; CREATE TABLE x (a int) DEFAULT CHARSET=latin1;\n",
    b"/* block; it's CREATE TABLE x (a int) DEFAULT CHARSET=latin1; */\n",
    b"CREATE TABLE `t` (`a` varchar(9)) DEFAULT CHARSET=latin1;\n",
    b"INSERT INTO `t` VALUES ('; CREATE TABLE x (a int) DEFAULT CHARSET=latin1;\\n'),",
    b"('it\\'s'),('it''s; CREATE TABLE y (b int) DEFAULT COLLATE x;'),('back\\\\'),('\\\\\\''),",
    b"(\"dq ' ; CREATE TABLE z (c int) DEFAULT CHARSET=latin1;\"),(0x27273B43524541544520),(_binary 'a\\0\\Z\\r\\n'),",
    b"(-1),(1--1),(2 -- it's a comment; CREATE TABLE w (d int) DEFAULT CHARSET=latin1\n),",
    b"(3 # it's; CREATE TABLE v (e int) DEFAULT CHARSET=latin1\n),(4 /* it's; CREATE TABLE u (f int) DEFAULT CHARSET=latin1 */);\n",
    b"INSERT INTO `weird``name' ;` VALUES (5);\n",
    b"CREATE TABLE `u` (`b` int) DEFAULT CHARSET=latin1;\n",
])
TRAPS_EXPECTED = (TRAPS.replace(b"CREATE TABLE `t` (`a` varchar(9)) DEFAULT CHARSET=latin1;",
                                b"CREATE TABLE `t` (`a` varchar(9));")
                  .replace(b"CREATE TABLE `u` (`b` int) DEFAULT CHARSET=latin1;", b"CREATE TABLE `u` (`b` int);"))


@pytest.mark.parametrize('chunk_size', [1, 2, 3, 7, 64, 1 << 20])
def test_data_and_comments_are_never_edited(tmp_path, chunk_size):
    result, out = sanitize(tmp_path, TRAPS, chunk_size=chunk_size)
    assert out == TRAPS_EXPECTED
    assert result['statements_changed'] == 2
    assert result['clauses_removed'] == {'charset': 2, 'collation': 0, 'definer': 0}
    assert (result['bytes_in'], result['bytes_out']) == (len(TRAPS), len(TRAPS_EXPECTED))


@pytest.mark.parametrize('eol', [b'\n', b'\r\n', b'\r'])
def test_line_endings_are_kept(tmp_path, eol):
    data = eol.join([b"CREATE TABLE t (", b"  a int", b") ENGINE=InnoDB DEFAULT CHARSET=latin1;", b"INSERT INTO t VALUES (1);", b""])
    out = sanitize(tmp_path, data)[1]
    assert out == eol.join([b"CREATE TABLE t (", b"  a int", b") ENGINE=InnoDB;", b"INSERT INTO t VALUES (1);", b""])


def test_latin1_and_binary_bytes_are_kept(tmp_path):
    data = (b"CREATE TABLE `caf\xe9` (a text COMMENT 'd\xe9j\xe0 vu') DEFAULT CHARSET=latin1;\n"
            b"INSERT INTO `caf\xe9` VALUES ('\xff\xfe\x00\x01\x80 \\' DEFAULT CHARSET=latin1'),(0x00FF);\n")
    out = sanitize(tmp_path, data)[1]
    assert out == data.replace(b" DEFAULT CHARSET=latin1;\n", b";\n", 1)


def test_delimiter_blocks(tmp_path):
    data = (b"DELIMITER ;;\n"
            b"CREATE DEFINER=`root`@`%` PROCEDURE `p`()\nBEGIN\n  SELECT 'a;;b'; -- it's;;\n  SELECT 2;\nEND ;;\n"
            b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `x` BEFORE INSERT ON `t` "
            b"FOR EACH ROW SET NEW.a = ';' */;;\n"
            b"DELIMITER ;\n"
            b"delimiter $$\nCREATE DEFINER=u@h FUNCTION f() RETURNS int RETURN 1 $$\nDELIMITER ;\n"
            b"INSERT INTO t VALUES ('DELIMITER ;;');\n"
            b"CREATE DEFINER=u@h VIEW v AS SELECT 1;\n")
    result, out = sanitize(tmp_path, data, strip_definer=True)
    assert out == (data.replace(b"CREATE DEFINER=`root`@`%` PROCEDURE", b"CREATE PROCEDURE")
                   .replace(b" /*!50017 DEFINER=`root`@`localhost`*/", b"")
                   .replace(b"CREATE DEFINER=u@h FUNCTION", b"CREATE FUNCTION")
                   .replace(b"CREATE DEFINER=u@h VIEW", b"CREATE VIEW"))
    assert result['clauses_removed']['definer'] == 4


def test_huge_single_line_insert_streams_in_constant_memory(tmp_path, monkeypatch):
    # 8 MB on one line; the hold limit is far below that, so the INSERT cannot be buffered.
    monkeypatch.setattr(mes, 'MAX_DDL_SIZE', 64 << 10)
    trap = b"(1,'it\\'s; CREATE TABLE x (a int) DEFAULT CHARSET=latin1; -- \\\\',-1.5,'2024-01-01'),"
    plain = b"(2,'j1620210710_.nwb',0x" + b"0A1B2C3D" * 100 + b",NULL),"
    middle = b"INSERT INTO t VALUES " + (trap + plain * 9) * (8000000 // (len(trap) + 9 * len(plain))) + b"(3,'end');\n"
    data = b"CREATE TABLE t (a int) DEFAULT CHARSET=latin1;\n" + middle + b"CREATE TABLE u (a int) DEFAULT CHARSET=latin1;\n"
    src = tmp_path / 'big.sql'
    src.write_bytes(data)
    tracemalloc.start()
    try:
        result = MysqlExportSanitizer(str(src), options=SanitizeOptions(), chunk_size=256 << 10).run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result['statements_changed'] == 2
    assert peak < 8 << 20, 'peak %d bytes' % peak
    assert src.read_bytes() == b"CREATE TABLE t (a int);\n" + middle + b"CREATE TABLE u (a int);\n"


@pytest.mark.parametrize('run', [b'-', b'/', b'\\\\', b'*', b'\\\\\\'])
def test_long_runs_of_special_bytes_do_not_pile_up(tmp_path, monkeypatch, run):
    # 3 MB of the same byte inside a string, read 64 KiB at a time: the bytes carried
    # from one chunk to the next stay a handful (else the buffer would grow each time).
    monkeypatch.setattr(mes, 'MAX_DDL_SIZE', 1 << 20)
    data = (b"CREATE TABLE t (a int) DEFAULT CHARSET=latin1;\nINSERT INTO t VALUES ('" + run * (3000000 // len(run))
            + b"'),(1);\nCREATE TABLE u (a int) DEFAULT CHARSET=latin1;\n")
    src = tmp_path / 'dump.sql'
    src.write_bytes(data)
    tracemalloc.start()
    try:
        result = MysqlExportSanitizer(str(src), chunk_size=64 << 10).run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result['statements_changed'] == 2
    assert src.read_bytes() == data.replace(b" DEFAULT CHARSET=latin1;", b";")
    assert peak < 2 << 20, 'peak %d bytes' % peak


def test_ddl_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(mes, 'MAX_DDL_SIZE', 1000)
    data = b"CREATE TABLE t (a int COMMENT '" + b"x" * 5000 + b"') DEFAULT CHARSET=latin1;\n"
    with pytest.raises(SanitizeError, match=r"statement starting at byte 0 \(line 1\) of .*big\.sql is longer than 1000 bytes; it is not the kind of DDL"):
        sanitize(tmp_path, data, name='big.sql', chunk_size=100)
    assert (tmp_path / 'big.sql').read_bytes() == data


# -- differential test against a byte-by-byte reference splitter ----------------------------

def _skip_string(data, j, quote):
    k = j + 1
    while k < len(data):
        c = data[k:k + 1]
        if c == b'\\' and quote != b'`':
            k += 2
        elif c == quote:
            if quote == b'`' and data[k + 1:k + 2] == b'`':
                k += 2
                continue
            return k + 1
        else:
            k += 1
    raise ValueError('unterminated literal')


def _statement_end(data, i, delim):
    """Where the statement starting at i ends (index of its delimiter), like the mysql client."""
    j, n, in_vc = i, len(data), False
    while j < n:
        if data.startswith(delim, j):
            return j
        c = data[j:j + 1]
        if c in (b"'", b'"', b'`'):
            j = _skip_string(data, j, c)
        elif c == b'#' or (data.startswith(b'--', j) and (j + 2 >= n or data[j + 2] <= 32)):
            k = data.find(b'\n', j)
            if k < 0:
                raise ValueError('unterminated statement')
            j = k + 1
        elif data.startswith(b'/*!', j):
            in_vc, j = True, j + 3
        elif data.startswith(b'/*M!', j):
            in_vc, j = True, j + 4
        elif data.startswith(b'/*', j):
            k = data.find(b'*/', j + 2)
            if k < 0:
                raise ValueError('unterminated comment')
            j = k + 2
        elif in_vc and data.startswith(b'*/', j):
            in_vc, j = False, j + 2
        elif c == b'\\':
            raise ValueError('backslash outside a string: not SQL the module supports')
        else:
            j += 1
    raise ValueError('unterminated statement')


def reference_sanitize(data, options):
    """The expected result, computed slowly: split, then edit the held statements."""
    editor = StatementEditor(options)
    held = options.held_heads()
    out, i, n, delim = [], 0, len(data), b';'
    while i < n:
        c = data[i:i + 1]
        if c in b' \t\r\n\f\v':
            out.append(c)
            i += 1
        elif c == b'#' or (data.startswith(b'--', i) and (i + 2 >= n or data[i + 2] <= 32)):
            k = data.find(b'\n', i)
            k = n if k < 0 else k + 1
            out.append(data[i:k])
            i = k
        elif data.startswith(b'/*', i) and not data.startswith(b'/*!', i) and not data.startswith(b'/*M!', i):
            k = data.find(b'*/', i + 2)
            if k < 0:
                raise ValueError('unterminated comment')
            out.append(data[i:k + 2])
            i = k + 2
        elif data.startswith(delim, i):
            out.append(delim)
            i += len(delim)
        elif re.match(rb'(?i)DELIMITER[ \t]', data[i:i + 10]):
            k = data.find(b'\n', i)
            k = n if k < 0 else k + 1
            delim = data[i + 10:k].split()[0]
            out.append(data[i:k])
            i = k
        else:
            j = _statement_end(data, i, delim)
            stmt = data[i:j]
            head = re.match(rb'(?:/\*M?![0-9]*[ \t\r\n\f\v]*)?([A-Za-z_]+)', stmt)
            if head and head.group(1).upper() in held:
                edited = editor.edit(stmt)
                stmt = stmt if edited is None else edited[0]
            out.append(stmt + delim)
            i = j + len(delim)
    return b''.join(out)


# Pieces of string content, each valid on its own (escapes included), so any
# concatenation is a valid literal and no backslash ever lands outside a string.
_CONTENT = [b'a', b' ', b';', b';;', b'`', b'#', b'--', b'-- ', b'/*', b'*/', b'*', b'/', b'\\\\', b'\\n', b'\n',
            b'\r\n', b'\xe9', b'\x00', b'CREATE TABLE x (a int) DEFAULT CHARSET=latin1;', b' DEFAULT COLLATE x',
            b'DEFINER=`r`@`h`', b'$$', b'\\;', b'\\`']
_SQ_CONTENT = _CONTENT + [b"\\'", b"''", b'"', b'\\"']
_DQ_CONTENT = _CONTENT + [b'\\"', b'""', b"'", b"\\'"]


def _random_literal(rnd):
    if rnd.random() < 0.75:
        return b"'" + b''.join(rnd.choice(_SQ_CONTENT) for dummy in range(rnd.randint(0, 8))) + b"'"
    return b'"' + b''.join(rnd.choice(_DQ_CONTENT) for dummy in range(rnd.randint(0, 8))) + b'"'


def _random_token(rnd, delim):
    choice = rnd.randint(0, 15)
    if choice < 5:
        return _random_literal(rnd)
    return rnd.choice([
        b'`weird``ident\' ;`', b'12', b'-1', b'1--1', b'0x27223B', b'NULL', b'(', b')', b',', b' ', b'\n', b'*', b'/',
        b'-- it\'s a comment' + delim + b'\n', b'# "quoted' + delim + b'\n', b'/* it\'s' + delim + b' */',
        b'/*!40101 SET a=1 */', b'/*!50003 ', b' */', b'DEFAULT CHARSET=latin1', b' COLLATE utf8mb4_0900_ai_ci',
        b'@', b'DEFINER=`x`@`y`', b'\r\n',
    ])


def _random_statement(rnd, delim):
    head = rnd.choice([
        b'INSERT INTO `t` VALUES ', b'CREATE TABLE t (a varchar(300) COLLATE utf8mb4_0900_ai_ci) DEFAULT CHARSET=utf8 ',
        b'SET collation_connection = utf8mb4_0900_ai_ci', b'/*!40101 SET NAMES utf8mb4 */', b'ALTER TABLE t ',
        b'/*!50003 CREATE*/ /*!50017 DEFINER=`r`@`h`*/ /*!50003 TRIGGER x ', b'REPLACE INTO t VALUES ',
        b'CREATE DEFINER=`r`@`%` PROCEDURE p() ', b'UPDATE t SET a=',
    ])
    body = b''.join(_random_token(rnd, delim) for dummy in range(rnd.randint(0, 12)))
    stmt = head + body
    # a statement may not end inside a version comment that is never closed: close it
    return stmt


def random_dump(rnd):
    parts = []
    delim = b';'
    for dummy in range(rnd.randint(1, 12)):
        kind = rnd.randint(0, 9)
        if kind == 0:
            parts.append(rnd.choice([b'\n', b'  ', b'-- gap \'comment\';\n', b'# gap;\n', b'/* gap \'; */', b';']))
        elif kind == 1:
            new = rnd.choice([b';;', b'$$', b'//', b';'])
            parts.append(b'DELIMITER ' + new + b'\n')
            delim = new
        else:
            parts.append(_random_statement(rnd, delim) + delim + rnd.choice([b'\n', b'', b' ', b'\r\n']))
    return b''.join(parts)


def scan_bytes(data, options, chunk_size):
    """DumpScanner on bytes in memory (the file handling is tested elsewhere)."""
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)] + [b'']
    out = []

    class Out(object):
        def write(self, piece, edited=False):
            out.append(bytes(piece))
    scanner = mes.DumpScanner(StatementEditor(options), options.held_heads(), lambda offset: 'byte %d' % offset)
    scanner.find_open_quote = lambda span: span[0]
    scanner.run(iter(chunks).__next__, Out())
    return b''.join(out)


def test_scanner_agrees_with_reference_splitter():
    rnd = random.Random(1234)
    options = SanitizeOptions(collation_map=MAP, strip_definer=True, column_lengths={'a': 64})
    checked = 0
    for case in range(400):
        data = random_dump(rnd)
        try:
            expected = reference_sanitize(data, options)
        except ValueError:
            continue  # not SQL (an unclosed comment, a backslash outside a string): covered elsewhere
        for chunk_size in ((1, 5, 64, 4096) if case % 4 == 0 else (3, 17, 4096)):
            assert scan_bytes(data, options, chunk_size) == expected, 'case %d, chunk %d: %r' % (case, chunk_size, data)
        checked += 1
    assert checked > 300


# -- errors: clear, located, and the file stays as it was ------------------------------------

@pytest.mark.parametrize('data, marker, message', [
    # the marker is where the error must point: its first occurrence in data
    (b"CREATE TABLE t (a int);\nINSERT INTO t VALUES (1,'abc\\'def);\nINSERT INTO t VALUES (2);\n", b"'abc",
     r"unterminated string literal starting at {at} of .*dump\.sql: the file ends inside it \(truncated dump\?\)"),
    (b"INSERT INTO t VALUES ('a''b'),('x\\\\');\n\nINSERT INTO t VALUES ('it''s", b"'it",
     r"unterminated string literal starting at {at} of "),
    (b"INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2)", b"INSERT INTO t VALUES (2)",
     r"unterminated statement starting at {at} of .*: the file ends before its delimiter ';'"),
    (b"DELIMITER ;;\nCREATE PROCEDURE p() SELECT 1;\n", b"CREATE", r"unterminated statement starting at {at} of .*delimiter ';;'"),
    (b"SELECT 1; /* open comment\n", b"/*", r"unterminated comment starting at {at} of .*: the file ends before its \*/"),
    (b'INSERT INTO t VALUES ("abc\n', b'"', r"unterminated double-quoted string starting at {at} of "),
    (b"INSERT INTO `t VALUES (1);\n", b"`", r"unterminated `quoted identifier` starting at {at} of "),
    (b"SELECT 1;\nINSERT INTO t VALUES (1) -- no end of line and no delimiter", b"INSERT", r"unterminated statement starting at {at} of "),
    (b"SELECT 1;\n\nDELIMITER '\nSELECT 1;\n", b"DELIMITER", r"unusable DELIMITER \"'\" at {at} of "),
])
def test_bad_sql_fails_and_changes_nothing(tmp_path, data, marker, message):
    src = tmp_path / 'dump.sql'
    src.write_bytes(data)
    offset = data.index(marker)
    at = r'byte %d \(line %d\)' % (offset, data[:offset].count(b'\n') + 1)
    for chunk_size in (3, 1 << 20):
        with pytest.raises(SanitizeError, match=message.format(at=at)):
            MysqlExportSanitizer(str(src), chunk_size=chunk_size).run()
    assert src.read_bytes() == data
    assert os.listdir(str(tmp_path)) == ['dump.sql']


def test_delimiter_word_alone_is_a_statement(tmp_path):
    result, out = sanitize(tmp_path, b"DELIMITER\n;\nSELECT 1;\n")
    assert result['changed'] is False and out == b"DELIMITER\n;\nSELECT 1;\n"


def test_unterminated_string_found_across_chunks(tmp_path):
    data = b"INSERT INTO t VALUES ('ok'),('" + b"x" * 5000 + b"\\'still open;\n" * 50
    src = tmp_path / 'dump.sql'
    src.write_bytes(data)
    with pytest.raises(SanitizeError, match=r"unterminated string literal starting at byte 29 \(line 1\)"):
        MysqlExportSanitizer(str(src), chunk_size=1000).run()


def test_missing_file(tmp_path):
    with pytest.raises(SanitizeError, match=r"^cannot read .*/nope\.sql: no such file$"):
        MysqlExportSanitizer(str(tmp_path / 'nope.sql')).run()


def test_directory(tmp_path):
    with pytest.raises(SanitizeError, match=r"^.* is a directory, not a \.sql or \.sql\.gz file$"):
        MysqlExportSanitizer(str(tmp_path)).run()


def test_unreadable_file(tmp_path, monkeypatch):
    src = tmp_path / 'dump.sql'
    src.write_bytes(b"SELECT 1;\n")
    real_open = open

    def fake_open(path, *args, **kwargs):
        if str(path) == str(src):
            raise PermissionError(13, 'Permission denied', str(path))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr('builtins.open', fake_open)
    with pytest.raises(SanitizeError, match=r"^cannot read .*dump\.sql: permission denied"):
        MysqlExportSanitizer(str(src)).run()


def test_truncated_gzip(tmp_path):
    data = b"CREATE TABLE t (a int) DEFAULT CHARSET=latin1;\n" + b"INSERT INTO t VALUES (1);\n" * 20000
    src = tmp_path / 'dump.sql.gz'
    blob = gzip.compress(data)
    src.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(SanitizeError, match=r"^cannot read .*dump\.sql\.gz: truncated gzip stream \(it ends after \d+ bytes of SQL\)"):
        MysqlExportSanitizer(str(src)).run()
    assert src.read_bytes() == blob[:len(blob) // 2]
    assert os.listdir(str(tmp_path)) == ['dump.sql.gz']


def test_corrupt_and_mislabelled_gzip(tmp_path):
    src = tmp_path / 'dump.sql.gz'
    src.write_bytes(b"CREATE TABLE t (a int);\n")
    with pytest.raises(SanitizeError, match=r"cannot read .*dump\.sql\.gz: corrupt gzip data after 0 bytes of SQL"):
        MysqlExportSanitizer(str(src)).run()
    plain = tmp_path / 'dump.sql'
    plain.write_bytes(gzip.compress(b"SELECT 1;\n"))
    with pytest.raises(SanitizeError, match=r"dump\.sql is gzip-compressed but its name does not end in \.gz"):
        MysqlExportSanitizer(str(plain)).run()


def test_write_failure_leaves_destination(tmp_path, monkeypatch):
    src = tmp_path / 'dump.sql'
    data = b"CREATE TABLE t (a int) DEFAULT CHARSET=latin1;\n" + b"INSERT INTO t VALUES (1);\n" * 1000
    src.write_bytes(data)

    def failing_write(self, data):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(mes.AtomicFile, 'write', failing_write)
    for name in ('dump.sql', 'dump.sql.gz'):  # written directly / by the compressing thread
        with pytest.raises(SanitizeError, match=r"^cannot write .*%s: No space left on device$" % re.escape(name)):
            MysqlExportSanitizer(str(src), dest=str(tmp_path / name)).run()
    assert src.read_bytes() == data
    assert os.listdir(str(tmp_path)) == ['dump.sql']


# -- files: in place, dest, gzip, idempotence, check mode, backup, attributes ---------------------

DUMP = (b"CREATE TABLE t (a varchar(9) COLLATE utf8mb4_0900_ai_ci) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n"
        b"INSERT INTO t VALUES ('DEFAULT CHARSET=utf8mb4');\n")
DUMP_OUT = (b"CREATE TABLE t (a varchar(9) COLLATE utf8mb4_0900_ai_ci) ENGINE=InnoDB;\n"
            b"INSERT INTO t VALUES ('DEFAULT CHARSET=utf8mb4');\n")


@pytest.mark.parametrize('src_name, dest_name', [
    ('dump.sql', None), ('dump.sql.gz', None), ('dump.sql', 'out.sql.gz'), ('dump.sql.gz', 'out.sql'),
    ('dump.sql.gz', 'out.sql.gz'), ('dump.sql', 'out.sql'),
])
def test_compression_in_and_out_and_idempotence(tmp_path, src_name, dest_name):
    src = tmp_path / src_name
    original = gzip.compress(DUMP) if src_name.endswith('.gz') else DUMP
    src.write_bytes(original)
    dest = str(tmp_path / dest_name) if dest_name else None
    target = dest or str(src)

    def run(check_mode):
        return MysqlExportSanitizer(str(src), dest=dest, check_mode=check_mode).run()

    first_check = run(True)
    assert first_check['changed'] is True and first_check['statements_changed'] == 1
    assert src.read_bytes() == original and (dest is None or not os.path.exists(dest))
    first = run(False)
    assert first['changed'] is True and first['dest'] == target
    result = open(target, 'rb').read()
    assert (gzip.decompress(result) if target.endswith('.gz') else result) == DUMP_OUT
    if dest:
        assert src.read_bytes() == original
    before = os.stat(target)
    second_check = run(True)
    second = run(False)
    assert second_check['changed'] is False and second['changed'] is False
    after = os.stat(target)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(os.listdir(str(tmp_path))) == sorted({src_name, dest_name or src_name})


def test_dest_with_other_content_is_replaced(tmp_path):
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    dest = tmp_path / 'out.sql'
    for stale in (b'', DUMP_OUT[:-1], DUMP_OUT + b'-- extra\n', b'x' + DUMP_OUT[1:]):
        dest.write_bytes(stale)
        result = MysqlExportSanitizer(str(src), dest=str(dest)).run()
        assert result['changed'] is True
        assert dest.read_bytes() == DUMP_OUT


def test_unchanged_file_only_reports(tmp_path):
    result, out = sanitize(tmp_path, DUMP_OUT * 3)
    assert result['changed'] is False and out == DUMP_OUT * 3


def test_nothing_to_do_without_options(tmp_path):
    result, out = sanitize(tmp_path, DUMP, strip_charset=False, strip_collation=False)
    assert result['changed'] is False and out == DUMP


def test_check_mode_writes_nothing(tmp_path):
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    result = MysqlExportSanitizer(str(src), dest=str(tmp_path / 'out.sql'), check_mode=True, want_diff=True).run()
    assert result['changed'] is True and result['bytes_out'] == len(DUMP_OUT)
    assert os.listdir(str(tmp_path)) == ['dump.sql']
    assert '-- statement at byte 0\n' in result['diff']['before']
    assert 'DEFAULT CHARSET=utf8mb4;' in result['diff']['before'] and 'DEFAULT CHARSET' not in result['diff']['after']


def test_diff_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(mes, 'DIFF_MAX_TOTAL', 1000)
    monkeypatch.setattr(mes, 'DIFF_MAX_STATEMENT', 50)
    result = sanitize(tmp_path, DUMP * 100, diff=True)[0]
    diff = result['diff']
    assert result['statements_changed'] == 100
    assert len(diff['before']) < 3000 and len(diff['after']) < 3000
    hidden = int(re.search(r'-- \.\.\. and (\d+) more changed statements not shown', diff['before']).group(1))
    assert diff['before'].count('-- statement at byte') + hidden == 100
    assert '-- ... (statement shortened)' in diff['before']


def test_backup_and_attributes_are_kept(tmp_path):
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    os.chmod(str(src), 0o640)
    if os.geteuid() == 0:
        os.chown(str(src), 65534, 65534)
    calls = []

    def backup(path):
        calls.append(path)
        copy = path + '.bak'
        with open(path, 'rb') as f, open(copy, 'wb') as g:
            g.write(f.read())
        return copy
    result = MysqlExportSanitizer(str(src), backup=backup).run()
    assert result['backup_file'] == str(src) + '.bak' and calls == [str(src)]
    assert (tmp_path / 'dump.sql.bak').read_bytes() == DUMP
    st = os.stat(str(src))
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (65534, 65534)
    again = MysqlExportSanitizer(str(src), backup=backup).run()
    assert again['backup_file'] is None and calls == [str(src)]


def test_symlink_stays_a_symlink(tmp_path):
    real = tmp_path / 'real.sql'
    real.write_bytes(DUMP)
    link = tmp_path / 'link.sql'
    link.symlink_to('real.sql')
    result = MysqlExportSanitizer(str(link)).run()
    assert result['changed'] is True and result['dest'] == str(link)
    assert os.path.islink(str(link)) and real.read_bytes() == DUMP_OUT


def test_new_dest_gets_requested_mode(tmp_path):
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    dest = tmp_path / 'out.sql'
    MysqlExportSanitizer(str(src), dest=str(dest), mode=0o600).run()
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o600


@pytest.mark.parametrize('dest, message', [
    ('sub', r"dest .*sub is a directory; give the full name of the file to write"),
    ('missing/out.sql', r"cannot write .*missing/out\.sql: directory .*missing does not exist"),
])
def test_bad_dest(tmp_path, dest, message):
    (tmp_path / 'sub').mkdir()
    src = tmp_path / 'dump.sql'
    src.write_bytes(DUMP)
    with pytest.raises(SanitizeError, match=message):
        MysqlExportSanitizer(str(src), dest=str(tmp_path / dest)).run()
