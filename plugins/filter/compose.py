# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters for writing Compose files safely."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

REDACTED = '********'


def dotenv_quote(value):
    """Quote ``value`` for a Compose ``.env`` file so it arrives byte for byte.

    Compose reads double-quoted values with backslash escapes and ``$`` interpolation; escaping
    ``\\``, ``"``, ``$`` and newlines makes any string (quotes, spaces, dollars) literal.
    """
    if isinstance(value, bool):
        value = 'true' if value else 'false'
    if not isinstance(value, string_types):
        value = str(value)
    if '\r' in value or '\x00' in value:
        raise AnsibleFilterError('dotenv_quote: carriage returns and NUL bytes cannot be stored in a .env value')
    escaped = (value.replace('\\', '\\\\').replace('"', '\\"').replace('$', '\\$').replace('\n', '\\n'))
    return '"%s"' % escaped


def redact(text, secrets, min_length=4):
    """Replace every occurrence of each secret in ``text`` with ``********``.

    Secrets shorter than ``min_length`` are left alone (they would blank out ordinary words).
    Longer secrets are replaced first, so one secret containing another is fully hidden.
    """
    if not isinstance(text, string_types):
        text = str(text)
    values = sorted({str(s) for s in (secrets or []) if s is not None and len(str(s)) >= min_length},
                    key=len, reverse=True)
    for value in values:
        text = text.replace(value, REDACTED)
    return text


class FilterModule(object):

    def filters(self):
        return {
            'dotenv_quote': dotenv_quote,
            'redact': redact,
        }
