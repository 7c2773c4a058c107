"""labops: datalab's administration tasks for invoke, in /app where upstream runs them.

Upstream keeps its invoke tasks in its git repository, not in the datalab-server wheel this
image installs, so this file provides the two the datalab role calls, with upstream's names
and arguments, on datalab's own backup code (pydatalab.backups):

    invoke admin.create-backup --strategy-name daily-snapshots
        datalab's create_backup() with CONFIG.BACKUP_STRATEGIES[name]: a .tar.gz snapshot of
        the file store, a mongodump of the database and the server config, in the strategy's
        location, pruned to its retention.
    invoke admin.restore-backup PATH
        asks twice, on standard input, before it replaces anything (answer "y" twice, e.g.
        printf 'y\\ny\\n' | invoke admin.restore-backup PATH); then restores the file store and
        the database (mongorestore --drop).

One deliberate difference: pydatalab 0.7.12's restore_snapshot() extracts the snapshot's
files/ folder *into* FILE_DIRECTORY (so files/x comes back as FILE_DIRECTORY/files/x, where the
server does not look). The restore here puts files/x back at FILE_DIRECTORY/x, where
take_snapshot() read it, and refuses members that would land outside FILE_DIRECTORY.
"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from invoke import Collection, task


def _confirm(question):
    sys.stdout.write(question + " [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline()
    if answer.strip().lower() not in ("y", "yes"):
        sys.exit("Not confirmed: nothing was changed.")


@task(help={"strategy_name": "A key of CONFIG.BACKUP_STRATEGIES, e.g. daily-snapshots"})
def create_backup(context, strategy_name):
    """Take a snapshot with one of the configured backup strategies."""
    from pydatalab.backups import create_backup as _create_backup
    from pydatalab.config import CONFIG

    strategies = CONFIG.BACKUP_STRATEGIES or {}
    if strategy_name not in strategies:
        sys.exit("No backup strategy %r in the config (known: %s)." % (strategy_name, ", ".join(sorted(strategies)) or "none"))
    if not _create_backup(strategies[strategy_name]):
        sys.exit("The backup with strategy %r failed." % strategy_name)


def _file_members(tar):
    """The snapshot's files/ members, renamed relative to the file store; unsafe names refused."""
    members = []
    for member in tar.getmembers():
        parts = PurePosixPath(member.name).parts
        if not parts or parts[0] != "files" or len(parts) == 1:
            continue
        relative = PurePosixPath(*parts[1:])
        if relative.is_absolute() or ".." in relative.parts:
            sys.exit("Refusing snapshot member %r: it points outside the file store." % member.name)
        if not (member.isfile() or member.isdir()):
            sys.exit("Refusing snapshot member %r: only files and folders are restored." % member.name)
        member.name = str(relative)
        members.append(member)
    return members


@task(help={"snapshot_path": "A .tar or .tar.gz snapshot made by admin.create-backup"})
def restore_backup(context, snapshot_path):
    """Restore the file store and the database from a snapshot (asks twice first)."""
    from pydatalab.config import CONFIG

    path = Path(snapshot_path)
    if not path.is_file():
        sys.exit("No snapshot at %s." % path)
    _confirm("Restore %s into this datalab (%s)? Its database collections are replaced." % (path, CONFIG.MONGO_URI.rsplit("/", 1)[-1]))
    _confirm("Really? This cannot be undone.")
    root = Path(CONFIG.FILE_DIRECTORY)
    with tarfile.open(path, mode="r:*") as tar:
        files = _file_members(tar)
        database = [m for m in tar.getmembers() if m.name.startswith("mongodb/")]
        if not database:
            sys.exit("%s holds no mongodb/ dump: not a datalab snapshot." % path)
        with tempfile.TemporaryDirectory() as temp_dir:
            tar.extractall(path=temp_dir, members=database)
            subprocess.run(["mongorestore", CONFIG.MONGO_URI, "--drop", str(Path(temp_dir) / "mongodb")], check=True)
        tar.extractall(path=root, members=files)
    print("Restored %d file(s) and the database from %s." % (sum(m.isfile() for m in files), path))


namespace = Collection()
namespace.add_collection(Collection("admin", create_backup, restore_backup))
