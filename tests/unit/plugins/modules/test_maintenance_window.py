# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""maintenance_window end to end: timers found by glob, the host's systemd-analyze, one failure."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shutil

import pytest

from ansible_collections.labops.services.plugins.modules import maintenance_window
from ansible_collections.labops.services.tests.unit.utils import run_module

pytestmark = pytest.mark.skipif(shutil.which('systemd-analyze') is None, reason='needs systemd-analyze')


@pytest.fixture
def timers(tmp_path, monkeypatch):
    monkeypatch.setenv('TZ', 'UTC')
    (tmp_path / 'labops-backup-alyx-db.timer').write_text(
        '[Unit]\nDescription=x\n\n[Timer]\nOnCalendar=*-*-* 02:30:00\nRandomizedDelaySec=15m\n')
    (tmp_path / 'labops-backup-datalab-weekly.timer').write_text('[Timer]\nOnCalendar=Mon *-*-* 03:05:00\n')
    (tmp_path / 'other.timer').write_text('[Timer]\nOnCalendar=*-*-* 05:40:00\n')
    return str(tmp_path / 'labops-backup-*.timer')


def test_a_clear_window_passes_in_check_mode_and_changes_nothing(timers):
    result = run_module(maintenance_window, {'start': '05:30', 'timer_glob': timers}, check_mode=True)
    assert result['changed'] is False
    assert [s['starts'] for s in result['schedules']] == [['02:30'], ['03:05']]
    assert result['conflicts'] == []


def test_a_colliding_window_fails_naming_timer_and_declared_schedule(timers):
    result = run_module(maintenance_window, {
        'start': '03:00', 'minutes': 45, 'timer_glob': timers,
        'schedules': [{'name': 'vidjil/db', 'calendar': '*-*-* 23:30:00'}, {'name': 'late', 'calendar': '*-*-* 03:40'}],
    }, expect_failure=True)
    assert result['changed'] is False
    names = [c['name'] for c in result['conflicts']]
    assert names[0].endswith('labops-backup-alyx-db.timer')
    assert names[1].endswith('labops-backup-datalab-weekly.timer')
    assert names[2:] == ['late']
    assert result['msg'].startswith('maintenance_window: the reboot window 03:00-03:45 collides with 3 backup schedule(s)')


def test_an_expression_systemd_refuses_is_reported(timers):
    result = run_module(maintenance_window, {
        'start': '05:30', 'timer_glob': '', 'schedules': [{'name': 'bad', 'calendar': 'every other tuesday'}],
    }, expect_failure=True)
    assert 'systemd-analyze calendar refused' in result['msg']
