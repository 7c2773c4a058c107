# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The vidjil role's defs.py, conf.js and accounts SQL, rendered from its templates and defaults."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[3] / 'roles' / 'vidjil'
# web2py DAL's mysql URI pattern (what Vidjil's server parses DB_ADDRESS with).
WEB2PY_URI = re.compile(r'^mysql://(?P<user>[^:@]+)(:(?P<password>[^@]*))?@(?P<host>[^:/]+)(:(?P<port>\d+))?/(?P<db>[^?]+)$')


def render(template, **overrides):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / 'templates')), undefined=jinja2.StrictUndefined)
    env.filters['to_json'] = json.dumps
    env.filters['bool'] = bool
    variables = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    variables.update({
        'ansible_managed': 'managed by test', 'vidjil_fqdn': 'vidjil.lab.example',
        'vidjil_from_email': 'notifications@vidjil.lab.example', 'vidjil_public_url': 'https://vidjil.lab.example',
        'vidjil_project_dir': '/opt/labops/vidjil',
        'vidjil_db_password': 'p:ss/w0rd-with.marks', 'vidjil_backup_db_password': 'backup-secret-123',
        'vidjil_db_root_password': 'root-secret-1234',
        '__vidjil_smtp_server': '', '__vidjil_smtp_credentials': '',
    })
    variables.update(overrides)
    return env.get_template(template).render(**variables)


def defs(**overrides):
    namespace = {}
    exec(compile(render('server/defs.py.j2', **overrides), 'defs.py', 'exec'), namespace)  # noqa: S102
    return namespace


def test_defs_py_is_python_with_a_db_address_web2py_parses():
    d = defs()
    m = WEB2PY_URI.match(d['DB_ADDRESS'])
    assert m and m['user'] == 'vidjil' and m['password'] == 'p:ss/w0rd-with.marks'
    assert (m['host'], m['db']) == ('mysql', 'vidjil')
    assert d['FUSE_SERVER'] == 'fuse' and d['PORT_FUSE_SERVER'] == 12789
    assert d['DIR_RESULTS'] == '/mnt/result/results/' and d['DIR_SEQUENCES'] == '/mnt/upload/uploads/'
    assert d['FROM_EMAIL'] == 'notifications@vidjil.lab.example'


def test_defs_py_without_mail_or_file_source_says_none():
    d = defs()
    assert d['SMTP_SERVER'] is None and d['SMTP_CREDENTIALS'] is None and d['FILE_SOURCE'] is None
    assert d['HEALTHCARE_COMPLIANCE'] is False


def test_defs_py_with_the_relay_and_a_file_source():
    d = defs(__vidjil_smtp_server='postfix', __vidjil_smtp_credentials='vidjil:relay-secret',
             vidjil_file_source_dir='/srv/sequencer', vidjil_healthcare=True,
             vidjil_admin_emails=['a@lab.example', "o'brien@lab.example"])
    assert d['SMTP_SERVER'] == 'postfix' and d['SMTP_CREDENTIALS'] == 'vidjil:relay-secret'
    assert d['FILE_SOURCE'] == '/mnt/data/src' and d['HEALTHCARE_COMPLIANCE'] is True
    assert d['ADMIN_EMAILS'] == ['a@lab.example', "o'brien@lab.example"]


def test_conf_js_points_the_browser_at_this_server():
    text = render('client/conf.js.j2', vidjil_hosting_text='Hosted by "the lab"')
    body = json.loads(text[text.index('{'):text.rindex('}') + 1])
    assert body['db_address'] == 'https://vidjil.lab.example/vidjil/'
    assert body['hosting'] == 'Hosted by "the lab"' and body['use_database'] is True


@pytest.mark.parametrize('template', ['mysql/accounts.sql.j2'])
def test_accounts_sql_is_rerunnable_and_the_backup_user_only_reads(template):
    sql = render(template)
    assert "CREATE USER IF NOT EXISTS 'vidjil'@'%' IDENTIFIED BY 'p:ss/w0rd-with.marks';" in sql
    assert "ALTER USER 'backup'@'%' IDENTIFIED BY 'backup-secret-123';" in sql
    grant = re.search(r"GRANT (.*) ON `vidjil`\.\* TO 'backup'@'%';", sql)
    assert grant and set(p.strip() for p in grant.group(1).split(',')) == {'SELECT', 'SHOW VIEW', 'TRIGGER', 'LOCK TABLES'}
    assert 'root-secret-1234' not in sql  # the root password never lands in this file


def test_nginx_site_serves_acme_challenges_over_http_and_redirects_the_rest():
    site = render('client/nginx_web2py.j2')
    http = site[:site.index('listen 443')]
    assert 'server_name vidjil.lab.example;' in http
    assert http.index('location /.well-known/acme-challenge/') < http.index('return 301 https://$host$request_uri;')
    assert 'ssl_certificate     /etc/nginx/ssl/web2py.crt;' in site


def compose(**overrides):
    return yaml.safe_load(render('compose.yaml.j2', **overrides))


def test_upstream_layout_publishes_nginx_with_its_own_certificate():
    nginx = compose()['services']['nginx']
    assert nginx['ports'] == ['80:80', '443:443'] and 'networks' not in nginx
    assert './ssl:/etc/nginx/ssl:ro' in nginx['volumes']
    assert nginx['healthcheck']['test'][-1] == 'https://127.0.0.1/vidjil/default/index'
    assert set(compose()['services']) == {'mysql', 'fuse', 'uwsgi', 'workers', 'nginx'}


def test_behind_the_proxy_nothing_is_published_and_nginx_joins_its_network():
    stack = compose(vidjil_proxy_enabled=True, vidjil_public_url='https://vidjil.lab.localhost:8443')
    nginx = stack['services']['nginx']
    assert 'ports' not in nginx and nginx['networks']['proxy'] == {'aliases': ['vidjil-web']}
    assert stack['networks'] == {'proxy': {'name': 'labops_proxy', 'external': True}}
    assert not [v for v in nginx['volumes'] if '/etc/nginx/ssl' in v]
    assert nginx['healthcheck']['test'][-1] == 'http://127.0.0.1/vidjil/default/index'
    site = render('client/nginx_web2py.j2', vidjil_proxy_enabled=True)
    assert 'listen 443' not in site and 'return 301' not in site and 'include /etc/vidjil/*_location.conf;' in site
    assert 'uwsgi_param UWSGI_SCHEME https;' in render('client/uwsgi.conf.j2', vidjil_proxy_enabled=True)
    conf = render('client/conf.js.j2', vidjil_public_url='https://vidjil.lab.localhost:8443')
    assert '"db_address": "https://vidjil.lab.localhost:8443/vidjil/"' in conf


def test_optional_services_join_when_asked():
    stack = compose(vidjil_postfix_enabled=True, vidjil_reporter_image='lab/vidjil-reporter:1')
    assert stack['services']['postfix']['environment']['smtp_user'] == '${POSTFIX_SMTP_USER}'
    assert stack['services']['uwsgi']['depends_on']['postfix'] == {'condition': 'service_started'}
    assert stack['services']['reporter']['image'] == 'lab/vidjil-reporter:1'
