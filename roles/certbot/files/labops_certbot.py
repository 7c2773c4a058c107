# -*- coding: utf-8 -*-
# Copyright: labops.services contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""labops-certbot: what happens on a host after certbot renews a certificate, without Ansible.

Installed by the labops.services.certbot role as /usr/local/sbin/labops-certbot, with
certbot's directory hooks calling it:

  deploy          /etc/letsencrypt/renewal-hooks/deploy/labops (certbot sets RENEWED_LINEAGE):
                  copies the renewed lineage into each consumer's folder with the same checks
                  as the certbot_copy module (the same code: module_utils/_certbot_copy.py is
                  installed beside this program), and queues a reload of each consumer whose
                  files changed.
  reload-pending  /etc/letsencrypt/renewal-hooks/post/labops (once per `certbot renew` run):
                  reloads every queued container once, however many lineages it consumes.
  reload TARGET   reloads one container now (TARGET as JSON; the role uses it after its copies).
  expiry          checks every managed lineage has at least --min-days days left; exit 1 and a
                  message per lineage otherwise; optionally writes a Prometheus textfile.

Lineage configurations are JSON files <config-dir>/lineages/<name>.json written by the role:
  {"name": ..., "domains": [...], "consumers": [{"dest_dir": ..., "cert_name": "fullchain.pem",
   "key_name": "privkey.pem", "owner": "root", "group": "root", "mode": "0640" (both files) |
   "cert_mode": "0644", "key_mode": "0600", "reload": {"project_dir" | "project": ..., "service": ...,
   "signal": "HUP" | "command": ["nginx", "-s", "reload"]} | null}]}

Exit status: 0 when everything worked, 1 when something failed (each failure on stderr, the
other consumers still handled), 2 on bad usage.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import fcntl
import json
import os
import subprocess
import sys
import tempfile

DEFAULT_CONFIG_DIR = '/etc/labops/certbot'
DEFAULT_STATE_DIR = '/var/lib/labops/certbot'
DEFAULT_LIB_DIR = '/usr/local/lib/labops-certbot'
DEFAULT_LIVE_DIR = '/etc/letsencrypt/live'
UTC = datetime.timezone.utc


class LabopsCertbotError(Exception):
    """A failure of one step; the message says what and where."""


def certbot_copy_module():
    """module_utils/_certbot_copy.py: from the collection when it is importable (tests), else
    from the copy the role installs in LABOPS_CERTBOT_LIB (default /usr/local/lib/labops-certbot)."""
    lib = os.environ.get('LABOPS_CERTBOT_LIB', DEFAULT_LIB_DIR)
    if os.path.isdir(lib) and lib not in sys.path:
        sys.path.insert(0, lib)
    from ansible_collections.labops.services.plugins.module_utils import _certbot_copy
    return _certbot_copy


def docker_command():
    return os.environ.get('LABOPS_CERTBOT_DOCKER', 'docker')


def log(message):
    sys.stderr.write('labops-certbot: %s\n' % message)
    sys.stderr.flush()


# --- configuration -----------------------------------------------------------------------------


def load_lineage(config_dir, name):
    """The lineage's configuration, or None when this host does not manage that lineage."""
    path = os.path.join(config_dir, 'lineages', '%s.json' % name)
    try:
        with open(path) as handle:
            config = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabopsCertbotError('cannot read %s: %s' % (path, exc))
    if config.get('name') != name or not isinstance(config.get('consumers', []), list):
        raise LabopsCertbotError('%s is not the configuration of lineage %s' % (path, name))
    return config


def managed_lineages(config_dir):
    folder = os.path.join(config_dir, 'lineages')
    try:
        names = sorted(entry[:-5] for entry in os.listdir(folder) if entry.endswith('.json'))
    except FileNotFoundError:
        return []
    return [load_lineage(config_dir, name) for name in names]


# --- reload targets ----------------------------------------------------------------------------


def target_key(target):
    """One string per container to reload, so a queue holds each at most once."""
    return json.dumps(target, sort_keys=True, separators=(',', ':'))


def check_target(target):
    if not isinstance(target, dict) or not target.get('service'):
        raise LabopsCertbotError('reload target %r needs a service' % (target,))
    if bool(target.get('project_dir')) == bool(target.get('project')):
        raise LabopsCertbotError('reload target of service %s needs exactly one of project_dir and project' % target['service'])
    if target.get('signal') and target.get('command'):
        raise LabopsCertbotError('reload target of service %s: signal and command exclude each other' % target['service'])


def _run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    except OSError as exc:
        raise LabopsCertbotError('cannot run %s: %s' % (argv[0], exc.strerror or exc))
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip()
        raise LabopsCertbotError('%s failed (exit %d): %s' % (' '.join(argv), proc.returncode, detail))
    return proc.stdout


