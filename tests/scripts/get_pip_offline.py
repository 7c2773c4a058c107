# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the ``get-pip.py`` that ``ansible-test`` downloads.

``ansible-test sanity --local`` bootstraps pip in its virtual environments with a
get-pip script fetched from a host these machines cannot reach. This stand-in, placed in
ansible-test's cache by ``tests/scripts/sanity.sh``, does the same job with what Python
already has: ``ensurepip`` for a first pip, then that pip installs the pinned packages
ansible-test asked for (from the package index the machine is configured with).
"""

import subprocess
import sys

DROPPED = {'--no-setuptools', '--no-wheel'}


def main():
    args = [arg for arg in sys.argv[1:] if arg not in DROPPED]
    subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
    if args:
        subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)


if __name__ == '__main__':
    main()
