# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/status/files/labops_notify.py against real receivers on 127.0.0.1.

The webhook is an HTTP server thread; the e-mail goes to a minimal SMTP server thread (it
speaks the commands smtplib sends without STARTTLS or AUTH, and keeps the message). The Molecule
scenario datalab has a failed backup unit notify a webhook through labops-notify@.service.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import email
import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading

import pytest

from ansible_collections.labops.services.tests.unit.utils import load_program

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCRIPT = os.path.join(ROOT, 'roles', 'status', 'files', 'labops_notify.py')


ln = load_program(SCRIPT)


@pytest.fixture
def webhook():
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers['Content-Length']))
            received.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(500 if self.path == '/broken' else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield 'http://127.0.0.1:%d' % server.server_address[1], received
    server.shutdown()


@pytest.fixture
def smtp_server():
    received = []

    class Session(socketserver.StreamRequestHandler):
        def reply(self, text):
            self.wfile.write(text.encode() + b'\r\n')

        def handle(self):
            self.reply('220 test ESMTP')
            envelope = {'rcpt': []}
            while True:
                line = self.rfile.readline().decode().rstrip('\r\n')
                verb = line.split(' ')[0].upper()
                if verb in ('EHLO', 'HELO'):
                    self.reply('250 test')
                elif verb == 'MAIL':
                    envelope['from'] = line
                    self.reply('250 ok')
                elif verb == 'RCPT':
                    envelope['rcpt'].append(line)
                    self.reply('550 no such user' if 'nobody@' in line else '250 ok')
                elif verb == 'DATA':
                    self.reply('354 go on')
                    data = []
                    while True:
                        part = self.rfile.readline().decode()
                        if part.rstrip('\r\n') == '.':
                            break
                        data.append(part)
                    envelope['data'] = ''.join(data)
                    received.append(envelope)
                    self.reply('250 queued')
                elif verb == 'QUIT' or not line:
                    self.reply('221 bye')
                    return
                else:
                    self.reply('502 not here')

    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), Session)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()


MESSAGE = ln.message_for('labops-backup-alyx-db.service', 'lab-server', 'x labops-backup-alyx-db.service - ...\nerror: boom')


def test_the_message_names_the_unit_host_and_what_to_do():
    assert MESSAGE['subject'] == '[labops] labops-backup-alyx-db.service failed on lab-server'
    assert MESSAGE['text'].startswith(MESSAGE['subject'] + '\n\nx labops-backup-alyx-db.service')
    assert 'journalctl -u labops-backup-alyx-db.service' in MESSAGE['text']
    assert ln.message_for(None, 'h', '')['subject'] == '[labops] test notification from h'


def test_webhook_gets_a_json_post_with_text_and_the_headers(webhook):
    url, received = webhook
    assert ln.notify({'webhook': {'url': url + '/hooks/t0ken', 'headers': {'X-Token': 'abc'}}}, MESSAGE) == []
    [(path, headers, body)] = received
    assert path == '/hooks/t0ken' and headers['X-Token'] == 'abc' and headers['Content-Type'] == 'application/json'
    assert body == MESSAGE


def test_webhook_failures_are_one_line_without_the_url(webhook):
    url, _received = webhook
    assert ln.notify({'webhook': {'url': url + '/broken'}}, MESSAGE) == ['webhook: webhook answered HTTP 500']
    [failure] = ln.notify({'webhook': {'url': 'http://127.0.0.1:1/secret-token'}}, MESSAGE)
    assert failure.startswith('webhook: webhook unreachable:') and 'secret-token' not in failure


def test_email_is_sent_to_every_recipient(smtp_server):
    port, received = smtp_server
    settings = {'to': ['admin@lab.example', 'ops@lab.example'], 'from': 'labops@lab.example',
                'host': '127.0.0.1', 'port': port, 'security': 'none'}
    assert ln.notify({'email': settings}, MESSAGE) == []
    [envelope] = received
    assert len(envelope['rcpt']) == 2
    mail = email.message_from_string(envelope['data'])
    assert mail['Subject'] == MESSAGE['subject'] and mail['To'] == 'admin@lab.example, ops@lab.example'
    assert 'error: boom' in mail.get_payload(decode=True).decode()


def test_email_failures_are_reported_and_the_webhook_still_tried(smtp_server, webhook):
    port, _received = smtp_server
    url, hooks = webhook
    settings = {'to': ['nobody@lab.example'], 'from': 'labops@lab.example', 'host': '127.0.0.1', 'port': port,
                'security': 'none', 'password': 'hunter2'}
    failures = ln.notify({'email': settings, 'webhook': {'url': url}}, MESSAGE)
    assert len(failures) == 1 and failures[0].startswith('email: e-mail via 127.0.0.1:%d failed' % port)
    assert 'hunter2' not in failures[0]
    assert len(hooks) == 1


@pytest.mark.parametrize('config, fragment', [
    ({}, 'configures no channel'),
    ({'webhook': {'url': 'ftp://x'}}, 'webhook "url" must be an http(s) URL'),
    ({'email': {'to': ['a@b']}}, '"email" needs "to", "from" and "host"'),
    ({'email': {'to': ['a@b'], 'from': 'c@d', 'host': 'h', 'security': 'ssl'}}, 'must be starttls, tls or none'),
])
def test_bad_configurations_are_refused(tmp_path, config, fragment):
    path = tmp_path / 'notify.json'
    path.write_text(json.dumps(config))
    with pytest.raises(ln.NotifyError, match=fragment.replace('(', r'\(').replace(')', r'\)')):
        ln.load_config(str(path))


def test_the_command_sends_a_test_message(tmp_path, webhook):
    url, received = webhook
    path = tmp_path / 'notify.json'
    path.write_text(json.dumps({'webhook': {'url': url}}))
    process = subprocess.run([sys.executable, '-I', SCRIPT, '--config', str(path), '--test'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert process.returncode == 0, process.stderr
    assert received[0][2]['subject'].startswith('[labops] test notification from ')
    missing = subprocess.run([sys.executable, '-I', SCRIPT, '--config', str(tmp_path / 'none.json'), 'x.service'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith('labops-notify: error: cannot read ')
