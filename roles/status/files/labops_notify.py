# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops-notify: tell the lab admin that a systemd unit failed, by webhook and/or e-mail.

Installed by the labops.services status role as /usr/local/sbin/labops-notify and started by
the template unit labops-notify@.service, which the backup units (backup_on_failure_unit) and
the certificate expiry check (certbot_on_failure_unit) name in OnFailure=:

    labops-notify [--config FILE] UNIT      UNIT failed: send its `systemctl status` (last lines)
    labops-notify [--config FILE] --test    send a test message

The configuration (/etc/labops/notify.json, mode 0600: it holds the SMTP password or the
webhook's secret URL) has a "webhook" and/or an "email" object:
    {"webhook": {"url": "https://chat.example.org/hooks/xyz", "headers": {}},
     "email": {"to": ["admin@lab.example"], "from": "labops@lab.example", "host": "smtp.lab.example",
               "port": 587, "security": "starttls", "username": "", "password": ""}}
The webhook gets a JSON POST {"text", "host", "unit", "subject"}: "text" is what Slack-, Mattermost-
and Rocket.Chat-style incoming webhooks display. Exit status 1 when a channel failed (one line
each on stderr, never a credential), 2 for a bad configuration.
"""

from __future__ import absolute_import, division, print_function

import argparse
import json
import smtplib
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from email.message import EmailMessage

PROG = 'labops-notify'
DEFAULT_CONFIG = '/etc/labops/notify.json'
STATUS_LINES = 30


class NotifyError(Exception):
    pass


def load_config(path):
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise NotifyError('cannot read %s: %s' % (path, exc))
    if not isinstance(config, dict) or not (config.get('webhook') or config.get('email')):
        raise NotifyError('%s configures no channel: give it "webhook" and/or "email"' % path)
    email = config.get('email')
    if email and not (email.get('to') and email.get('host') and email.get('from')):
        raise NotifyError('%s: "email" needs "to", "from" and "host"' % path)
    if email and email.get('security', 'starttls') not in ('starttls', 'tls', 'none'):
        raise NotifyError('%s: email "security" must be starttls, tls or none' % path)
    if config.get('webhook') and not str(config['webhook'].get('url', '')).startswith(('http://', 'https://')):
        raise NotifyError('%s: webhook "url" must be an http(s) URL' % path)
    return config


def unit_status(unit, run=subprocess.run):
    """The unit's `systemctl status` with its last journal lines (what an admin would look at)."""
    try:
        process = run(['systemctl', 'status', '--no-pager', '--full', '--lines=%d' % STATUS_LINES, unit],
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=30, check=False)
        return process.stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return '(systemctl status %s: %s)' % (unit, exc)


def message_for(unit, host, status_text):
    if unit is None:
        subject = '[labops] test notification from %s' % host
        text = '%s: notifications from labops-notify reach you.' % subject
    else:
        subject = '[labops] %s failed on %s' % (unit, host)
        text = '%s\n\n%s\n\nSee `journalctl -u %s` on %s; `labops-status report` there (or playbooks/status.yml) ' \
               'checks everything.' % (subject, status_text, unit, host)
    return {'subject': subject, 'text': text, 'host': host, 'unit': unit}


def send_webhook(webhook, message, opener=urllib.request.urlopen):
    headers = {'Content-Type': 'application/json', 'User-Agent': PROG}
    headers.update(webhook.get('headers') or {})
    request = urllib.request.Request(webhook['url'], data=json.dumps(message).encode('utf-8'), headers=headers,
                                     method='POST')
    try:
        with opener(request, timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise NotifyError('webhook answered HTTP %d' % exc.code)
    except (urllib.error.URLError, OSError) as exc:
        raise NotifyError('webhook unreachable: %s' % getattr(exc, 'reason', exc))


def send_email(email, message, smtp_class=None):
    mail = EmailMessage()
    mail['Subject'] = message['subject']
    mail['From'] = email['from']
    mail['To'] = ', '.join(email['to'] if isinstance(email['to'], list) else [email['to']])
    mail.set_content(message['text'])
    security = email.get('security', 'starttls')
    port = int(email.get('port') or (465 if security == 'tls' else 587 if security == 'starttls' else 25))
    if smtp_class is None:
        smtp_class = smtplib.SMTP_SSL if security == 'tls' else smtplib.SMTP
    try:
        kwargs = {'context': ssl.create_default_context()} if security == 'tls' else {}
        with smtp_class(email['host'], port, timeout=30, **kwargs) as smtp:
            if security == 'starttls':
                smtp.starttls(context=ssl.create_default_context())
            if email.get('username'):
                smtp.login(email['username'], email.get('password', ''))
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError('SMTP login as %s refused (%d)' % (email['username'], exc.smtp_code))
    except smtplib.SMTPResponseException as exc:
        raise NotifyError('e-mail via %s:%d refused: SMTP %d' % (email['host'], port, exc.smtp_code))
    except (smtplib.SMTPException, OSError) as exc:
        raise NotifyError('e-mail via %s:%d failed: %s' % (email['host'], port, exc))


def notify(config, message, senders=None):
    """Send on every configured channel; the failures, one line each."""
    senders = senders or {'webhook': send_webhook, 'email': send_email}
    failures = []
    for channel in ('webhook', 'email'):
        if config.get(channel):
            try:
                senders[channel](config[channel], message)
            except NotifyError as exc:
                failures.append('%s: %s' % (channel, exc))
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description='Tell the lab admin that a systemd unit failed.')
    parser.add_argument('--config', default=DEFAULT_CONFIG)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument('unit', nargs='?', help='the unit that failed (labops-notify@.service passes %%i)')
    what.add_argument('--test', action='store_true', help='send a test message')
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except NotifyError as exc:
        sys.stderr.write('%s: error: %s\n' % (PROG, exc))
        return 2
    host = socket.getfqdn()
    message = message_for(None if args.test else args.unit, host, '' if args.test else unit_status(args.unit))
    failures = notify(config, message)
    for failure in failures:
        sys.stderr.write('%s: error: %s\n' % (PROG, failure))
    if not failures:
        sys.stdout.write('%s: sent "%s"\n' % (PROG, message['subject']))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
