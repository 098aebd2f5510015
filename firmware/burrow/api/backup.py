"""/api/backup: download the settings as one archive, and restore one (validated, atomic)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from microdot import Response

from .. import backup as service
from ..storage.events import publish_event
from .errors import ApiError
from .routes import Api
from .schema import Bool, Int, List, Obj, Query, Str

if TYPE_CHECKING:
    from ..state_check import Context
    from ..storage.settings import SettingsDB
    from ..telemetry.events import EventBus

UPLOAD_DEADLINE = 60.0  # seconds for the whole archive to arrive (slow-drip uploads are cut)
READ_CHUNK = 64 * 1024

TableChange = Obj("TableChange", {"rows": Int(), "added": Int(), "removed": Int(), "changed": Int(),
                                  "unchanged": Int()})
RestoreResult = Obj("RestoreResult", {
    "status": Str(enum=["ok", "dry_run"]),
    "dry_run": Bool(),
    "tables": Obj("RestoreTables", {}, additional=True, description="table → TableChange"),
    "skipped": List(Str(), description="user tables in the archive left alone (include_users=false)"),
    "items": Obj("RestoreItems", {}, additional=True, description=(
        "table → {added, removed, changed}: labels of the rows (key, and name when it has one), "
        f"at most {service.MAX_DIFF_ITEMS} of each; only tables with a change")),
    "schema_version": Int(), "backup_created_at": Str(nullable=True),
    "backup_burrow_version": Str(nullable=True),
}, example={"status": "dry_run", "dry_run": True,
            "tables": {"settings": {"rows": 12, "added": 1, "removed": 0, "changed": 2, "unchanged": 9}},
            "skipped": [], "items": {"settings": {"added": ["filtering.denylist"], "removed": [],
                                                  "changed": ["config.overrides"]}},
            "schema_version": 3, "backup_created_at": "2025-11-22T10:30:00Z",
            "backup_burrow_version": "0.1.0"})


async def read_upload(req, cap: int = service.MAX_ARCHIVE_BYTES) -> bytes:
    """The request body, at most ``cap`` bytes (413 past it), within UPLOAD_DEADLINE."""
    length = req.content_length or 0
    if length <= 0:
        raise ApiError(411 if "Content-Length" not in req.headers else 400,
                       "send the archive as the request body with a Content-Length")
    if length > cap:
        raise ApiError(413, f"the archive is larger than {cap} bytes")
    if req.body:  # small bodies were already read with the headers
        return bytes(req.body[:length])
    stream = req.stream
    chunks, got = [], 0
    try:
        async with asyncio.timeout(UPLOAD_DEADLINE):
            while got < length:
                piece = await stream.read(min(READ_CHUNK, length - got))
                if not piece:
                    break
                chunks.append(piece)
                got += len(piece)
    except (TimeoutError, asyncio.TimeoutError):
        raise ApiError(408, f"the archive did not arrive within {UPLOAD_DEADLINE:.0f} s") from None
    if got < length:
        raise ApiError(400, "the upload ended before Content-Length bytes arrived")
    return b"".join(chunks)


def register(api: Api, *, settings: SettingsDB, state: Context, reload_settings: Callable[[], None],
             events: EventBus, version: str) -> None:
    """``state``: what the stored-state checks need; ``reload_settings``: applies the restored
    settings to the running services (the composition root's App.reload_settings)."""
    @api.route("GET", "/api/backup", role="admin", tags=["backup"], raw_response=True,
               summary="Download the settings as one .tar.gz archive",
               query=Query({"include_users": Bool(default=False, description=(
                   "also include users, sessions and tokens (password hashes included); "
                   "the JWT signing key is never included"))}),
               responses={200: "application/gzip attachment: manifest.json + tables/<name>.json"})
    async def download(req):
        include_users = req.g.query["include_users"]
        conn = settings.conn
        tables = service.dump_tables(conn, include_users)  # loop thread: the connection's home
        data = await asyncio.to_thread(
            service.build_archive, tables, version=version,
            schema=service.schema_version(conn), include_users=include_users)
        principal = req.g.principal
        publish_event(events, "backup.downloaded", actor=getattr(principal, "username", None),
                      client_ip=req.g.client_ip, include_users=include_users,
                      tables=sorted(tables), bytes=len(data))
        name = f"burrow-backup-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.tar.gz"
        return Response(data, 200, {"Content-Type": "application/gzip",
                                    "Content-Disposition": f'attachment; filename="{name}"',
                                    "Cache-Control": "no-store"})

    @api.route("POST", "/api/backup/restore", role="admin", tags=["backup"], stream_body=True,
               summary="Restore settings from an archive (validated first; all or nothing)",
               query=Query({
                   "dry_run": Bool(default=False, description="report what would change; change nothing"),
                   "include_users": Bool(default=False, description=(
                       "also restore users, sessions and tokens if the archive has them")),
               }),
               responses={200: RestoreResult, 400: "the archive is invalid, or a row in it is one the API "
                          "would refuse, or it would leave no enabled admin (details name table, row "
                          "and field; nothing changed)",
                          413: f"the archive is over {service.MAX_ARCHIVE_BYTES} bytes"})
    async def restore(req):
        q = req.g.query
        data = await read_upload(req)
        members = await asyncio.to_thread(service.read_members, data)  # gunzip + tar checks: pure CPU
        plan = service.check_members(members, settings.conn, include_users=q["include_users"])
        # Every row's content, on a scratch copy opened as Burrow opens its settings; the dry
        # run stops after the same check.
        await asyncio.to_thread(service.verify, plan, settings.path, state,
                                include_users=q["include_users"])
        changes = service.diff(plan, settings)
        if not q["dry_run"]:
            service.apply(plan, settings)
        manifest = plan.manifest
        result = {"status": "dry_run" if q["dry_run"] else "ok", "dry_run": q["dry_run"],
                  "tables": changes["tables"], "skipped": changes["skipped"],
                  "items": changes["items"], "schema_version": manifest["schema_version"],
                  "backup_created_at": manifest.get("created_at"),
                  "backup_burrow_version": manifest.get("burrow_version")}
        if not q["dry_run"]:
            reload_settings()  # the restored settings take effect now, not at the next start
            principal = req.g.principal
            publish_event(events, "backup.restored", severity="warning",
                          actor=getattr(principal, "username", None), client_ip=req.g.client_ip,
                          summary=f"settings restored from a backup made {manifest.get('created_at')}",
                          tables=changes["tables"], skipped=changes["skipped"],
                          backup_burrow_version=manifest.get("burrow_version"))
        return result
