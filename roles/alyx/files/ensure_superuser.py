# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make Alyx's superuser and its REST API token what the deployer says, and report what changed.

Run inside the web container by ``manage.py shell -c "<this file>"`` (the alyx role puts it in
the ``superuser`` step of labops-alyx-db's configuration). It reads ONE JSON object on stdin:
``{"username", "email", "password", "token"}`` (the secrets file the role keeps on the host,
mode 0600); nothing secret is ever printed. ``LABOPS_ALYX_CHECK=1`` in the environment only
reports. The last line on stdout is ``{"changed": bool, "changes": [...]}``.

Upstream (iblalyx's ``create_su``) creates the superuser with ``create_superuser`` and
``is_stock_manager=True``, then ``drf_create_token``; this does the same, idempotently, and
puts back a token that a dump load replaced.
"""

import json
import os
import sys

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

spec = json.load(sys.stdin)
check = os.environ.get('LABOPS_ALYX_CHECK') == '1'
User = get_user_model()
field_names = set(field.name for field in User._meta.get_fields())
wanted_flags = dict((name, True) for name in ('is_superuser', 'is_staff', 'is_active', 'is_stock_manager')
                    if name in field_names)
changes = []
with transaction.atomic():
    user = User.objects.filter(username=spec['username']).first()
    if user is None:
        changes += ['created user %s' % spec['username'], 'token']
        if not check:
            extra = dict((name, value) for name, value in wanted_flags.items() if name not in ('is_superuser', 'is_staff'))
            user = User.objects.create_superuser(username=spec['username'], email=spec['email'],
                                                 password=spec['password'], **extra)
    else:
        for name, value in sorted(wanted_flags.items()):
            if getattr(user, name) != value:
                changes.append(name)
                setattr(user, name, value)
        if user.email != spec['email']:
            changes.append('email')
            user.email = spec['email']
        if not user.check_password(spec['password']):
            changes.append('password')
            user.set_password(spec['password'])
        if changes and not check:
            user.save()
        current = Token.objects.filter(user=user).first()
        if current is None or current.key != spec['token']:
            changes.append('token')
    if 'token' in changes and not check:
        Token.objects.filter(user=user).exclude(key=spec['token']).delete()
        Token.objects.filter(key=spec['token']).exclude(user=user).delete()
        Token.objects.get_or_create(user=user, key=spec['token'])
    # alyx-local's migration misc.00010 creates a superuser admin/admin: with another superuser
    # name, that account keeps no usable password (with the name admin, it got the real one above).
    default_admin = User.objects.filter(username='admin').exclude(username=spec['username']).first()
    if default_admin is not None and default_admin.check_password('admin'):
        changes.append('disabled the password of the default admin account')
        if not check:
            default_admin.set_unusable_password()
            default_admin.save()
print(json.dumps({'changed': bool(changes), 'changes': changes}))
