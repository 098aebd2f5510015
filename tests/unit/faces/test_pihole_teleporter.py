"""The Pi-hole face's Teleporter upload (burrow/faces/pihole/teleporter.py): the multipart body
nebula-sync sends, and Pi-hole's "import" selection applied to the archive before the import."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile

import pytest

from burrow.faces.pihole.http import PiholeError
from burrow.faces.pihole.teleporter import multipart_fields, selected
from burrow.migrate.model import MigrationError
from burrow.migrate.teleporter import GRAVITY, GRAVITY_TABLES, TOML
from tests.support.teleporter import teleporter_zip

BOUNDARY = "b0undary"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"


def form(**fields: bytes) -> bytes:
    out = b""
    for name, value in fields.items():
        filename = '; filename="config.zip"' if name == "file" else ""
        out += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n").encode()
        out += value + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_multipart_fields_keep_binary_data_whole():
    archive = teleporter_zip() + b"\r\n--not-the-boundary\r\n\x00\xff"
    fields = multipart_fields(CTYPE, form(file=archive, **{"import": b'{"config": true}'}))
    assert fields["file"] == archive and json.loads(fields["import"]) == {"config": True}


@pytest.mark.parametrize("ctype", ["application/zip", "multipart/form-data", "text/plain; boundary=x"])
def test_not_a_form_is_refused(ctype):
    with pytest.raises(PiholeError) as e:
        multipart_fields(ctype, b"whatever")
    assert e.value.status == 400


def tables(archive: bytes) -> dict[str, int]:
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        if GRAVITY not in z.namelist():
            return {}
        conn = sqlite3.connect(":memory:")
        conn.deserialize(z.read(GRAVITY))
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in GRAVITY_TABLES}


def test_no_selection_imports_the_archive_as_it_is():
    archive = teleporter_zip()
    data, processed = selected(archive, None)
    assert data == archive
    assert processed == [TOML] + [f"{GRAVITY}->{t}" for t in GRAVITY_TABLES]


def test_a_selection_leaves_out_the_config_and_empties_the_tables_not_chosen():
    archive = teleporter_zip()
    full = tables(archive)
    assert full["domainlist"] and full["adlist"]
    chosen = {"config": False, "gravity": {"domainlist": False, "domainlist_by_group": False}}
    data, processed = selected(archive, chosen)
    assert TOML not in zipfile.ZipFile(io.BytesIO(data)).namelist()
    left = tables(data)
    assert left["domainlist"] == 0 and left["domainlist_by_group"] == 0 and left["adlist"] == full["adlist"]
    assert f"{GRAVITY}->domainlist" not in processed and f"{GRAVITY}->adlist" in processed and TOML not in processed
    data, processed = selected(archive, {"config": False, "gravity": {t: False for t in GRAVITY_TABLES}})
    assert processed == [] and zipfile.ZipFile(io.BytesIO(data)).namelist() == []


def test_what_is_not_a_teleporter_archive_is_refused():
    with pytest.raises(MigrationError):
        selected(b"not a zip", None)
