"""image-build's host-side helpers: config.txt lines from the board files, and the manifest."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"image_{name}", REPO / "image-build" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bc = load("boardconfig")
mf = load("manifest")


def test_every_real_board_file_lands_under_its_model_filter():
    text = bc.config_txt(bc.read_boards(REPO / "board"))
    sections = [line for line in text.splitlines() if line.startswith("[")]
    assert sections == ["[pi3]", "[pi4]", "[pi5]", "[pi02]", "[all]"]  # generic has none
    zero = text.split("[pi02]\n")[1].split("[all]")[0].split()
    assert zero == ["dtparam=act_led_trigger=none", "dtparam=act_led_activelow=on"]
    assert text.endswith("[all]\n")  # whatever raspi-firmware or an owner appends applies to all


def test_a_board_without_a_filter_or_with_a_section_line_is_refused(tmp_path):
    with pytest.raises(bc.BoardConfigError, match="no config.txt model filter"):
        bc.config_txt({"odroid": ["x=1"]})
    with pytest.raises(bc.BoardConfigError, match="is not one setting"):
        bc.config_txt({"rpi-4": ["[all]"]})
    (tmp_path / "rpi-4.toml").write_text("config_txt = 'x'\n")
    with pytest.raises(bc.BoardConfigError, match="must be a list of strings"):
        bc.read_boards(tmp_path)
    assert bc.main(["boardconfig", str(tmp_path)]) == 1


def test_the_manifest_lists_everything_with_checksums(tmp_path):
    xz, raw = tmp_path / "b.img.xz", tmp_path / "b.img"
    xz.write_bytes(b"compressed")
    raw.write_bytes(b"raw image")
    text = mf.manifest(image=str(xz), raw=str(raw), version="1.2.3", disk_id="0a1b2c3d",
                       packages=mf.read_packages("systemd\t252.38-1~deb12u1\tarm64\nbash\t5.2.15-2+b9\tarm64\n"),
                       wheels=mf.read_wheels("uvloop==0.23.0\nburrow==1.2.3\n"), build_seconds=600, built_at=0)
    assert f"sha256: {hashlib.sha256(b'compressed').hexdigest()}" in text
    assert f"raw_sha256: {hashlib.sha256(b'raw image').hexdigest()}" in text
    assert "raw_bytes: 9" in text and "disk_identifier: 0x0a1b2c3d" in text and "build_seconds: 600" in text
    assert "## Debian packages (2)" in text and "\nbash 5.2.15-2+b9 arm64\nsystemd 252.38-1~deb12u1 arm64\n" in text
    assert "\nburrow==1.2.3\nuvloop==0.23.0\n" in text


def test_bad_or_empty_lists_make_no_manifest(tmp_path, capsys):
    with pytest.raises(ValueError, match="line 1"):
        mf.read_packages("systemd 252\n")
    with pytest.raises(ValueError, match="line 2"):
        mf.read_wheels("a==1\nb\n")
    (tmp_path / "p.tsv").write_text("")
    (tmp_path / "w.txt").write_text("a==1\n")
    argv = ["--image", "x", "--raw", "y", "--version", "1", "--disk-id", "0", "--packages",
            str(tmp_path / "p.tsv"), "--wheels", str(tmp_path / "w.txt"), "--build-seconds", "1"]
    assert mf.main(argv) == 1 and "refusing" in capsys.readouterr().err
