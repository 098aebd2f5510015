"""/api/import/{pihole|adguard}: move a Pi-hole or AdGuard Home setup into Burrow in one step.

The body is the file itself (as ``POST /api/backup/restore`` takes its archive): a Pi-hole v6
Teleporter zip, or AdGuardHome.yaml. ``dry_run=true`` answers the plan (what would be created,
changed, left unchanged or skipped, each with why) and changes nothing; without it the same
plan is applied all or nothing (burrow/migrate/plan.py) and audited as one ``import.applied``
event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..migrate import plan as planner
from ..migrate import service
from ..migrate.model import SOURCES
from ..migrate.teleporter import MAX_ARCHIVE_BYTES
from .backup import read_upload
from .routes import Api
from .schema import Bool, Int, List, Obj, Query, Str

if TYPE_CHECKING:
    from ..state_check import Context
    from ..storage.settings import SettingsDB
    from ..telemetry.events import EventBus

MAX_UPLOAD = MAX_ARCHIVE_BYTES  # a Teleporter zip or a YAML file (the YAML reader bounds its own)
MEDIA = {"pihole": "application/zip", "adguard": "application/yaml"}
WHAT = {"pihole": "a Pi-hole v6 Teleporter archive (.zip, Settings → Teleporter → Export)",
        "adguard": "AdGuard Home's configuration file, AdGuardHome.yaml"}

ImportStep = Obj("ImportStep", {
    "area": Str(enum=list(planner.AREAS), description="what kind of thing"),
    "key": Str(description="Burrow's name for it (a group, list name, entry, record, option...)"),
    "action": Str(enum=list(planner.ACTIONS)),
    "why": Str(description="why this action, in words"),
    "origin": Str(description="where in the file it came from"),
})
ImportPlan = Obj("ImportPlan", {
    "source": Str(enum=list(SOURCES)),
    "dry_run": Bool(),
    "applied": Bool(description="the import was carried out (all of it; false for a dry run)"),
    "counts": Obj("ImportCounts", {a: Int() for a in planner.ACTIONS}),
    "truncated": Bool(description=f"more than {planner.MAX_STEPS_SHOWN} steps: only the first are listed "
                                  "(the counts are complete)"),
    "steps": List(ImportStep),
}, example={"source": "pihole", "dry_run": True, "applied": False,
            "counts": {"create": 2, "change": 0, "unchanged": 1, "skipped": 1}, "truncated": False,
            "steps": [{"area": "group", "key": "kids", "action": "create", "why": "new group",
                       "origin": "etc/pihole/gravity.db group id 1"},
                      {"area": "list", "key": "Ads", "action": "create", "why": "block list",
                       "origin": "etc/pihole/gravity.db adlist id 1"},
                      {"area": "deny", "key": "ads.example.com", "action": "unchanged",
                       "why": "in the list already", "origin": "etc/pihole/gravity.db domainlist id 1"},
                      {"area": "client", "key": "aa:bb:cc:dd:ee:ff", "action": "skipped",
                       "why": "Burrow recognises clients by IP address or CIDR only",
                       "origin": "etc/pihole/gravity.db client id 2"}]})


def register(api: Api, *, settings: SettingsDB, state: Context, reload_settings: Callable[[], None],
             events: EventBus) -> None:
    """``state``: what the stored-state checks need; ``reload_settings``: applies the imported
    settings to the running services (as after a backup restore)."""
    for source in SOURCES:
        _route(api, source, settings=settings, state=state, reload_settings=reload_settings, events=events)


def _route(api: Api, source: str, **deps) -> None:
    @api.route("POST", f"/api/import/{source}", role="admin", tags=["backup"], stream_body=True,
               body_media=MEDIA[source],
               summary=f"Import {service.NAMES[source]}'s setup from {WHAT[source]}",
               query=Query({"dry_run": Bool(default=False, description=(
                   "answer the plan (created, changed, unchanged, skipped, each with why); change nothing"))}),
               responses={200: ImportPlan,
                          400: f"not {WHAT[source]}, or damaged (the message says what); nothing changed",
                          409: "the settings changed while the import was prepared; nothing changed (send it again)",
                          411: "no Content-Length", 413: f"the file is over {MAX_UPLOAD} bytes, or inflates past "
                          "the archive's bounds"})
    async def do_import(req):
        data = await read_upload(req, MAX_UPLOAD)
        principal = req.g.principal
        plan = await service.import_file(
            source, data, settings=deps["settings"], state=deps["state"],
            reload_settings=deps["reload_settings"], events=deps["events"], dry_run=req.g.query["dry_run"],
            actor=getattr(principal, "username", None), client_ip=req.g.client_ip)
        return plan.as_dict()
