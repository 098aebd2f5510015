"""``burrow import pihole|adguard FILE [--dry-run] [--json]``: a Pi-hole or AdGuard Home setup
into Burrow from a shell on the box.

Works on ``<data_dir>/settings.db`` directly, as ``burrow user`` and ``burrow zone`` do: it needs
no account and works whether or not the service runs (WAL and the busy timeout make the shared
file safe; the commit checks that no row it touches changed meanwhile). After an import that
changed something it signals a running Burrow (SIGHUP to the PID in ``<data_dir>/burrow.pid``),
which re-reads every stored setting as after a backup restore; without a running service the
data is used at the next start. The import is audited in the event log like one made through
the API (actor ``command line``).

Exit status: 0 imported (or planned, with ``--dry-run``), 1 refused (nothing changed), 2 bad
configuration.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .model import SOURCES, MigrationError

MAX_FILE_BYTES = 16 * 1024 * 1024
ACTOR = "command line"


class _EventSink:
    """The event log as a bus for :func:`service.audit` (no running service to publish to)."""

    def __init__(self, eventlog: Any):
        self.eventlog = eventlog

    def publish(self, topic: str, payload: dict) -> None:
        self.eventlog.record(payload, topic)


def _read(path: str) -> bytes:
    if path == "-":
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise MigrationError(f"{path} is larger than {MAX_FILE_BYTES} bytes", 413)
    return data


def import_path(directory: Path, config: Any, source: str, path: str, *, dry_run: bool):
    """Read ``path``, plan it against ``<directory>/settings.db`` and (unless ``dry_run``) apply
    it; the Plan. MigrationError (nothing changed) when it cannot be imported."""
    from ..state_check import context
    from ..storage.events import EventLog
    from ..storage.settings import SettingsDB
    from . import service
    from .plan import run_import
    setup = service.read_setup(source, _read(path))
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"data directory {directory} does not exist")
    db = SettingsDB(Path(directory) / "settings.db")
    try:
        plan = run_import(setup, db, context(config, Path(directory)), dry_run=dry_run)
        if not dry_run:
            eventlog = EventLog(db)
            service.audit(_EventSink(eventlog), plan, actor=ACTOR, client_ip=None)
            eventlog.flush()
        return plan
    finally:
        db.close()


def render(plan) -> str:
    from .service import summary
    lines = []
    for step in plan.steps:
        origin = f"  [{step.origin}]" if step.origin else ""
        why = f": {step.why}" if step.why else ""
        lines.append(f"{step.action:<9} {step.area:<7} {step.key}{why}{origin}")
    head = "dry run, nothing changed: " if plan.dry_run else ""
    lines.append(head + summary(plan).replace("imported", "would import" if plan.dry_run else "imported", 1))
    return "\n".join(lines) + "\n"


def cmd_import(args) -> int:
    from ..config import ConfigError, data_dir, load
    from ..zones.cli import notify_running
    try:
        config = load(args.config, config_dir=args.config_dir)
    except ConfigError as e:
        for key, msg in e.errors:
            sys.stderr.write(f"burrow: {key}: {msg}\n")
        return 2
    directory = data_dir(config)
    try:
        plan = import_path(directory, config, args.source, args.file, dry_run=args.dry_run)
    except (MigrationError, OSError) as e:
        sys.stderr.write(f"burrow: {e}; nothing was imported\n")
        return 1
    told = not args.dry_run and plan.changes and notify_running(directory)
    if args.json:
        sys.stdout.write(json.dumps(plan.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render(plan))
        if told:
            sys.stdout.write("running Burrow told to re-read its settings\n")
    return 0


def add_parser(sub) -> None:
    from ..config import add_cli_arguments
    p = sub.add_parser("import", help="import a Pi-hole or AdGuard Home setup (all or nothing)")
    add_cli_arguments(p)
    p.add_argument("source", choices=SOURCES, help="pihole: a Pi-hole v6 Teleporter .zip; "
                   "adguard: AdGuardHome.yaml")
    p.add_argument("file", help="the file ('-' reads stdin)")
    p.add_argument("--dry-run", action="store_true", help="show what would be created, changed and "
                   "skipped, and why; change nothing")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (the API's shape)")
    p.set_defaults(func=cmd_import)
