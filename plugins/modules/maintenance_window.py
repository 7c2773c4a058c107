#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: maintenance_window
short_description: Refuse a daily reboot window that collides with a backup schedule
version_added: 0.1.0
description:
  - Checks a daily reboot window (O(start), lasting O(minutes)) against backup schedules, and fails naming every
    schedule that collides with it. Used by the C(base) role before it lets unattended upgrades reboot a host.
  - The schedules are the C(OnCalendar=) and C(RandomizedDelaySec=) lines of the timers matching O(timer_glob)
    on the host (the backup role's C(labops-backup-*.timer)), plus O(schedules), for jobs not installed yet.
  - The host's own systemd evaluates each expression (C(systemd-analyze calendar --iterations=N)) in the host's
    time zone, exactly as its timers will. A backup occupies its start time, plus its random delay, plus
    O(run_minutes); any overlap of that time of day with the window is a collision.
  - The module never changes anything.
author:
  - labops.services developers (!UNKNOWN)
requirements:
  - systemd-analyze on the managed host
extends_documentation_fragment:
  - labops.services.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; check mode runs the same check.
  diff_mode:
    support: none
  idempotent:
    support: full
  safe_file_operations:
    support: none
options:
  start:
    description: Time of day the window opens (C(HH:MM), host's time zone), e.g. unattended-upgrades' C(Automatic-Reboot-Time).
    type: str
    required: true
  minutes:
    description: How long the window lasts (reboot and services back up).
    type: int
    default: 30
  run_minutes:
    description: How long a backup may run after it starts.
    type: int
    default: 60
  timer_glob:
    description: Shell pattern of the timer units on the host to check. An empty string checks none.
    type: str
    default: /etc/systemd/system/labops-backup-*.timer
  schedules:
    description: Further schedules to check, for backup jobs not on the host yet.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: What the schedule belongs to, for the error message.
        type: str
        required: true
      calendar:
        description: A systemd C(OnCalendar) expression.
        type: str
        required: true
      randomized_delay:
        description: A systemd time span, as C(RandomizedDelaySec).
        type: str
        default: "0"
  iterations:
    description: How many elapses of each expression systemd computes (a weekly schedule needs one per weekday it runs).
    type: int
    default: 14
'''

EXAMPLES = r'''
---
- name: Refuse a reboot window that collides with a backup
  labops.services.maintenance_window:
    start: "05:30"
    minutes: 30
    schedules:
      - name: datalab/daily-snapshots
        calendar: "*-*-* 04:05:00"
        randomized_delay: 15m
'''

RETURN = r'''
window:
  description: The window checked.
  returned: always
  type: dict
  sample: {start: "05:30", end: "06:00", minutes: 30}
schedules:
  description: Every schedule checked, with the times of day it starts.
  returned: always
  type: list
  elements: dict
  sample: [{name: /etc/systemd/system/labops-backup-alyx-db.timer, calendar: "*-*-* 02:30:00",
            randomized_delay_seconds: 900, starts: ["02:30"], collides: false}]
conflicts:
  description: The schedules that collide with the window (the task fails when there is any).
  returned: always
  type: list
  elements: dict
'''

import glob

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.labops.services.plugins.module_utils._maintenance_window import WindowCheck, WindowError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            start=dict(type='str', required=True),
            minutes=dict(type='int', default=30),
            run_minutes=dict(type='int', default=60),
            timer_glob=dict(type='str', default='/etc/systemd/system/labops-backup-*.timer'),
            schedules=dict(type='list', elements='dict', default=[], options=dict(
                name=dict(type='str', required=True),
                calendar=dict(type='str', required=True),
                randomized_delay=dict(type='str', default='0'),
            )),
            iterations=dict(type='int', default=14),
        ),
        supports_check_mode=True,
    )
    params = module.params
    analyze_bin = module.get_bin_path('systemd-analyze', required=True)

    def analyze(calendars, iterations):
        rc, out, err = module.run_command([analyze_bin, 'calendar', '--iterations=%d' % iterations] + calendars)
        if rc != 0:
            raise WindowError('systemd-analyze calendar refused %s: %s' % (calendars, (err or out).strip()))
        return out

    result = {'window': {}, 'schedules': [], 'conflicts': []}
    try:
        check = WindowCheck(params['start'], params['minutes'], params['run_minutes'], analyze,
                            iterations=params['iterations'])
        result['window'] = check.window()
        for path in sorted(glob.glob(params['timer_glob'])) if params['timer_glob'] else []:
            check.add_timer_file(path)
        for item in params['schedules']:
            check.add_schedule(item['name'], item['calendar'], item['randomized_delay'])
        result.update(check.run())
    except WindowError as exc:
        if len(exc.args) > 1:
            result.update(exc.args[1])
        module.fail_json(msg='maintenance_window: %s' % exc.args[0], changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
