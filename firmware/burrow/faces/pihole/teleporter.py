"""``GET``/``POST /api/teleporter`` (api/teleporter.yaml): a Pi-hole v6 Teleporter archive of
Burrow's state, and importing one. The archive is written and read by burrow/migrate (the same
reader as ``POST /api/import/pihole`` and ``burrow import``); this module only speaks Pi-hole's
HTTP: the zip download, and the multipart upload with its optional ``import`` selection.

An import adds and changes, and never deletes (burrow/migrate/plan.py); it is applied all or
nothing. The ``import`` field chooses parts as Pi-hole's does: ``config: false`` leaves
pihole.toml out, a ``gravity`` table set to false is emptied before the import (so nothing of it
is imported), ``dhcp_leases`` means nothing here (Burrow serves no DHCP).
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import socket
import sqlite3
import zipfile
from typing import TYPE_CHECKING, Any

from ...migrate import service as migration
from ...migrate.model import MigrationError
from ...migrate.teleporter import GRAVITY, GRAVITY_TABLES, MAX_ARCHIVE_BYTES, TOML, export_teleporter, read_members
from .http import PiholeError, bad_request

if TYPE_CHECKING:
    from ...services import Services

MAX_UPLOAD = MAX_ARCHIVE_BYTES + 64 * 1024  # the archive and the multipart framing around it
MAX_IMPORT_FIELD = 4096  # bytes of the "import" JSON field


def export(s: Services) -> tuple[str, bytes]:
    """(file name, zip bytes) of Burrow's state as a Teleporter archive."""
    written = export_teleporter(groups=s.groups, allow_list=s.allow_list, deny_list=s.deny_list,
                                list_store=s.list_store, zone_store=s.zones.store, forwarding=s.forwarding,
                                config=s.config, hostname=socket.gethostname())
    return written.filename, written.data


def multipart_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name (the first of each name)."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise bad_request("Send the archive as multipart/form-data", "a form field named file")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, bytes] = {}
    if not message.is_multipart():
        raise bad_request("The multipart/form-data body cannot be read")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            payload = part.get_payload(decode=True)
            fields[name] = payload if isinstance(payload, bytes) else b""
    return fields


def _selection(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    if len(raw) > MAX_IMPORT_FIELD:
        raise bad_request('The "import" field is too long')
    try:
        chosen = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request('The "import" field is not JSON') from None
    if chosen is None:
        return None
    if not isinstance(chosen, dict) or not isinstance(chosen.get("gravity", {}), dict):
        raise bad_request('The "import" field is an object: {"config": bool, "gravity": {table: bool}}')
    return chosen


def _emptied(gravity: bytes, tables: list[str]) -> bytes:
    """``gravity`` (a gravity.db) with ``tables`` emptied (the archive was read safely already)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(gravity)
        for table in tables:
            conn.execute(f'DELETE FROM "{table}"')  # (a name of GRAVITY_TABLES, never the client's)
        conn.commit()
        return conn.serialize()
    except sqlite3.DatabaseError as e:
        raise MigrationError(f"{GRAVITY} cannot be read: {e}") from None
    finally:
        conn.close()


def selected(data: bytes, chosen: dict[str, Any] | None) -> tuple[bytes, list[str]]:
    """The archive to import (only the parts ``chosen``) and what Pi-hole would call processed."""
    members, _others = read_members(data, (TOML, GRAVITY))
    take_config = chosen is None or chosen.get("config", True) is not False
    gravity_flags = (chosen or {}).get("gravity") or {}
    skipped = [t for t in GRAVITY_TABLES if gravity_flags.get(t, True) is False]
    kept: dict[str, bytes] = {}
    processed: list[str] = []
    if TOML in members and take_config:
        kept[TOML] = members[TOML]
        processed.append(TOML)
    if GRAVITY in members and len(skipped) < len(GRAVITY_TABLES):
        kept[GRAVITY] = _emptied(members[GRAVITY], skipped) if skipped else members[GRAVITY]
        processed += [f"{GRAVITY}->{t}" for t in GRAVITY_TABLES if t not in skipped]
    if chosen is None:
        return data, processed
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in kept.items():
            z.writestr(name, content)
    return out.getvalue(), processed


async def import_archive(s: Services, fields: dict[str, bytes], *, actor: str, client_ip: str) -> dict:
    """POST /api/teleporter's work: ``{"processed": [...]}``."""
    data = fields.get("file")
    if not data:
        raise bad_request("No ZIP file uploaded", 'a multipart/form-data field named "file"')
    chosen = _selection(fields.get("import"))
    try:
        archive, processed = selected(data, chosen)
        if processed:
            await migration.import_file("pihole", archive, settings=s.settings, state=s.state,
                                        reload_settings=s.reload_settings, events=s.events, dry_run=False,
                                        actor=actor, client_ip=client_ip)
    except MigrationError as e:
        key = "invalid_zip" if e.status == 400 else "payload_too_large" if e.status == 413 else "conflict"
        raise PiholeError(e.status, key, "Invalid ZIP file uploaded" if e.status == 400 else str(e),
                          str(e)) from None
    return {"processed": processed}
