#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark mysql_export_sanitize against upstream's two ``sed -i`` passes.

    python3 tests/benchmarks/bench_mysql_export_sanitize.py                    # 100M and 1G, spyglass data
    python3 tests/benchmarks/bench_mysql_export_sanitize.py --sizes 20M        # quick
    python3 tests/benchmarks/bench_mysql_export_sanitize.py --profile text --sizes 100M

For every size it generates a mysqldump-style file (MySQL 8 DDL with utf8mb4_0900_ai_ci,
``--hex-blob`` values, extended INSERTs of about 1 MB like mysqldump writes them), then,
on fresh copies and alternating ``--repeat`` times:

* upstream: ``sed -i 's/ DEFAULT CHARSET=[^ ;]*//g' f`` then ``sed -i 's/ DEFAULT COLLATE [^ ;]*//g' f``
  (two in-place passes, as upstream runs them);
* module: this script's ``--sanitize`` entry (the module_utils class with the options the
  module would get, writing in place through AtomicFile, fsync included) under
  ``/usr/bin/time -v`` for the peak RSS.

It prints MB/s (input size / wall time, median of the repeats), the ratio, the CPU time of
each (user + system: on a shared machine the fairer comparison) and the peak RSS, checks
that the module's output is byte for byte the expected file (the generator knows which DDL
bytes must change), and counts the values in INSERT data that sed corrupted.

Profiles: ``spyglass`` (default) looks like a Spyglass paper export: hex blobs, file names,
paths, numbers, a little free text. ``text`` is a worst case: every row carries free text
full of ``;`` and escaped quotes, so the scanner has to look at far more bytes.
"""

from __future__ import absolute_import, division, print_function

import argparse
import hashlib
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, 'collections'))

COLLATION_MAP = {'utf8mb4_0900_ai_ci': 'utf8mb4_unicode_ci'}
COLUMN_LENGTHS = {'nwb_file_name': 64, 'interval_list_name': 170}

HEADER = b"""-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: localhost    Database: spyglass_common
-- ------------------------------------------------------
-- Server version\t8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!50503 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;

