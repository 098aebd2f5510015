"""Writing a certificate and its key so that a crash at any point leaves a pair written whole
and together: the states a power cut can leave are made by hand, then settled."""

from __future__ import annotations

import os
import stat

import pytest

from burrow.atomicfile import write_atomic
from burrow.tls.certfiles import complete_pending_pair, write_pair


@pytest.fixture
def pair(tmp_path):
    cert, key = tmp_path / "tls" / "fullchain.pem", tmp_path / "tls" / "key.pem"
    write_pair(cert, key, b"OLD CERT", b"OLD KEY")
    return cert, key


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_a_pair_is_written_with_the_key_private(tmp_path):
    cert, key = tmp_path / "new" / "fullchain.pem", tmp_path / "new" / "key.pem"
    old_umask = os.umask(0)
    try:
        write_pair(cert, key, b"CERT", b"KEY")
    finally:
        os.umask(old_umask)
    assert (cert.read_bytes(), key.read_bytes()) == (b"CERT", b"KEY")
    assert mode(key) == 0o600 and mode(cert) == 0o644 and mode(cert.parent) == 0o700
    assert sorted(p.name for p in cert.parent.iterdir()) == ["fullchain.pem", "key.pem"]


def test_a_world_readable_key_file_is_made_private_when_replaced(pair):
    cert, key = pair
    key.chmod(0o644)
    write_pair(cert, key, b"NEW CERT", b"NEW KEY")
    assert mode(key) == 0o600 and key.read_bytes() == b"NEW KEY"


def test_a_crash_before_any_rename_keeps_the_old_pair(pair):
    cert, key = pair
    (key.parent / "key.pem.new").write_bytes(b"NEW KEY")
    (cert.parent / "fullchain.pem.new").write_bytes(b"NEW CE")  # cut mid-write
    assert complete_pending_pair(cert, key) == "rolled back"
    assert (cert.read_bytes(), key.read_bytes()) == (b"OLD CERT", b"OLD KEY")
    assert sorted(p.name for p in cert.parent.iterdir()) == ["fullchain.pem", "key.pem"]


def test_a_crash_while_the_key_alone_is_written_keeps_the_old_pair(pair):
    cert, key = pair
    (key.parent / "key.pem.new").write_bytes(b"NEW")
    assert complete_pending_pair(cert, key) == "rolled back"
    assert (cert.read_bytes(), key.read_bytes()) == (b"OLD CERT", b"OLD KEY")


def test_a_crash_between_the_renames_completes_the_new_pair(pair):
    cert, key = pair
    key.write_bytes(b"NEW KEY")  # the key's rename happened
    (cert.parent / "fullchain.pem.new").write_bytes(b"NEW CERT")
    assert complete_pending_pair(cert, key) == "completed"
    assert (cert.read_bytes(), key.read_bytes()) == (b"NEW CERT", b"NEW KEY")
    assert not (cert.parent / "fullchain.pem.new").exists()


def test_nothing_pending_changes_nothing(pair):
    cert, key = pair
    assert complete_pending_pair(cert, key) is None
    assert (cert.read_bytes(), key.read_bytes()) == (b"OLD CERT", b"OLD KEY")


def test_write_atomic_replaces_one_file(tmp_path):
    path = tmp_path / "acme" / "account.key"
    write_atomic(path, b"one", 0o600)
    write_atomic(path, b"two", 0o600)
    assert path.read_bytes() == b"two" and mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["account.key"]
