# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.labops.services.plugins.filter.compose import dotenv_quote, redact


def unquote_like_compose(quoted):
    """Decode a double-quoted .env value the way Compose's dotenv parser does."""
    assert quoted[0] == quoted[-1] == '"'
    body, out, i = quoted[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char == '\\':
            nxt = body[i + 1]
            out.append({'n': '\n', '\\': '\\', '"': '"', '$': '$'}[nxt])
            i += 2
            continue
        assert char not in '"$', 'unescaped %r would end the value or interpolate' % char
        out.append(char)
        i += 1
    return ''.join(out)


@pytest.mark.parametrize('value', [
    'plain',
    "it's",
    'say "hi"',
    'cost $5 and ${HOME} and $$',
    'back\\slash\\\\double',
    'multi\nline',
    'spaces  and\ttabs ',
    '',
    'ünïcödé',
])
def test_dotenv_quote_round_trips(value):
    assert unquote_like_compose(dotenv_quote(value)) == value


def test_dotenv_quote_non_strings():
    assert dotenv_quote(5432) == '"5432"'
    assert dotenv_quote(True) == '"true"'


def test_dotenv_quote_refuses_what_dotenv_cannot_hold():
    with pytest.raises(AnsibleFilterError, match='carriage returns'):
        dotenv_quote('a\rb')


def test_redact_hides_every_secret_longest_first():
    text = 'user=admin pw=hunter22 token=hunter22-extended'
    assert redact(text, ['hunter22', 'hunter22-extended']) == 'user=admin pw=******** token=********'


def test_redact_leaves_short_values_and_non_secrets():
    assert redact('port 80 is open', ['80', None, '']) == 'port 80 is open'
    assert redact('nothing secret', []) == 'nothing secret'