def reload_argvs(target):
    """The commands that reload the target's container(s)."""
    check_target(target)
    docker = docker_command()
    service = target['service']
    command = target.get('command') or (None if target.get('signal') else ['nginx', '-s', 'reload'])
    if target.get('project_dir'):
        compose = [docker, 'compose', '--project-directory', target['project_dir']]
        if command:
            return [compose + ['exec', '-T', service] + list(command)]
        return [compose + ['kill', '--signal', target['signal'], service]]
    # Only the project name: find its running containers by Compose's labels.
    ids = _run([docker, 'ps', '--quiet',
                '--filter', 'label=com.docker.compose.project=%s' % target['project'],
                '--filter', 'label=com.docker.compose.service=%s' % service]).split()
    if not ids:
        raise LabopsCertbotError('no running container for service %s of Compose project %s' % (service, target['project']))
    if command:
        return [[docker, 'exec', cid] + list(command) for cid in ids]
    return [[docker, 'kill', '--signal', target['signal'], cid] for cid in ids]


def describe_target(target):
    where = target.get('project_dir') or 'project %s' % target.get('project')
    how = 'signal %s' % target['signal'] if target.get('signal') else ' '.join(target.get('command') or ['nginx', '-s', 'reload'])
    return 'service %s of %s (%s)' % (target.get('service'), where, how)


def reload_target(target):
    for argv in reload_argvs(target):
        _run(argv)
    log('reloaded %s' % describe_target(target))


# --- the queue of pending reloads --------------------------------------------------------------


