# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Does a daily reboot window collide with a backup schedule?

Private to this collection (leading underscore). No Ansible imports: the module
``labops.services.maintenance_window`` is a thin wrapper around :class:`WindowCheck`,
which is unit-tested directly.

The calendar arithmetic is not re-implemented here: the host's own systemd evaluates
every OnCalendar expression (``systemd-analyze calendar --iterations=N``), in the host's
time zone, exactly as its timers will. This module reads that output and compares times
of day:

    check = WindowCheck('05:30', 30, run_minutes=60, analyze=run_systemd_analyze)
    check.add_timer_file('/etc/systemd/system/labops-backup-alyx-db.timer')
    check.add_schedule('declared', '*-*-* 02:30:00', '15m')
    check.run()    # -> result dict; raises WindowError naming each collision

A backup is taken to occupy [start, start + RandomizedDelaySec + run_minutes]; the reboot
window is [start, start + minutes]. Both are daily times of day and may wrap midnight.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

MINUTES_PER_DAY = 24 * 60

_TIMESPAN_UNITS = {
    'us': 1e-6, 'usec': 1e-6, 'ms': 1e-3, 'msec': 1e-3,
    's': 1, 'sec': 1, 'second': 1, 'seconds': 1,
    'm': 60, 'min': 60, 'minute': 60, 'minutes': 60,
    'h': 3600, 'hr': 3600, 'hour': 3600, 'hours': 3600,
    'd': 86400, 'day': 86400, 'days': 86400,
    'w': 604800, 'week': 604800, 'weeks': 604800,
}
_TIMESPAN_PART = re.compile(r'(\d+(?:\.\d+)?)\s*([a-z]*)')
_ELAPSE_LINE = re.compile(
    r'^\s*(?:Next elapse|Iter(?:\.|ation) #\d+):\s+\S+\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)')
_CLOCK = re.compile(r'^([01]?\d|2[0-3]):([0-5]\d)$')


class WindowError(Exception):
    """The window or a schedule is unusable, or they collide; the message says which."""


def parse_timespan(text):
    """Seconds in a systemd time span ("15m", "1h 30min", "90" = seconds)."""
    text = (text or '').strip().lower()
    if not text:
        return 0
    total, pos = 0.0, 0
    for match in _TIMESPAN_PART.finditer(text):
        if text[pos:match.start()].strip():
            break
        number, unit = match.groups()
        if unit not in _TIMESPAN_UNITS and unit != '':
            raise WindowError('%r is not a systemd time span (unknown unit %r)' % (text, unit))
        total += float(number) * _TIMESPAN_UNITS.get(unit, 1)
        pos = match.end()
    if text[pos:].strip():
        raise WindowError('%r is not a systemd time span' % text)
    return int(total)


def parse_timer_unit(text):
    """(OnCalendar expressions, RandomizedDelaySec) of a systemd .timer file's [Timer] section."""
    calendars, delay, section = [], '0', None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1]
            continue
        if section != 'Timer' or '=' not in line:
            continue
        key, value = [part.strip() for part in line.split('=', 1)]
        if key == 'OnCalendar':
            if value:
                calendars.append(value)
            else:
                calendars = []      # an empty assignment resets the list, as systemd does
        elif key == 'RandomizedDelaySec':
            delay = value
    return calendars, delay


def parse_elapses(output):
    """Every elapse time in ``systemd-analyze calendar --iterations=N`` output, one list per expression."""
    blocks, current = [], None
    for line in output.splitlines():
        if line.strip().startswith('Normalized form:'):     # always printed; "Original form" is not
            current = []
            blocks.append(current)
            continue
        match = _ELAPSE_LINE.match(line)
        if match and current is not None:
            current.append(datetime.datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S'))
    return blocks


def parse_clock(text):
    """Minutes after midnight of "HH:MM"."""
    match = _CLOCK.match((text or '').strip())
    if not match:
        raise WindowError('%r is not a time of day (HH:MM, 24-hour clock)' % (text,))
    return int(match.group(1)) * 60 + int(match.group(2))


def _clock(minutes):
    minutes = int(minutes) % MINUTES_PER_DAY
    return '%02d:%02d' % (minutes // 60, minutes % 60)


def daily_overlap(a_start, a_length, b_start, b_length):
    """Do two daily intervals (minutes after midnight, lengths in minutes) overlap?"""
    if a_length >= MINUTES_PER_DAY or b_length >= MINUTES_PER_DAY:
        return True
    for shift in (-MINUTES_PER_DAY, 0, MINUTES_PER_DAY):
        start = b_start + shift
        if a_start < start + b_length and start < a_start + a_length:
            return True
    return False


class WindowCheck(object):
    """A daily reboot window checked against backup schedules."""

    def __init__(self, start, minutes, run_minutes, analyze, iterations=14):
        self.start = parse_clock(start)
        self.minutes = int(minutes)
        self.run_minutes = int(run_minutes)
        if self.minutes <= 0 or self.minutes >= MINUTES_PER_DAY:
            raise WindowError('the reboot window must last between 1 minute and 23:59 (got %s)' % minutes)
        if self.run_minutes < 0:
            raise WindowError('a backup cannot run for a negative time (got %s minutes)' % run_minutes)
        self.analyze = analyze
        self.iterations = int(iterations)
        self.schedules = []

    def add_schedule(self, name, calendar, randomized_delay='0'):
        self.schedules.append({'name': name, 'calendar': calendar,
                               'randomized_delay_seconds': parse_timespan(randomized_delay)})

    def add_timer_file(self, path, name=None):
        try:
            with open(path) as handle:
                calendars, delay = parse_timer_unit(handle.read())
        except (IOError, OSError) as exc:
            raise WindowError('cannot read timer %s: %s' % (path, exc))
        for calendar in calendars:
            self.add_schedule(name or path, calendar, delay)

    def window(self):
        return {'start': _clock(self.start), 'end': _clock(self.start + self.minutes), 'minutes': self.minutes}

    def run(self):
        checked, conflicts = [], []
        if self.schedules:
            output = self.analyze([item['calendar'] for item in self.schedules], self.iterations)
            blocks = parse_elapses(output)
            if len(blocks) != len(self.schedules):
                raise WindowError('systemd-analyze evaluated %d of %d calendar expressions: %s'
                                  % (len(blocks), len(self.schedules), output.strip()[-300:]))
            for item, elapses in zip(self.schedules, blocks):
                occupied = self.run_minutes + item['randomized_delay_seconds'] / 60.0
                starts = sorted(set(elapse.hour * 60 + elapse.minute for elapse in elapses))
                hits = [minute for minute in starts if daily_overlap(self.start, self.minutes, minute, occupied)]
                entry = dict(item, starts=[_clock(minute) for minute in starts], collides=bool(hits))
                checked.append(entry)
                if hits:
                    conflicts.append(entry)
        result = {'window': self.window(), 'run_minutes': self.run_minutes, 'schedules': checked,
                  'conflicts': conflicts}
        if conflicts:
            raise WindowError(self.describe(conflicts), result)
        return result

    def describe(self, conflicts):
        window = self.window()
        lines = []
        for entry in conflicts:
            delay = entry['randomized_delay_seconds'] // 60
            lines.append('%s (OnCalendar=%s, starts %s, +%d min random delay, +%d min to run)'
                         % (entry['name'], entry['calendar'], ', '.join(entry['starts']), delay, self.run_minutes))
        return ('the reboot window %s-%s collides with %d backup schedule(s): %s. Move the reboot time, '
                'or the backup schedule, so that a backup can finish before the window opens'
                % (window['start'], window['end'], len(conflicts), '; '.join(lines)))
