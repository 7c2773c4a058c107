#!/usr/bin/env python
# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark the file_set module against the tasks it replaces, on a run that changes nothing.

A role that writes a project's folders and files with ``ansible.builtin.file`` (one task item per
folder) and ``ansible.builtin.template`` (one per file) pays, on every run, one module run per
folder and two per file (``stat``, then ``file`` for the attributes), each starting Python on the
host and compiling Ansible's module code. ``labops.services.file_set`` checks them all in one
module run. Both playbooks below write the same ``--dirs`` folders and ``--files`` files
(templates rendered on the controller) into a temporary folder on this machine (local
connection, pipelining as in ansible.cfg); each is run once to create them, then ``--rounds``
times alternately with nothing to change. Medians, the ratio and each run's recap are printed;
the exit status is 1 when a no-change run reported a change or file_set is not faster.

    .venv/bin/python tests/benchmarks/bench_file_set.py                 # 5 folders, 12 files, 3 rounds
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAY_HEAD = """- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    root: {root}
    folders: "{{{{ range({dirs}) | map('string') | map('regex_replace', '^', root ~ '/d') | list }}}}"
    files: "{{{{ range({files}) | map('string') | list }}}}"
  tasks:
"""
WITH_CORE_TASKS = """    - name: Folders, one file task each
      ansible.builtin.file: {path: "{{ item }}", state: directory, mode: "0755"}
      loop: "{{ folders }}"
    - name: Files, one template task each
      ansible.builtin.template: {src: "{{ template }}", dest: "{{ root }}/d0/f{{ item }}.conf", mode: "0644"}
      loop: "{{ files }}"
"""
WITH_FILE_SET = """    - name: Render the files on the controller
      ansible.builtin.set_fact:
        rendered: "{{ (rendered | default([])) + [{'dest': root ~ '/d0/f' ~ item ~ '.conf', 'content': lookup('ansible.builtin.template', template)}] }}"
      loop: "{{ files }}"
    - name: Folders and files, one module run
      labops.services.file_set:
        directories: "{{ folders | map('community.general.dict_kv', 'path') | list }}"
        files: "{{ rendered }}"
"""


def run(playbook, template):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1')
    start = time.monotonic()
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,',
                             playbook, '-e', 'template=' + template,
                             '-e', 'ansible_python_interpreter=' + sys.executable], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    recap = re.search(r'localhost\s+: (ok=\d+\s+changed=\d+.*)', result.stdout)
    if result.returncode != 0 or not recap:
        sys.exit('%s failed:\n%s\n%s' % (playbook, result.stdout[-3000:], result.stderr[-2000:]))
    return elapsed, ' '.join(recap.group(1).split()[:2])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--dirs', type=int, default=5)
    parser.add_argument('--files', type=int, default=12)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='labops-bench-file-set-')
    try:
        template = os.path.join(work, 'app.conf.j2')
        with open(template, 'w') as handle:
            handle.write('# {{ item }}\nlisten {{ 8000 + item | int }};\n' + 'option = value\n' * 40)
        books = {}
        for name, tasks in (('core', WITH_CORE_TASKS), ('file_set', WITH_FILE_SET)):
            books[name] = os.path.join(work, name + '.yml')
            with open(books[name], 'w') as handle:
                handle.write(PLAY_HEAD.format(root=os.path.join(work, name), dirs=args.dirs, files=args.files) + tasks)
            run(books[name], template)   # the first run creates everything
        times = {'core': [], 'file_set': []}
        recaps = set()
        for index in range(args.rounds):
            for name in (('core', 'file_set') if index % 2 == 0 else ('file_set', 'core')):
                elapsed, recap = run(books[name], template)
                times[name].append(elapsed)
                recaps.add((name, recap))
        core, file_set = statistics.median(times['core']), statistics.median(times['file_set'])
        print('no-change run of %d folders and %d files, median of %d (local connection):'
              % (args.dirs, args.files, args.rounds))
        print('  file + template tasks  %6.2f s' % core)
        print('  file_set               %6.2f s' % file_set)
        print('  ratio file_set / core  %6.2f' % (file_set / core))
        for name, recap in sorted(recaps):
            print('  %-9s %s' % (name, recap))
        changed = [recap for name, recap in recaps if 'changed=0' not in recap]
        return 1 if changed or file_set >= core else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
