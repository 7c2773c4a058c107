"""web2py's command line, as the stand-in (labops kit; NOT web2py nor Vidjil).

  web2py.py -K vidjil[,vidjil...]   scheduler workers: take QUEUED tasks, have fuse make the result
  web2py.py -S APP ... -R SCRIPT    a script (uWSGI's cron lines): nothing to do in the stand-in
"""
import json
import os
import socket
import sys
import time
import xmlrpc.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def work():
    import labops_standin as standin
    defs = standin.defs
    name = '%s#%d' % (socket.gethostname(), os.getpid())
    fuse = xmlrpc.client.ServerProxy('http://%s:%d' % (defs.FUSE_SERVER, defs.PORT_FUSE_SERVER))
    standin.log('worker %s started' % name)
    conn = None
    while True:
        try:
            if conn is None:
                conn = standin.connect()
            with conn.cursor() as cur:
                cur.execute("REPLACE INTO scheduler_worker (worker_name, last_heartbeat, status) "
                            "VALUES (%s, NOW(), 'ACTIVE')", (name,))
                cur.execute("UPDATE scheduler_task SET status='RUNNING', assigned_worker_name=%s, "
                            "start_time=NOW() WHERE status='QUEUED' ORDER BY id LIMIT 1", (name,))
                if cur.rowcount:
                    cur.execute("SELECT id, args FROM scheduler_task WHERE status='RUNNING' "
                                "AND assigned_worker_name=%s ORDER BY id LIMIT 1", (name,))
                    task_id, args = cur.fetchone()
                    seq_id = json.loads(args)[0]
                    cur.execute('SELECT data_file FROM sequence_file WHERE id=%s', (seq_id,))
                    data_file = cur.fetchone()[0]
                    out_name = 'results_file.data_file.%06d' % seq_id
                    cmd = 'fuse.py %s' % os.path.join(defs.DIR_SEQUENCES, data_file)
                    path = fuse.fuse(cmd, defs.DIR_RESULTS, out_name)
                    cur.execute('INSERT INTO results_file (sequence_file_id, data_file, run_date) '
                                'VALUES (%s, %s, NOW())', (seq_id, os.path.basename(path)))
                    cur.execute("UPDATE scheduler_task SET status='COMPLETED', stop_time=NOW() WHERE id=%s",
                                (task_id,))
                    standin.log('task %d: %s' % (task_id, path))
                    continue
        except Exception as exc:  # the database or fuse restarting: try again after a heartbeat
            standin.log('worker %s: %s: %s' % (name, type(exc).__name__, exc))
            conn = None
        time.sleep(getattr(defs, 'SCHEDULER_HEARTBEAT', 5))


def main(argv):
    if '-K' in argv:
        work()
    elif '-S' in argv:
        print('labops kit stand-in: web2py script %s: nothing to do' % ' '.join(argv))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
