# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rows with distinctive values for the scenario's Alyx-shaped dumps, through Alyx's own models.

Run by ``manage.py shell --command "<this file>"`` in the web container of a throw-away stack
whose database was just migrated by the real app; ``LABOPS_SUBJECT_PREFIX`` and
``LABOPS_SUBJECT_COUNT`` say which subjects to create. Prints how many subjects carry the prefix.
"""

import os

from alyx.misc.models import Lab, LabMember
from alyx.subjects.models import Subject

prefix = os.environ['LABOPS_SUBJECT_PREFIX']
count = int(os.environ['LABOPS_SUBJECT_COUNT'])
lab = Lab.objects.get_or_create(name='flatiron_mirror_lab', defaults={'institution': 'labops scenario'})[0]
user = LabMember.objects.get_or_create(username='flatiron_dump_user', defaults={'is_stock_manager': True})[0]
for number in range(count):
    Subject.objects.get_or_create(nickname='%s-%03d' % (prefix, number),
                                  defaults={'lab': lab, 'responsible_user': user, 'sex': 'F'})
print(Subject.objects.filter(nickname__startswith=prefix).count())
