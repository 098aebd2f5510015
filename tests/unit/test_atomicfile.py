"""burrow.atomicfile: the old file or the whole new one, never a part, and never readable by others."""

import os

import pytest

from burrow import atomicfile


def test_a_write_replaces_the_file_with_its_mode_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "new-folder" / "zone.rpz"
    atomicfile.write_atomic(path, "one\n", 0o644)
    atomicfile.write_atomic(path, b"two\n")
    assert path.read_bytes() == b"two\n"
    assert os.stat(path).st_mode & 0o777 == 0o600  # the default: a key's mode
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert os.listdir(path.parent) == ["zone.rpz"]


def test_an_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "f.pem"
    atomicfile.write_atomic(path, b"old contents")

    def power_cut(src, dst):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomicfile.os, "replace", power_cut)
    with pytest.raises(OSError):
        atomicfile.write_atomic(path, b"new contents that never land")
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["f.pem"]
