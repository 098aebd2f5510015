"""burrow.filtering.sources: the list store in the settings database."""

from __future__ import annotations

import os
import sqlite3

import pytest

from burrow.filtering.index import MAX_LISTS
from burrow.filtering.sources import (
    ListConflictError,
    ListLimitError,
    ListStore,
    ListValidationError,
    resolve_local_source,
)


@pytest.fixture
def lists_dir(tmp_path):
    d = tmp_path / "data" / "lists"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def store(db, lists_dir):
    return ListStore(db, [lists_dir], clock=lambda: 1000.0)


def test_migration_creates_the_lists_table(db):
    assert db.version >= 4
    cols = [r[1] for r in db.conn.execute("PRAGMA table_info(lists)")]
    for c in ("id", "name", "source", "kind", "format", "groups", "enabled", "update_interval",
              "mode", "last_success", "last_attempt", "last_error", "entries", "errors",
              "skipped", "bytes", "etag", "last_modified", "created_at"):
        assert c in cols


def test_create_get_list_update_delete(store):
    a = store.create("Ads", "https://lists.example/hosts.txt", "block")
    assert a["id"] == 1 and a["list_id"] == 0
    assert a["name"] == "Ads" and a["kind"] == "block" and a["format"] is None
    assert a["groups"] == [] and a["enabled"] is True and a["update_interval"] == 86400
    assert a["mode"] is None and a["created_at"] == 1000.0 and a["last_success"] is None
    b = store.create("Allow", "http://lists.example/allow.txt", "allow", format="domains",
                     groups=["kids", "kids", "default"], enabled=False, update_interval=3600,
                     mode="nxdomain")
    assert b["id"] == 2 and b["groups"] == ["kids", "default"] and b["enabled"] is False
    assert store.get(1) == a and store.get(99) is None and store.get("x") is None
    assert [r["id"] for r in store.list()] == [1, 2]
    assert [r["id"] for r in store.list(enabled=True)] == [1]
    assert [r["id"] for r in store.list(kind="allow")] == [2]

    store.record_result(1, ok=True, at=2000.0, etag='"e"', last_modified="lm", bytes=10)
    c = store.update(1, {"name": "Ads 2", "enabled": False, "format": "auto", "mode": "null"})
    assert c["name"] == "Ads 2" and c["enabled"] is False and c["mode"] == "null"
    assert c["etag"] == '"e"'  # same source: validators kept
    c = store.update(1, {"source": "https://lists.example/other.txt"})
    assert c["etag"] is None and c["last_modified"] is None and c["last_success"] is None
    assert c["last_attempt"] is None and c["last_error"] is None
    assert store.update(42, {"name": "x"}) is None
    assert store.delete(2) is True and store.delete(2) is False
    assert [r["id"] for r in store.list()] == [1]


def test_public_dict_keys(store):
    d = store.create("L", "https://x.example/l.txt")
    assert set(d) == {"id", "list_id", "name", "source", "kind", "format", "groups", "enabled",
                      "update_interval", "mode", "last_success", "last_attempt", "last_error",
                      "entries", "errors", "skipped", "bytes", "etag", "last_modified",
                      "created_at"}


@pytest.mark.parametrize("source", [
    "ftp://example.com/list.txt", "file:///etc/passwd", "gopher://x/", "http://", "https:///x",
    "http://user:pw@example.com/l", "http://example.com:99999/l", "", "   ", None, 42,
    "http://exa mple.com/l",
])
def test_bad_sources_name_the_field(store, source):
    with pytest.raises(ListValidationError) as err:
        store.create("x", source)
    assert err.value.field == "source" and str(err.value).startswith("source:")
    assert isinstance(err.value, ValueError)
    assert store.list() == []


@pytest.mark.parametrize("field,kwargs", [
    ("name", {"name": ""}), ("name", {"name": "x" * 101}), ("name", {"name": "a\nb"}),
    ("kind", {"kind": "deny"}), ("format", {"format": "csv"}), ("groups", {"groups": "kids"}),
    ("groups", {"groups": [""]}), ("enabled", {"enabled": "yes"}),
    ("update_interval", {"update_interval": 10}), ("update_interval", {"update_interval": "1d"}),
    ("mode", {"mode": "explode"}),
])
def test_bad_fields(store, field, kwargs):
    args = {"name": "x", "source": "https://a.example/l", **kwargs}
    with pytest.raises(ListValidationError) as err:
        store.create(**args)
    assert err.value.field == field


def test_update_validates_and_refuses_unknown_fields(store):
    store.create("a", "https://a.example/l")
    store.create("b", "https://b.example/l")
    with pytest.raises(ListConflictError):
        store.update(1, {"name": "b"})
    with pytest.raises(ListValidationError) as err:
        store.update(1, {"etag": "x"})
    assert err.value.field == "etag"
    with pytest.raises(ListValidationError) as err:
        store.update(1, {"source": "/etc/passwd"})
    assert err.value.field == "source"
    assert store.get(1)["source"] == "https://a.example/l"


