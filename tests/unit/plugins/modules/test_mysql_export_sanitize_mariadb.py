# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A MySQL 8 export, sanitised by the module, loads into a real MariaDB, rows intact.

Needs Debian's ``mariadb-server`` and ``mariadb-client`` packages: skipped without
them, failed without them when ``LABOPS_REQUIRE_MARIADB=1``. The server is private to
the test (see ``tests/unit/mariadb_server.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.labops.services.plugins.modules import mysql_export_sanitize
from ansible_collections.labops.services.tests.unit.mariadb_server import MariaDBServer, require_binaries
from ansible_collections.labops.services.tests.unit.utils import run_module

MAP = {'utf8mb4_0900_ai_ci': 'utf8mb4_unicode_ci'}
LENGTHS = {'nwb_file_name': 64, 'interval_list_name': 170}

SESSIONS = [
    (u'j1620210710_.nwb', u'J16; rat',
     u"it's a 'quoted' \"test\" with DEFAULT CHARSET=latin1 and DEFAULT COLLATE utf8mb4_0900_ai_ci inside;"
     u" -- not a comment\n# nor this /* nor */ \\ backslash \x00 nul \x1a ctrl-z \r\n crlf \\' \\\\' ''",
     u'2021-07-10 12:00:00'),
    (u'peanut20201103_.nwb', u'\u00dcn\u00efc\u00f6d\u00e9 \U0001f400', u'CREATE TABLE x (a int) DEFAULT CHARSET=latin1;', u'2020-11-03 09:30:00'),
    (u'x' * 64, u'', u'', u'1999-12-31 23:59:59'),
]
INTERVALS = [
    (u'j1620210710_.nwb', u'pos 0 valid times', u'position', u'', bytes(bytearray(range(256)))),
    (u'j1620210710_.nwb', u'raw data valid times', u'', u"';--", b"\x00'\"\\;\n" * 10),
    (u'peanut20201103_.nwb', u'y' * 170, u'lfp', u'DEFAULT CHARSET=latin1', b''),
    (u'x' * 64, u'empty', u'', u'', None),
]


def _sql(value):
    """A value the way mysqldump --hex-blob writes it."""
    if value is None:
        return 'NULL'
    if isinstance(value, bytes):
        return '0x' + value.hex().upper() if value else "''"
    escaped = (value.replace('\\', '\\\\').replace('\x00', '\\0').replace('\n', '\\n').replace('\r', '\\r')
               .replace('\x1a', '\\Z').replace("'", "\\'").replace('"', '\\"'))
    return "'" + escaped + "'"


def mysql8_dump():
    """A dump as mysqldump 8.0 writes it (one table after the other, then views, triggers, routines)."""
    lines = [
        '-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)',
        '/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;',
        '/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;',
        '/*!50503 SET NAMES utf8mb4 */;',
        "/*!40103 SET TIME_ZONE='+00:00' */;",
        '/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;',
        "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;",
        '',
        'DROP TABLE IF EXISTS `session`;',
        '/*!40101 SET @saved_cs_client     = @@character_set_client */;',
        '/*!50503 SET character_set_client = utf8mb4 */;',
        'CREATE TABLE `session` (',
        "  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'name; DEFAULT CHARSET=latin1',",
        '  `subject_id` varchar(80) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,',
        '  `session_description` text COLLATE utf8mb4_0900_ai_ci NOT NULL,',
        '  `session_start_time` datetime NOT NULL,',
        '  PRIMARY KEY (`nwb_file_name`)',
        ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci COMMENT='sessions; DEFAULT COLLATE x';",
        '/*!40101 SET character_set_client = @saved_cs_client */;',
        'LOCK TABLES `session` WRITE;',
        '/*!40000 ALTER TABLE `session` DISABLE KEYS */;',
        'INSERT INTO `session` VALUES ' + ','.join('(' + ','.join(_sql(v) for v in row) + ')' for row in SESSIONS) + ';',
        '/*!40000 ALTER TABLE `session` ENABLE KEYS */;',
        'UNLOCK TABLES;',
        '',
        'DROP TABLE IF EXISTS `interval_list`;',
        'CREATE TABLE `interval_list` (',
        '  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL,',
        '  `interval_list_name` varchar(200) COLLATE utf8mb4_0900_ai_ci NOT NULL,',
        "  `pipeline` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL DEFAULT '',",
        "  `note` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL DEFAULT '',",
        '  `valid_times` longblob,',
        '  PRIMARY KEY (`nwb_file_name`,`interval_list_name`,`pipeline`,`note`),',
        '  CONSTRAINT `interval_list_ibfk_1` FOREIGN KEY (`nwb_file_name`) REFERENCES `session` (`nwb_file_name`)'
        ' ON DELETE RESTRICT ON UPDATE CASCADE',
        ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;',
        'LOCK TABLES `interval_list` WRITE;',
        'INSERT INTO `interval_list` VALUES ' + ','.join('(' + ','.join(_sql(v) for v in row) + ')' for row in INTERVALS) + ';',
        'UNLOCK TABLES;',
        '',
        '/*!50001 DROP VIEW IF EXISTS `session_view`*/;',
        '/*!50001 SET @saved_col_connection     = @@collation_connection */;',
        '/*!50001 SET character_set_client      = utf8mb4 */;',
        '/*!50001 SET collation_connection      = utf8mb4_0900_ai_ci */;',
        '/*!50001 CREATE ALGORITHM=UNDEFINED */',
        '/*!50013 DEFINER=`spyglass_admin`@`%` SQL SECURITY DEFINER */',
        '/*!50001 VIEW `session_view` AS select `session`.`nwb_file_name` AS `nwb_file_name`,'
        '`session`.`subject_id` AS `subject_id` from `session` */;',
        '/*!50001 SET collation_connection      = @saved_col_connection */;',
        '',
        '/*!50003 SET @saved_col_connection = @@collation_connection */ ;',
        '/*!50003 SET collation_connection  = utf8mb4_0900_ai_ci */ ;',
        'DELIMITER ;;',
        '/*!50003 CREATE*/ /*!50017 DEFINER=`spyglass_admin`@`%`*/ /*!50003 TRIGGER `session_bi` BEFORE INSERT ON `session` '
        "FOR EACH ROW SET NEW.subject_id = CONCAT(NEW.subject_id, ';;') */;;",
        'DELIMITER ;',
        'DELIMITER ;;',
        'CREATE DEFINER=`spyglass_admin`@`%` PROCEDURE `count_sessions`(IN prefix varchar(64) CHARSET utf8mb4 '
        'COLLATE utf8mb4_0900_ai_ci, OUT n int)',
        'BEGIN',
        "  -- it's a comment; with a quote",
        "  SELECT COUNT(*) INTO n FROM `session` WHERE `nwb_file_name` LIKE CONCAT(prefix, '%;');",
        "  SELECT COUNT(*) INTO n FROM `session` WHERE `nwb_file_name` LIKE CONCAT(prefix, '%');",
        'END ;;',
        'DELIMITER ;',
        '/*!50003 SET collation_connection  = @saved_col_connection */ ;',
        '/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;',
        '/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;',
        '-- Dump completed on 2024-05-02 10:11:12',
        '',
    ]
    return '\n'.join(lines).encode('utf-8')


def _hex(value):
    if value is None:
        return 'NULL'
    return (value if isinstance(value, bytes) else value.encode('utf-8')).hex().upper()


def test_mysql8_dump_loads_into_mariadb(tmp_path):
    binaries = require_binaries()
    dump = tmp_path / 'export.sql'
    dump.write_bytes(mysql8_dump())
    with MariaDBServer.start(str(tmp_path / 'server'), binaries) as server:
        for db in ('asis', 'nolengths', 'spyglass'):
            server.client(['-e', 'CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci' % db])

        # As exported, the dump does not load (unless this MariaDB knows the MySQL 8 collation).
        if not server.query("SHOW COLLATION LIKE 'utf8mb4_0900_ai_ci'"):
            failed = server.load(str(dump), 'asis', check=False)
            assert failed.returncode != 0 and b'Unknown collation' in failed.stderr, failed.stderr

        # The collation alone is not enough for this table: its key is too long.
        nolengths = tmp_path / 'nolengths.sql'
        run_module(mysql_export_sanitize, {'path': str(dump), 'dest': str(nolengths), 'collation_map': MAP})
        failed = server.load(str(nolengths), 'nolengths', check=False)
        assert failed.returncode != 0 and b'key was too long' in failed.stderr, failed.stderr

        clean = tmp_path / 'clean.sql.gz'
        args = {'path': str(dump), 'dest': str(clean), 'collation_map': MAP, 'column_lengths': LENGTHS,
                'strip_definer': True}
        result = run_module(mysql_export_sanitize, args)
        assert result['changed'] is True
        assert result['clauses_removed'] == {'charset': 2, 'collation': 2, 'definer': 3}
        assert run_module(mysql_export_sanitize, args)['changed'] is False
        plain = tmp_path / 'clean.sql'
        run_module(mysql_export_sanitize, dict(args, dest=str(plain)))
        server.load(str(plain), 'spyglass')

        rows = server.query('SELECT HEX(nwb_file_name), HEX(subject_id), HEX(session_description), session_start_time '
                            'FROM session', 'spyglass')
        assert sorted(rows) == sorted([_hex(a), _hex(b), _hex(c), d] for a, b, c, d in SESSIONS)
        rows = server.query("SELECT HEX(nwb_file_name), HEX(interval_list_name), HEX(pipeline), HEX(note), "
                            "IFNULL(HEX(valid_times), 'NULL') FROM interval_list", 'spyglass')
        assert sorted(rows) == sorted([_hex(v) for v in row] for row in INTERVALS)

        # DDL: the new collation and lengths, no table option left, objects owned by the loader
        columns = server.query("SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH, COLLATION_NAME FROM "
                               "information_schema.COLUMNS WHERE TABLE_SCHEMA = 'spyglass' AND COLUMN_NAME IN "
                               "('nwb_file_name', 'interval_list_name', 'subject_id') AND TABLE_NAME <> 'session_view'")
        assert sorted(columns) == sorted([
            ['session', 'nwb_file_name', '64', 'utf8mb4_unicode_ci'],
            ['session', 'subject_id', '80', 'utf8mb4_unicode_ci'],
            ['interval_list', 'nwb_file_name', '64', 'utf8mb4_unicode_ci'],
            ['interval_list', 'interval_list_name', '170', 'utf8mb4_unicode_ci'],
        ])
        definers = server.query("SELECT 'view', DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'spyglass' "
                                "UNION ALL SELECT 'trigger', DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'spyglass' "
                                "UNION ALL SELECT 'routine', DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'spyglass'")
        assert sorted(definers) == [['routine', 'root@localhost'], ['trigger', 'root@localhost'], ['view', 'root@localhost']]
        assert sorted(server.query('SELECT nwb_file_name FROM session_view', 'spyglass')) == sorted([s[0]] for s in SESSIONS)
        assert server.query("CALL count_sessions('j16', @n); SELECT @n", 'spyglass') == [['1']]
