"""``burrow zone import|export|list``: zone files from a shell on the box.

Works on ``<data_dir>/settings.db`` directly, like ``burrow user`` (WAL and the busy timeout
make that safe while the service runs). ``import`` creates the master zone if it does not
exist, replaces all its records with the file's (all or nothing: a bad line changes nothing
and names the line), then signals a running Burrow (SIGHUP to the PID in
``<data_dir>/burrow.pid``) so it answers from the new data at once; without a running
service the data is used at the next start.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def _store(directory: Path):
    from ..storage.settings import SettingsDB
    from .store import ZoneStore
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"data directory {directory} does not exist")
    db = SettingsDB(Path(directory) / "settings.db")
    return db, ZoneStore(db)


def notify_running(directory: Path) -> bool:
    """SIGHUP the running Burrow of this data dir, if any; True when one was told."""
    try:
        pid = int((Path(directory) / "burrow.pid").read_text().strip())
        os.kill(pid, signal.SIGHUP)
        return True
    except (OSError, ValueError):
        return False


def import_file(directory: Path, zone: str, path: str) -> dict:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    db, store = _store(directory)
    try:
        if store.zone(zone) is None:
            store.create_zone(zone, "master")
        return store.import_zone(zone, text)
    finally:
        db.close()


def export_text(directory: Path, zone: str) -> str:
    db, store = _store(directory)
    try:
        return store.export_zone(zone)
    finally:
        db.close()


def cmd_zone(args) -> int:
    from ..config import data_dir_for_cli
    directory = data_dir_for_cli(args.config, args.config_dir)
    if directory is None:
        return 2
    try:
        if args.zone_command == "import":
            zone = import_file(directory, args.zone, args.file)
            told = notify_running(directory)
            sys.stdout.write(f"imported {zone.get('records', '?')} records into {args.zone}"
                             f"{' (running Burrow reloaded)' if told else ''}\n")
        elif args.zone_command == "export":
            sys.stdout.write(export_text(directory, args.zone))
        else:
            db, store = _store(directory)
            try:
                for z in store.zones():
                    sys.stdout.write(f"{z['name'] or 'local'}\t{z['type']}\t{z.get('serial') or ''}\n")
            finally:
                db.close()
    except (ValueError, OSError) as e:
        line = getattr(e, "line", None)
        sys.stderr.write(f"burrow: {'line %s: ' % line if line else ''}{e}\n")
        return 1
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("zone", help="import or export a zone file, list zones")
    from ..config import add_cli_arguments
    add_cli_arguments(p)
    zones = p.add_subparsers(dest="zone_command", required=True)
    q = zones.add_parser("import", help="create or replace a master zone from an RFC 1035 zone file")
    q.add_argument("zone", help="the zone's name, e.g. lab.home")
    q.add_argument("file", help="the zone file ('-' reads stdin)")
    q = zones.add_parser("export", help="print a zone as a zone file")
    q.add_argument("zone")
    zones.add_parser("list", help="list zones")
    p.set_defaults(func=cmd_zone)
