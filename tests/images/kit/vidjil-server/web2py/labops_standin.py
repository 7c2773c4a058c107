"""Shared part of the vidjil/server stand-in (labops kit; NOT Vidjil, see ../README.md).

Reads Vidjil's defs.py the way the real server does, connects to MySQL with its DB_ADDRESS
and creates the stand-in's tables the way web2py's migrations create Vidjil's.
"""
import os
import re
import sys

WEB2PY = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(WEB2PY, 'applications', 'vidjil', 'modules'))

import defs  # noqa: E402  (/etc/vidjil/defs.py through the modules/defs.py link)
import pymysql  # noqa: E402

# web2py DAL's URI: mysql://user[:password]@host[:port]/db (the password may hold ':' but no '@').
URI = re.compile(r'^mysql://(?P<user>[^:@]+)(:(?P<password>[^@]*))?@(?P<host>[^:/]+)(:(?P<port>\d+))?/(?P<db>[^?]+)$')

TABLES = (
    """CREATE TABLE IF NOT EXISTS sequence_file (
         id INT AUTO_INCREMENT PRIMARY KEY, filename VARCHAR(255) NOT NULL,
         data_file VARCHAR(255) NOT NULL, size BIGINT NOT NULL, upload_date DATETIME NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS results_file (
         id INT AUTO_INCREMENT PRIMARY KEY, sequence_file_id INT NOT NULL,
         data_file VARCHAR(255) NOT NULL, run_date DATETIME NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS scheduler_task (
         id INT AUTO_INCREMENT PRIMARY KEY, function_name VARCHAR(64) NOT NULL, args TEXT,
         status VARCHAR(32) NOT NULL, assigned_worker_name VARCHAR(255), start_time DATETIME,
         stop_time DATETIME)""",
    """CREATE TABLE IF NOT EXISTS scheduler_worker (
         worker_name VARCHAR(255) PRIMARY KEY, last_heartbeat DATETIME NOT NULL,
         status VARCHAR(32) NOT NULL)""",
)


def connect():
    m = URI.match(defs.DB_ADDRESS)
    if not m:
        raise ValueError('DB_ADDRESS in defs.py is not mysql://user:password@host/db')
    conn = pymysql.connect(host=m['host'], port=int(m['port'] or 3306), user=m['user'],
                           password=m['password'] or '', database=m['db'], autocommit=True,
                           connect_timeout=5)
    with conn.cursor() as cur:
        for ddl in TABLES:
            cur.execute(ddl)
    return conn


def log(message):
    try:
        with open(defs.LOG_INFO, 'a') as f:
            f.write(message + '\n')
    except OSError:
        pass
    print(message, file=sys.stderr, flush=True)
