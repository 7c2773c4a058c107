# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make ``ansible_collections.labops.services`` importable for plain pytest runs.

The repository root is the collection; ``collections/ansible_collections/labops/services``
is a symlink to it, so adding ``collections/`` to ``sys.path`` is enough.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