"""

FOOTER = b"""/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2024-05-02 10:11:12
"""

# (name, CREATE TABLE as mysqldump 8 writes it, the same after the module with the
# benchmark's options; written out by hand so the check does not trust the module).
TABLES = {
    'interval_list': (
        b"""CREATE TABLE `interval_list` (
  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'name of the NWB file',
  `interval_list_name` varchar(200) COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'descriptive name of this interval list',
  `valid_times` longblob NOT NULL COMMENT 'numpy array with start and end times for each interval',
  `pipeline` varchar(64) COLLATE utf8mb4_0900_ai_ci NOT NULL DEFAULT '' COMMENT 'type of interval list',
  PRIMARY KEY (`nwb_file_name`,`interval_list_name`),
  CONSTRAINT `interval_list_ibfk_1` FOREIGN KEY (`nwb_file_name`) REFERENCES `session` (`nwb_file_name`) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci COMMENT='Time intervals used for analysis'""",
        b"""CREATE TABLE `interval_list` (
  `nwb_file_name` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL COMMENT 'name of the NWB file',
  `interval_list_name` varchar(170) COLLATE utf8mb4_unicode_ci NOT NULL COMMENT 'descriptive name of this interval list',
  `valid_times` longblob NOT NULL COMMENT 'numpy array with start and end times for each interval',
  `pipeline` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '' COMMENT 'type of interval list',
  PRIMARY KEY (`nwb_file_name`,`interval_list_name`),
  CONSTRAINT `interval_list_ibfk_1` FOREIGN KEY (`nwb_file_name`) REFERENCES `session` (`nwb_file_name`) ON DELETE RESTRICT ON UPDATE CASCADE
) ENGINE=InnoDB COMMENT='Time intervals used for analysis'"""),
    'electrode': (
        b"""CREATE TABLE `electrode` (
  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'name of the NWB file',
  `electrode_group_name` varchar(80) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `electrode_id` int NOT NULL,
  `probe_id` varchar(80) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `region_id` smallint unsigned DEFAULT NULL,
  `name` varchar(200) COLLATE utf8mb4_0900_ai_ci NOT NULL DEFAULT '',
  `x` float DEFAULT NULL,
  `y` float DEFAULT NULL,
  `z` float DEFAULT NULL,
  `filtering` varchar(2000) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `impedance` float DEFAULT NULL,
  `bad_channel` enum('True','False') COLLATE utf8mb4_0900_ai_ci DEFAULT 'False',
  PRIMARY KEY (`nwb_file_name`,`electrode_group_name`,`electrode_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci""",
        b"""CREATE TABLE `electrode` (
  `nwb_file_name` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL COMMENT 'name of the NWB file',
  `electrode_group_name` varchar(80) COLLATE utf8mb4_unicode_ci NOT NULL,
  `electrode_id` int NOT NULL,
  `probe_id` varchar(80) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `region_id` smallint unsigned DEFAULT NULL,
  `name` varchar(200) COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
  `x` float DEFAULT NULL,
  `y` float DEFAULT NULL,
  `z` float DEFAULT NULL,
  `filtering` varchar(2000) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `impedance` float DEFAULT NULL,
  `bad_channel` enum('True','False') COLLATE utf8mb4_unicode_ci DEFAULT 'False',
  PRIMARY KEY (`nwb_file_name`,`electrode_group_name`,`electrode_id`)
) ENGINE=InnoDB"""),
    'analysis_nwbfile': (
        b"""CREATE TABLE `analysis_nwbfile` (
  `analysis_file_name` varchar(64) COLLATE utf8mb4_0900_ai_ci NOT NULL COMMENT 'name of the file',
  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `analysis_file_abs_path` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `analysis_file_description` varchar(2000) COLLATE utf8mb4_0900_ai_ci NOT NULL DEFAULT '',
  `analysis_parent` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL DEFAULT '',
  `params` longblob,
  PRIMARY KEY (`analysis_file_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci""",
        b"""CREATE TABLE `analysis_nwbfile` (
  `analysis_file_name` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL COMMENT 'name of the file',
  `nwb_file_name` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL,
  `analysis_file_abs_path` varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL,
  `analysis_file_description` varchar(2000) COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
  `analysis_parent` varchar(255) COLLATE utf8mb4_unicode_ci NOT NULL DEFAULT '',
  `params` longblob,
  PRIMARY KEY (`analysis_file_name`)
) ENGINE=InnoDB"""),
    'session': (
        b"""CREATE TABLE `session` (
  `nwb_file_name` varchar(255) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `subject_id` varchar(80) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `session_id` varchar(200) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  `session_description` varchar(2000) COLLATE utf8mb4_0900_ai_ci NOT NULL,
  `session_start_time` datetime NOT NULL,
  `experiment_description` varchar(2000) COLLATE utf8mb4_0900_ai_ci DEFAULT NULL,
  PRIMARY KEY (`nwb_file_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci""",
        b"""CREATE TABLE `session` (
  `nwb_file_name` varchar(64) COLLATE utf8mb4_unicode_ci NOT NULL,
  `subject_id` varchar(80) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `session_id` varchar(200) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  `session_description` varchar(2000) COLLATE utf8mb4_unicode_ci NOT NULL,
  `session_start_time` datetime NOT NULL,
  `experiment_description` varchar(2000) COLLATE utf8mb4_unicode_ci DEFAULT NULL,
  PRIMARY KEY (`nwb_file_name`)
) ENGINE=InnoDB"""),
}

# mysqldump writes extended INSERTs of up to net_buffer_length (1 MiB) per statement.
STATEMENT_BYTES = 1 << 20
TEXT_SNIPPETS = [
    "Rat was tired; ran 12 laps", "it\\'s a W-track session", "electrode 3 \\\"noisy\\\"",
    "see notes: DEFAULT CHARSET=latin1 was set on the rig DB", "ok", "",
    "sleep/run/sleep; 20 min each", "C:\\\\data\\\\raw", "line one\\nline two",
    "DEFAULT COLLATE latin1_swedish_ci (copied from a config)", "100% -- good",
]


def _sql_str(s):
    return "'" + s + "'"


class Generator(object):
    """Writes a dump and returns the sha256 of the file the module must produce."""

    def __init__(self, profile, seed=20240502):
        self.profile = profile
        self.rnd = random.Random(seed)
        self.pools = dict((name, self._pool(name, 4000)) for name in TABLES)

    def _nwb(self):
        r = self.rnd
        return 'j%s%04d%02d%02d_.nwb' % (r.choice(['16', 'c', 'mo', 'pe']), r.randint(2018, 2023), r.randint(1, 12), r.randint(1, 28))

    def _hex(self, lo, hi):
        return '0x' + os.urandom(self.rnd.randint(lo, hi)).hex().upper()

    def _text(self):
        if self.profile == 'text':
            return ' '.join(self.rnd.choice(TEXT_SNIPPETS) for dummy in range(self.rnd.randint(3, 12)))
        return self.rnd.choice(TEXT_SNIPPETS) if self.rnd.random() < 0.3 else 'session %d' % self.rnd.randint(1, 99)

    def _pool(self, name, n):
        r = self.rnd
        rows = []
        for i in range(n):
            if name == 'interval_list':
                row = (_sql_str(self._nwb()), _sql_str('pos %d valid times' % r.randint(0, 40)),
                       self._hex(32, 3000 if self.profile == 'spyglass' else 200), _sql_str(r.choice(['', 'position', 'lfp'])))
            elif name == 'electrode':
                row = (_sql_str(self._nwb()), _sql_str(str(r.randint(0, 63))), str(r.randint(0, 255)),
                       _sql_str('tetrode_12.5'), str(r.randint(1, 40)), _sql_str(str(i)),
                       '%.4g' % r.uniform(-3000, 3000), '%.4g' % r.uniform(-3000, 3000), '%.4g' % r.uniform(-10, 10),
                       _sql_str(self._text() if self.profile == 'text' else 'None'), '-1', _sql_str(r.choice(['True', 'False'])))
            elif name == 'analysis_nwbfile':
                nwb = self._nwb()
                f = '%s%s.nwb' % (nwb[:-5], ''.join(r.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789') for dummy in range(10)))
                row = (_sql_str(f), _sql_str(nwb), _sql_str('/stelmo/nwb/analysis/%s/%s' % (nwb[:-5], f)),
                       _sql_str(self._text()), _sql_str(nwb), self._hex(16, 1200) if r.random() < 0.7 else 'NULL')
            else:
                row = (_sql_str(self._nwb()), _sql_str(r.choice(['Bon', 'Frank', 'J16', 'peanut'])),
                       _sql_str('%d_%d' % (r.randint(1, 30), r.randint(1, 9))), _sql_str(self._text()),
                       _sql_str('2021-0%d-%02d 10:%02d:00' % (r.randint(1, 9), r.randint(1, 28), r.randint(0, 59))),
                       _sql_str(self._text()))
            rows.append(('(' + ','.join(row) + ')').encode('utf-8'))
        return rows

    def _table(self, name, quota, write):
        create, expected = TABLES[name]
        head = (b"DROP TABLE IF EXISTS `%s`;\n/*!40101 SET @saved_cs_client     = @@character_set_client */;\n"
                b"/*!50503 SET character_set_client = utf8mb4 */;\n" % name.encode())
        mid = (b";\n/*!40101 SET character_set_client = @saved_cs_client */;\n\n"
               b"--\n-- Dumping data for table `%s`\n--\n\nLOCK TABLES `%s` WRITE;\n"
               b"/*!40000 ALTER TABLE `%s` DISABLE KEYS */;\n" % ((name.encode(),) * 3))
        tail = b"/*!40000 ALTER TABLE `%s` ENABLE KEYS */;\nUNLOCK TABLES;\n\n" % name.encode()
        write(head + create + mid, head + expected + mid)
        pool = self.pools[name]
        prefix = b'INSERT INTO `%s` VALUES ' % name.encode()
        written = 0
        while written < quota:
            rows, size = [], len(prefix)
            while size < STATEMENT_BYTES:
                row = pool[self.rnd.randrange(len(pool))]
                rows.append(row)
                size += len(row) + 1
            stmt = prefix + b','.join(rows) + b';\n'
            write(stmt)
            written += len(stmt)
        write(tail)

    def generate(self, path, size):
        digest = hashlib.sha256()
        weights = {'interval_list': 0.6, 'electrode': 0.15, 'analysis_nwbfile': 0.2, 'session': 0.05}
        if self.profile == 'text':
            weights = {'interval_list': 0.1, 'electrode': 0.3, 'analysis_nwbfile': 0.2, 'session': 0.4}
        with open(path, 'wb') as f:
            def write(data, expected=None):
                f.write(data)
                digest.update(data if expected is None else expected)
            write(HEADER)
            total = 0
            part = 0
            while total < size:
                # Spyglass exports concatenate one mysqldump per table: repeat the tables.
                for name, weight in weights.items():
                    quota = max(1, int(min(size - total, 64 << 20) * weight))
                    before = f.tell()
                    self._table(name, quota, write)
                    total += f.tell() - before
                part += 1
            write(FOOTER)
        return digest.hexdigest()


def parse_size(text):
    m = re.match(r'^(\d+(?:\.\d+)?)([KMG]?)$', text.upper())
    if not m:
        raise argparse.ArgumentTypeError('size like 100M or 1G, not %r' % text)
    return int(float(m.group(1)) * {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}[m.group(2)])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def sanitize_cli(path, dest=None):
    """The ``--sanitize`` entry: what the module does, without Ansible around it."""
    from ansible_collections.labops.services.plugins.module_utils._mysql_export_sanitize import (
        MysqlExportSanitizer, SanitizeOptions)
    options = SanitizeOptions(collation_map=COLLATION_MAP, column_lengths=COLUMN_LENGTHS)
    start = time.perf_counter()
    result = MysqlExportSanitizer(path, dest=dest, options=options).run()
    seconds = time.perf_counter() - start
    print('RESULT seconds=%.3f bytes_in=%d statements_changed=%d changed=%s'
          % (seconds, result['bytes_in'], result['statements_changed'], result['changed']))


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sed(path):
    """Upstream's way: two in-place passes. Returns (wall seconds, CPU seconds)."""
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.check_call(['sed', '-i', 's/ DEFAULT CHARSET=[^ ;]*//g', path])
    subprocess.check_call(['sed', '-i', 's/ DEFAULT COLLATE [^ ;]*//g', path])
    return time.perf_counter() - start, _children_cpu() - cpu


def run_module(path):
    """The --sanitize entry under /usr/bin/time -v: (wall, CPU, seconds inside the class, peak RSS KiB)."""
    cmd = ['/usr/bin/time', '-v', sys.executable, os.path.abspath(__file__), '--sanitize', path]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit('module run failed:\n%s%s' % (proc.stdout.decode(), proc.stderr.decode()))

    def field(name):
        return float(re.search(name.encode() + rb': ([\d.]+)', proc.stderr).group(1))
    inner = float(re.search(rb'RESULT seconds=([\d.]+)', proc.stdout).group(1))
    cpu = field(r'User time \(seconds\)') + field(r'System time \(seconds\)')
    return seconds, cpu, inner, int(field(r'Maximum resident set size \(kbytes\)'))


def count_sed_damage(original, sed_output):
    """Data rows sed changed: INSERT lines that differ (both files have the same line count)."""
    damaged = 0
    with open(original, 'rb') as a, open(sed_output, 'rb') as b:
        for la, lb in zip(a, b):
            if la != lb and la.startswith(b'INSERT'):
                damaged += la.count(b'DEFAULT CHARSET=') + la.count(b'DEFAULT COLLATE ')
    return damaged


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='100M,1G', help='comma-separated dump sizes (default: 100M,1G)')
    parser.add_argument('--profile', choices=('spyglass', 'text'), default='spyglass')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each tool per size, alternating (median is reported)')
    parser.add_argument('--tmpdir', default=os.environ.get('TMPDIR') or tempfile.gettempdir(),
                        help='where the dumps are generated (needs about 3x the largest size free)')
    parser.add_argument('--keep', action='store_true', help='keep the generated dumps')
    parser.add_argument('--sanitize', metavar='PATH', help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.sanitize:
        sanitize_cli(args.sanitize)
        return
    for tool in ('sed', '/usr/bin/time'):
        if not shutil.which(tool):
            sys.exit('%s is required (Debian: apt-get install sed time)' % tool)

    work = tempfile.mkdtemp(prefix='bench-mysql-export-sanitize-', dir=args.tmpdir)
    rows = []
    try:
        for size in [parse_size(s) for s in args.sizes.split(',')]:
            source = os.path.join(work, 'dump-%d.sql' % size)
            t0 = time.perf_counter()
            expected = Generator(args.profile).generate(source, size)
            real_size = os.path.getsize(source)
            print('generated %s (%.1f MB, %s profile) in %.0fs' % (source, real_size / 1e6, args.profile, time.perf_counter() - t0))
            sed_runs, mod_runs, rss = [], [], []
            copy = os.path.join(work, 'copy.sql')
            for i in range(args.repeat):
                shutil.copyfile(source, copy)
                subprocess.check_call(['sync', copy])
                sed_runs.append(run_sed(copy))
                if i == 0:
                    damaged = count_sed_damage(source, copy)
                shutil.copyfile(source, copy)
                subprocess.check_call(['sync', copy])
                seconds, cpu, inner, peak = run_module(copy)
                mod_runs.append((seconds, cpu))
                rss.append(peak)
                if i == 0 and sha256_file(copy) != expected:
                    sys.exit('module output differs from the expected dump: %s' % copy)
                print('  run %d: sed %.2fs (%.2fs CPU), module %.2fs (%.2fs CPU, %.2fs inside the class), peak RSS %.1f MB'
                      % (i + 1, sed_runs[-1][0], sed_runs[-1][1], seconds, cpu, inner, peak / 1024.0))
            sed_s = statistics.median(r[0] for r in sed_runs)
            mod_s = statistics.median(r[0] for r in mod_runs)
            sed_cpu = statistics.median(r[1] for r in sed_runs)
            mod_cpu = statistics.median(r[1] for r in mod_runs)
            rows.append((real_size, real_size / sed_s / 1e6, real_size / mod_s / 1e6, sed_s / mod_s, sed_cpu, mod_cpu,
                         max(rss) / 1024.0, damaged))
            os.unlink(copy)
            if not args.keep:
                os.unlink(source)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print('profile %s, python %s, %d CPUs, load average %.1f at the end; median of %d alternating runs;'
          % (args.profile, sys.version.split()[0], os.cpu_count() or 0, os.getloadavg()[0], args.repeat))
    print('MB/s = input size / wall time; sed = two "sed -i" passes (no fsync), module = whole run incl. fsync')
    header = ('size', 'sed MB/s', 'module MB/s', 'ratio', 'sed CPU s', 'module CPU s', 'RSS MB', 'sed broke')
    print('%8s %12s %12s %7s %12s %12s %9s %11s' % header)
    for size, sed_rate, mod_rate, ratio, sed_cpu, mod_cpu, peak, damaged in rows:
        values = (size / 1e6, sed_rate, mod_rate, ratio, sed_cpu, mod_cpu, peak, damaged)
        print('%7.0fM %12.0f %12.0f %6.2fx %12.2f %12.2f %9.1f %11d' % values)


if __name__ == '__main__':
    main()
