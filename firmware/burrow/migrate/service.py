"""One import, start to end, for every entry point: Burrow's API (``POST /api/import/{source}``),
the Pi-hole face's ``POST /api/teleporter`` and the command line (``burrow import``).

    plan = await import_file("pihole", data, settings=..., state=..., reload_settings=...,
                             events=..., dry_run=True)

Reading the file and planning run on a worker thread (they parse, inflate and copy the database);
the commit runs on the loop thread, where the settings connection lives; then every store
re-reads what it keeps (``reload_settings``, as after a backup restore) and one audit event
``import.applied`` records the import (a dry run changes nothing and records nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..storage.events import publish_event
from .model import SOURCES, ForeignSetup, MigrationError
from .plan import Plan, commit, prepare

if TYPE_CHECKING:
    from ..state_check import Context
    from ..storage.settings import SettingsDB
    from ..telemetry.events import EventBus

class Publisher(Protocol):
    """What an audit event is published on: the event bus, or the command line's event log."""

    def publish(self, topic: str, payload: Any) -> Any: ...


NAMES = {"pihole": "Pi-hole", "adguard": "AdGuard Home"}


def read_setup(source: str, data: bytes) -> ForeignSetup:
    """The setup ``data`` describes: a Pi-hole v6 Teleporter zip (``pihole``) or an
    AdGuardHome.yaml (``adguard``). MigrationError when it is not one."""
    if source == "pihole":
        from .teleporter import read_teleporter
        return read_teleporter(data)
    if source == "adguard":
        from .adguard import read_adguard
        return read_adguard(data)
    raise MigrationError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")


def summary(plan: Plan) -> str:
    c = plan.counts()
    return (f"imported from {NAMES.get(plan.source, plan.source)}: {c['create']} created, "
            f"{c['change']} changed, {c['unchanged']} unchanged, {c['skipped']} skipped")


def audit(events: Publisher | None, plan: Plan, *, actor: str | None, client_ip: str | None) -> None:
    publish_event(events, "import.applied", severity="warning" if plan.changes else None, actor=actor,
                  client_ip=client_ip, summary=summary(plan), source=plan.source, counts=plan.counts(),
                  changed=[f"{s.area} {s.key}" for s in plan.steps if s.action in ("create", "change")][:50])


async def import_file(source: str, data: bytes, *, settings: SettingsDB, state: Context,
                      reload_settings: Callable[[], None], events: EventBus | None, dry_run: bool,
                      actor: str | None = None, client_ip: str | None = None) -> Plan:
    """Read, plan and (unless ``dry_run``) apply an import; the plan, with ``applied`` set when
    it was applied. MigrationError (400, 409, 413) changes nothing."""
    setup = await asyncio.to_thread(read_setup, source, data)
    prepared = await asyncio.to_thread(prepare, setup, settings.path, state)
    plan = prepared.plan
    plan.dry_run = dry_run
    if dry_run:
        return plan
    if prepared.delta:
        commit(prepared, settings)
        reload_settings()  # the imported settings answer now, not at the next start
    plan.applied = True  # carried out (when every step was unchanged, it wrote nothing)
    audit(events, plan, actor=actor, client_ip=client_ip)
    return plan