def test_duplicate_name_conflicts(store):
    store.create("dup", "https://a.example/l")
    with pytest.raises(ListConflictError) as err:
        store.create("dup", "https://b.example/l")
    assert err.value.field == "name"


def test_local_path_inside_allowed_dir(store, lists_dir):
    (lists_dir / "mine.txt").write_text("ads.example\n")
    (lists_dir / "sub").mkdir()
    a = store.create("abs", str(lists_dir / "mine.txt"))
    assert a["source"] == str(lists_dir / "mine.txt")
    store.create("rel", "mine.txt")  # relative to the first allowed directory
    store.create("sub", str(lists_dir / "sub" / "later.txt"))  # need not exist yet
    # A symlink that stays inside is fine.
    os.symlink(lists_dir / "mine.txt", lists_dir / "alias.txt")
    store.create("alias", str(lists_dir / "alias.txt"))
    assert resolve_local_source("alias.txt", [lists_dir]) == os.path.realpath(lists_dir / "mine.txt")


def test_local_path_outside_allowed_dirs_refused(store, lists_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    for source in ("/etc/passwd", str(secret), str(lists_dir / ".." / "secret.txt"),
                   "../secret.txt", str(lists_dir), str(lists_dir / "sub" / ".." / ".." / "secret.txt"),
                   str(lists_dir) + "-evil/x.txt"):
        with pytest.raises(ListValidationError) as err:
            store.create("x", source)
        assert err.value.field == "source", source


def test_symlink_escape_refused(store, lists_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    os.symlink(secret, lists_dir / "innocent.txt")
    with pytest.raises(ListValidationError) as err:
        store.create("x", str(lists_dir / "innocent.txt"))
    assert err.value.field == "source"
    # A symlinked directory pointing outside: refused too.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "l.txt").write_text("x\n")
    os.symlink(outside, lists_dir / "linkdir")
    with pytest.raises(ListValidationError):
        store.create("y", str(lists_dir / "linkdir" / "l.txt"))
    # A symlink changed after saving is caught at read time.
    (lists_dir / "ok.txt").write_text("ok.example\n")
    os.symlink(lists_dir / "ok.txt", lists_dir / "swap.txt")
    store.create("z", str(lists_dir / "swap.txt"))
    os.unlink(lists_dir / "swap.txt")
    os.symlink(secret, lists_dir / "swap.txt")
    with pytest.raises(ListValidationError):
        store.local_path(str(lists_dir / "swap.txt"))


def test_no_local_dirs_means_no_local_lists(db, lists_dir):
    store = ListStore(db, [])
    with pytest.raises(ListValidationError, match="local lists are disabled"):
        store.create("x", str(lists_dir / "a.txt"))


def test_at_most_64_lists(store):
    for i in range(MAX_LISTS):
        row = store.create(f"l{i}", f"https://x.example/{i}.txt")
        assert row["list_id"] == i
    with pytest.raises(ListLimitError, match="at most 64 lists") as err:
        store.create("one too many", "https://x.example/65.txt")
    assert isinstance(err.value, ValueError) and err.value.field is None
    assert store.count() == 64
    # A freed slot is reused (smallest free id), so list ids stay within 0..63.
    store.delete(10)
    row = store.create("again", "https://x.example/again.txt")
    assert row["id"] == 10 and row["list_id"] == 9
    # The database refuses ids outside 1..64 even if code tried.
    with pytest.raises(sqlite3.IntegrityError):  # the table's CHECK
        store.db.conn.execute("INSERT INTO lists (id, name, source) VALUES (65, 'z', 'https://z/')")


def test_record_result(store):
    store.create("a", "https://a.example/l")
    r = store.record_result(1, ok=False, at=5.0, error="HTTP 500")
    assert r["last_error"] == "HTTP 500" and r["last_attempt"] == 5.0 and r["last_success"] is None
    r = store.record_result(1, ok=True, at=6.0, entries=3, errors=1, skipped={"$client": 2},
                            bytes=99, etag='"x"', last_modified="lm")
    assert r["last_error"] is None and r["last_success"] == 6.0 and r["entries"] == 3
    assert r["skipped"] == {"$client": 2} and r["bytes"] == 99 and r["etag"] == '"x"'
    r = store.record_result(1, ok=None, attempted=False, entries=4)
    assert r["entries"] == 4 and r["last_attempt"] == 6.0 and r["etag"] == '"x"'
    r = store.record_result(1, ok=False, error="x" * 2000)
    assert len(r["last_error"]) <= 500
    assert store.record_result(7, ok=True) is None
