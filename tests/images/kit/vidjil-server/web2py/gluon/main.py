"""web2py's WSGI entry point, as the stand-in app (labops kit; NOT web2py nor Vidjil).

uWSGI loads `gluon.main:wsgibase` from the web2py folder, as the role's uwsgi.ini says.
"""
import json
import os
import re
import secrets
import sys
from urllib.parse import parse_qs

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import labops_standin as standin  # noqa: E402

SAFE_NAME = re.compile(r'[^A-Za-z0-9._-]+')


def _reply(start_response, status, body, ctype='application/json'):
    data = body if isinstance(body, bytes) else body.encode()
    start_response(status, [('Content-Type', ctype), ('Content-Length', str(len(data))),
                            ('X-Labops-Standin', 'vidjil-server')])
    return [data]


def _counts(cur):
    out = {}
    for table in ('sequence_file', 'results_file'):
        cur.execute('SELECT COUNT(*) FROM ' + table)
        out[table] = cur.fetchone()[0]
    cur.execute("SELECT status, COUNT(*) FROM scheduler_task GROUP BY status")
    out['tasks'] = dict(cur.fetchall())
    cur.execute("SELECT COUNT(*) FROM scheduler_worker WHERE last_heartbeat > NOW() - INTERVAL 60 SECOND")
    out['live_workers'] = cur.fetchone()[0]
    return out


def _upload(environ, cur):
    name = SAFE_NAME.sub('_', parse_qs(environ.get('QUERY_STRING', '')).get('filename', ['upload'])[0])
    length = int(environ.get('CONTENT_LENGTH') or 0)
    body = environ['wsgi.input'].read(length) if length else b''
    data_file = 'sequence_file.data_file.%s.%s' % (secrets.token_hex(8), name)
    with open(os.path.join(standin.defs.DIR_SEQUENCES, data_file), 'wb') as f:
        f.write(body)
    cur.execute('INSERT INTO sequence_file (filename, data_file, size, upload_date) VALUES (%s, %s, %s, NOW())',
                (name, data_file, len(body)))
    seq_id = cur.lastrowid
    cur.execute("INSERT INTO scheduler_task (function_name, args, status) VALUES ('process', %s, 'QUEUED')",
                (json.dumps([seq_id]),))
    standin.log('upload %s -> %s (task %d)' % (name, data_file, cur.lastrowid))
    return {'sequence_file_id': seq_id, 'data_file': data_file, 'task_id': cur.lastrowid}


def wsgibase(environ, start_response):
    path = environ.get('PATH_INFO', '/').rstrip('/') or '/'
    method = environ.get('REQUEST_METHOD', 'GET')
    try:
        conn = standin.connect()
    except Exception as exc:  # the database does not answer: what the role's health check sees
        return _reply(start_response, '503 Service Unavailable',
                      json.dumps({'error': 'database: %s' % type(exc).__name__}))
    try:
        with conn.cursor() as cur:
            if path in ('/vidjil', '/vidjil/default', '/vidjil/default/index') and method == 'GET':
                counts = _counts(cur)
                html = ('<!doctype html><title>Vidjil</title><p>Vidjil server (labops kit stand-in): '
                        '%d sequence files, %d results.</p>' % (counts['sequence_file'], counts['results_file']))
                return _reply(start_response, '200 OK', html, 'text/html; charset=utf-8')
            if path == '/vidjil/default/status' and method == 'GET':
                return _reply(start_response, '200 OK', json.dumps(_counts(cur)))
            if path == '/vidjil/file/upload' and method == 'POST':
                return _reply(start_response, '200 OK', json.dumps(_upload(environ, cur)))
            return _reply(start_response, '404 Not Found', json.dumps({'error': 'no such page'}))
    finally:
        conn.close()


def save_password(password, port):
    """web2py's admin password (uwsgi-entrypoint.sh with WEB2PY_ADMIN_PASSWORD): nothing to keep here."""
    return None