class Queue(object):
    """A JSON list of reload targets in <state-dir>/pending-reloads.json, under a lock."""

    def __init__(self, state_dir):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, 'pending-reloads.json')

    def __enter__(self):
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self._lock = open(os.path.join(self.state_dir, '.lock'), 'a')
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            with open(self.path) as handle:
                self.items = json.load(handle)
        except FileNotFoundError:
            self.items = []
        except ValueError as exc:
            log('ignoring unreadable %s: %s' % (self.path, exc))
            self.items = []
        return self

    def add(self, target):
        if target_key(target) not in set(target_key(item) for item in self.items):
            self.items.append(target)

    def save(self):
        if not self.items:
            if os.path.exists(self.path):
                os.unlink(self.path)
            return
        fd, tmp = tempfile.mkstemp(dir=self.state_dir, prefix='.pending-')
        with os.fdopen(fd, 'w') as handle:
            json.dump(self.items, handle, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def __exit__(self, *exc_info):
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


# --- subcommands -------------------------------------------------------------------------------


def _text_or_none(value):
    return None if value is None else str(value)


def copy_consumer(lineage, consumer, live_dir):
    """Copy the lineage into one consumer's folder; True when a file changed."""
    module = certbot_copy_module()
    try:
        job = module.CertbotCopy(
            lineage['name'], consumer['dest_dir'], live_dir=live_dir,
            cert_dest_name=consumer.get('cert_name') or 'fullchain.pem',
            key_dest_name=consumer.get('key_name') or 'privkey.pem',
            owner=_text_or_none(consumer.get('owner')), group=_text_or_none(consumer.get('group')),
            cert_mode=consumer.get('cert_mode') or consumer.get('mode') or '0644',
            key_mode=consumer.get('key_mode') or consumer.get('mode') or '0600',
            domains=lineage.get('domains') or [], min_days_valid=0,
        ).check()
        if job.changed:
            job.apply()
    except module.CertbotCopyError as exc:
        raise LabopsCertbotError('lineage %s -> %s: %s' % (lineage['name'], consumer['dest_dir'], exc))
    if job.changed:
        log('lineage %s: copied %s (%s) into %s' % (lineage['name'], job.info.fingerprint_sha256,
                                                    module.format_time(job.info.not_after), consumer['dest_dir']))
    return job.changed


def cmd_deploy(args):
    lineage_path = args.lineage or os.environ.get('RENEWED_LINEAGE')
    if not lineage_path:
        log('deploy: no lineage (certbot sets RENEWED_LINEAGE for deploy hooks)')
        return 2
    lineage_path = lineage_path.rstrip('/')
    name = os.path.basename(lineage_path)
    live_dir = os.path.dirname(lineage_path) or args.live_dir
    try:
        lineage = load_lineage(args.config_dir, name)
    except LabopsCertbotError as exc:
        log(str(exc))
        return 1
    if lineage is None:
        log('lineage %s is not managed by labops (no %s/lineages/%s.json): nothing to do' % (name, args.config_dir, name))
        return 0
    failed = False
    changed_targets = []
    for consumer in lineage.get('consumers', []):
        try:
            if copy_consumer(lineage, consumer, live_dir) and consumer.get('reload'):
                check_target(consumer['reload'])
                changed_targets.append(consumer['reload'])
        except LabopsCertbotError as exc:
            log(str(exc))
            failed = True
    if changed_targets:
        with Queue(args.state_dir) as queue:
            for target in changed_targets:
                queue.add(target)
            queue.save()
    return 1 if failed else 0


def cmd_reload_pending(args):
    with Queue(args.state_dir) as queue:
        left = []
        for target in queue.items:
            try:
                reload_target(target)
            except LabopsCertbotError as exc:
                log('reload of %s failed, kept for the next run: %s' % (describe_target(target), exc))
                left.append(target)
        queue.items = left
        queue.save()
    return 1 if left else 0


def cmd_reload(args):
    try:
        target = json.loads(args.target)
        reload_target(target)
    except ValueError as exc:
        log('reload: TARGET must be JSON: %s' % exc)
        return 2
    except LabopsCertbotError as exc:
        log(str(exc))
        return 1
    return 0


def expiry_report(lineages, live_dir, min_days, now):
    """[(name, days_left or None, not_after or None, problem or None)] for each lineage."""
    module = certbot_copy_module()
    rows = []
    for lineage in lineages:
        path = os.path.join(live_dir, lineage['name'], 'cert.pem')
        try:
            info = module.CertificateInfo(module.parse_certificates(module.read_source(path), path)[0])
        except module.CertbotCopyError as exc:
            rows.append((lineage['name'], None, None, str(exc)))
            continue
        days = info.days_left(now)
        problem = None
        if days < min_days:
            problem = 'certificate %s expires on %s, in %d days (fewer than %d)' % (
                lineage['name'], module.format_time(info.not_after), days, min_days)
        rows.append((lineage['name'], days, info.not_after, problem))
    return rows


def metrics_text(rows, now):
    lines = [
        '# HELP labops_certbot_certificate_not_after_seconds End of validity of the lineage\'s certificate (Unix time).',
        '# TYPE labops_certbot_certificate_not_after_seconds gauge',
    ]
    for name, _days, not_after, _problem in rows:
        if not_after is not None:
            lines.append('labops_certbot_certificate_not_after_seconds{lineage="%s"} %d' % (name, not_after.timestamp()))
    lines += [
        '# HELP labops_certbot_certificate_ok 1 when the lineage\'s certificate is readable and valid long enough.',
        '# TYPE labops_certbot_certificate_ok gauge',
    ]
    for name, _days, _not_after, problem in rows:
        lines.append('labops_certbot_certificate_ok{lineage="%s"} %d' % (name, 0 if problem else 1))
    lines += [
        '# HELP labops_certbot_expiry_check_timestamp_seconds When the check ran (Unix time).',
        '# TYPE labops_certbot_expiry_check_timestamp_seconds gauge',
        'labops_certbot_expiry_check_timestamp_seconds %d' % now.timestamp(),
    ]
    return '\n'.join(lines) + '\n'


def write_atomically(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.%s.' % os.path.basename(path))
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cmd_expiry(args):
    now = datetime.datetime.now(UTC)
    try:
        lineages = managed_lineages(args.config_dir)
    except LabopsCertbotError as exc:
        log(str(exc))
        return 1
    rows = expiry_report(lineages, args.live_dir, args.min_days, now)
    if args.metrics:
        write_atomically(args.metrics, metrics_text(rows, now))
    for name, days, _not_after, problem in rows:
        if problem:
            log(problem)
        else:
            print('%s: %d days left' % (name, days))
    return 1 if any(row[3] for row in rows) else 0


def parser():
    top = argparse.ArgumentParser(prog='labops-certbot', description=__doc__.split('\n\n', maxsplit=1)[0])
    top.add_argument('--config-dir', default=DEFAULT_CONFIG_DIR, help='lineage configurations (default %(default)s)')
    top.add_argument('--state-dir', default=DEFAULT_STATE_DIR, help='queue of pending reloads (default %(default)s)')
    top.add_argument('--live-dir', default=DEFAULT_LIVE_DIR, help="certbot's live folder (default %(default)s)")
    sub = top.add_subparsers(dest='command')
    sub.required = True
    deploy = sub.add_parser('deploy', help='certbot deploy hook: copy the renewed lineage to its consumers')
    deploy.add_argument('--lineage', help='live folder of the lineage (default: $RENEWED_LINEAGE)')
    deploy.set_defaults(func=cmd_deploy)
    sub.add_parser('reload-pending', help='certbot post hook: reload each queued container once').set_defaults(func=cmd_reload_pending)
    reload_ = sub.add_parser('reload', help='reload one container now')
    reload_.add_argument('target', help='JSON: {"project_dir"|"project": ..., "service": ..., "signal"|"command": ...}')
    reload_.set_defaults(func=cmd_reload)
    expiry = sub.add_parser('expiry', help='fail when a managed lineage has fewer than --min-days days left')
    expiry.add_argument('--min-days', type=int, required=True)
    expiry.add_argument('--metrics', help='also write a Prometheus textfile here')
    expiry.set_defaults(func=cmd_expiry)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
