# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reboot window check: time spans, timer files, systemd-analyze output, overlaps."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess

import pytest

from ansible_collections.labops.services.plugins.module_utils._maintenance_window import (
    WindowCheck, WindowError, daily_overlap, parse_clock, parse_elapses, parse_timer_unit, parse_timespan)

SYSTEMD_252 = """  Original form: daily
Normalized form: *-*-* 00:00:00
    Next elapse: Mon 2026-11-23 00:00:00 UTC
       From now: 12h left
       Iter. #2: Tue 2026-11-24 00:00:00 UTC
       From now: 1 day 12h left

  Original form: Mon *-*-* 03:05
Normalized form: Mon *-*-* 03:05:00
    Next elapse: Mon 2026-11-23 03:05:00 CET
       (in UTC): Mon 2026-11-23 02:05:00 UTC
       From now: 15h left
"""
SYSTEMD_257 = """Normalized form: *-*-* 02:30:00
    Next elapse: Mon 2026-11-23 02:30:00 UTC
       From now: 14h left
   Iteration #2: Tue 2026-11-24 02:30:00 UTC
       From now: 1 day 14h left
"""


def real_analyze(calendars, iterations):
    return subprocess.run(['systemd-analyze', 'calendar', '--iterations=%d' % iterations] + calendars,
                          check=True, capture_output=True, text=True, env=dict(os.environ, TZ='UTC')).stdout


@pytest.mark.parametrize('text, seconds', [
    ('', 0), ('0', 0), ('90', 90), ('15m', 900), ('15min', 900), ('1h 30min', 5400), ('2h', 7200),
    ('1d', 86400), ('500ms', 0), ('1.5h', 5400),
])
def test_time_spans_read_as_systemd_does(text, seconds):
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize('text', ['soon', '15 parsecs', '1h later'])
def test_a_time_span_that_is_not_one_is_refused(text):
    with pytest.raises(WindowError, match='not a systemd time span'):
        parse_timespan(text)


def test_timer_files_give_their_calendars_and_delay():
    calendars, delay = parse_timer_unit(
        '[Unit]\nDescription=x\nOnCalendar=ignored outside [Timer]\n\n[Timer]\n# a comment\n'
        'OnCalendar=*-*-* 02:30:00\nOnCalendar=Sun 04:00\nRandomizedDelaySec=15m\nPersistent=true\n')
    assert calendars == ['*-*-* 02:30:00', 'Sun 04:00']
    assert delay == '15m'
    assert parse_timer_unit('[Timer]\nOnCalendar=daily\nOnCalendar=\nOnCalendar=weekly\n')[0] == ['weekly']


@pytest.mark.parametrize('output', [SYSTEMD_252, SYSTEMD_257])
def test_both_systemd_output_formats_are_read(output):
    blocks = parse_elapses(output)
    assert all(blocks) and blocks[0][0].hour in (0, 2)


def test_times_in_the_hosts_zone_are_kept_not_converted_to_utc():
    blocks = parse_elapses(SYSTEMD_252)
    assert [e.strftime('%H:%M') for e in blocks[1]] == ['03:05']


@pytest.mark.parametrize('a, b, overlap', [
    ((120, 30), (150, 10), False),      # back to back: 02:00-02:30 then 02:30
    ((120, 30), (149, 10), True),
    ((1410, 60), (10, 5), True),        # 23:30-00:30 wraps midnight
    ((60, 30), (1430, 75), True),       # a backup at 23:50 running 75 min reaches 01:05
    ((60, 30), (1430, 70), False),      # ... 70 min ends as the window opens
])
def test_daily_intervals_overlap_across_midnight(a, b, overlap):
    assert daily_overlap(a[0], a[1], b[0], b[1]) is overlap


@pytest.mark.parametrize('text', ['25:00', '5', '05:7', 'noon', ''])
def test_a_window_start_must_be_a_clock_time(text):
    with pytest.raises(WindowError, match='time of day'):
        parse_clock(text)


needs_systemd = pytest.mark.skipif(shutil.which('systemd-analyze') is None, reason='needs systemd-analyze')


@needs_systemd
def test_the_official_datalab_collision_is_refused_with_names_and_times():
    """Their 02:00 auto-reboot against 02:xx backups: the case this check exists for."""
    check = WindowCheck('02:00', 30, run_minutes=60, analyze=real_analyze)
    check.add_schedule('alyx/db', '*-*-* 02:15:00', '15m')
    check.add_schedule('datalab/weekly-snapshots', 'Mon *-*-* 03:05:00', '15m')
    check.add_schedule('backup before the window', '*-*-* 00:10:00', '0')
    check.add_schedule('runs into the window', '*-*-* 01:10:00', '0')
    with pytest.raises(WindowError) as info:
        check.run()
    message, result = info.value.args
    assert [c['name'] for c in result['conflicts']] == ['alyx/db', 'runs into the window']
    assert 'reboot window 02:00-02:30' in message
    assert 'alyx/db (OnCalendar=*-*-* 02:15:00, starts 02:15, +15 min random delay, +60 min to run)' in message


@needs_systemd
def test_a_window_clear_of_every_backup_passes(tmp_path):
    timer = tmp_path / 'labops-backup-datalab-daily.timer'
    timer.write_text('[Timer]\nOnCalendar=*-*-* 04:05:00\nRandomizedDelaySec=15m\n')
    check = WindowCheck('05:30', 30, run_minutes=60, analyze=real_analyze)
    check.add_timer_file(str(timer))
    check.add_schedule('hourly job', '*-*-* 00/6:00:00', '0')     # 00, 06, 12, 18
    result = check.run()
    assert result['conflicts'] == []
    assert result['schedules'][0]['starts'] == ['04:05']
    assert result['schedules'][1]['starts'] == ['00:00', '06:00', '12:00', '18:00']
    assert result['window'] == {'start': '05:30', 'end': '06:00', 'minutes': 30}


@needs_systemd
def test_a_weekly_backup_on_any_day_counts():
    check = WindowCheck('03:00', 30, run_minutes=30, analyze=real_analyze)
    check.add_schedule('weekly', 'Sat *-*-* 03:10:00')
    with pytest.raises(WindowError, match='weekly'):
        check.run()


def test_an_unreadable_timer_is_named(tmp_path):
    check = WindowCheck('05:30', 30, run_minutes=60, analyze=None)
    with pytest.raises(WindowError, match='cannot read timer .*missing.timer'):
        check.add_timer_file(str(tmp_path / 'missing.timer'))


def test_output_that_misses_an_expression_is_an_error():
    check = WindowCheck('05:30', 30, run_minutes=60, analyze=lambda calendars, n: SYSTEMD_257)
    check.add_schedule('a', 'daily')
    check.add_schedule('b', 'weekly')
    with pytest.raises(WindowError, match='evaluated 1 of 2'):
        check.run()


@pytest.mark.parametrize('minutes', [0, -5, 1440])
def test_a_window_must_have_a_length(minutes):
    with pytest.raises(WindowError, match='must last'):
        WindowCheck('05:30', minutes, run_minutes=60, analyze=None)
