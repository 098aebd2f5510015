"""overlays/rootfs/usr/lib/burrow/firstboot, the image's first-boot program, against a fake root
and boot partition in a temp folder (BURROW_ROOT_DIR / BURROW_BOOT_DIR). The boot test
(tests/image) runs it for real in the booted image."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "overlays/rootfs/usr/lib/burrow/firstboot"


@pytest.fixture
def fb(tmp_path, monkeypatch):
    """The module, with its root and boot partition in tmp_path and every program it runs
    recorded instead of run (burrow check-config is the real one)."""
    root, boot = tmp_path / "root", tmp_path / "boot"
    (root / "etc/burrow").mkdir(parents=True)
    (root / "etc/burrow/burrow.toml").write_text((REPO / "overlays/rootfs/etc/burrow/burrow.toml").read_text())
    boot.mkdir()
    monkeypatch.setenv("BURROW_ROOT_DIR", str(root))
    monkeypatch.setenv("BURROW_BOOT_DIR", str(boot))
    loader = importlib.machinery.SourceFileLoader("burrow_firstboot", str(SCRIPT))
    spec = importlib.util.spec_from_loader("burrow_firstboot", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    burrow = tmp_path / "burrow"
    burrow.write_text(f"#!/bin/sh\nexec {sys.executable} -m burrow \"$@\"\n")
    burrow.chmod(0o755)
    module.BURROW = str(burrow)
    module.ran = []
    real_run = subprocess.run

    def run(argv, *a, **kw):
        if argv[0] == str(burrow):
            return real_run(argv, *a, **kw)
        module.ran.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")
    monkeypatch.setattr(module.subprocess, "run", run)
    me = types.SimpleNamespace(pw_uid=os.getuid(), pw_gid=os.getgid())
    monkeypatch.setattr("pwd.getpwnam", lambda name: me)
    module.root, module.boot = root, boot
    return module


WIFI = "# my home\ncountry=de\nssid=Home Net\npassword=correct horse battery\n"


def test_wifi_file_parses(fb):
    assert fb.parse_wifi(WIFI) == {"country": "DE", "ssid": "Home Net", "password": "correct horse battery",
                                   "hidden": "no"}
    assert fb.parse_wifi("country=US\nssid=Cafe\nhidden=yes\n") == {"country": "US", "ssid": "Cafe",
                                                                     "hidden": "yes"}


@pytest.mark.parametrize("text, message", [
    ("ssid=x\npassword=12345678\n", "country= is missing"),
    ("country=DE\npassword=12345678\n", "ssid= is missing"),
    ("country=Germany\nssid=x\n", "two-letter code"),
    ("country=DE\nssid=x\npassword=short\n", "8 to 63"),
    ("country=DE\nssid=x\npassword=" + "g" * 64 + "\n", "8 to 63"),  # 64 characters must be hex
    ("country=DE\nssid=" + "s" * 33 + "\n", "1 to 32 bytes"),
    ("country=DE\nssid=x\npasword=12345678\n", "line 3: unknown key 'pasword'"),
    ("country=DE\ncountry=FR\nssid=x\n", "line 2: country is given twice"),
    ("country=DE\nssid x\n", "line 2: expected key=value"),
    ("country=DE\nssid=x\nhidden=maybe\n", "hidden must be yes or no"),
])
def test_a_bad_wifi_file_is_refused_with_its_line(fb, text, message):
    with pytest.raises(fb.Invalid, match=message):
        fb.parse_wifi(text)


def test_the_psk_is_the_standard_one_and_the_passphrase_is_not_kept(fb):
    # IEEE 802.11i-2004, annex H.4.1 test vector: passphrase "password", SSID "IEEE".
    conf = fb.wpa_conf({"country": "GB", "ssid": "IEEE", "password": "password", "hidden": "no"})
    assert "psk=f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e" in conf
    assert "ssid=49454545" in conf and "country=GB" in conf and '"password"' not in conf
    open_net = fb.wpa_conf({"country": "GB", "ssid": "Cafe", "hidden": "yes"})
    assert "key_mgmt=NONE" in open_net and "scan_ssid=1" in open_net and "psk=" not in open_net
    hexkey = "AB" * 32
    assert f"psk={hexkey.lower()}" in fb.wpa_conf({"country": "GB", "ssid": "x", "password": hexkey, "hidden": "no"})


def test_wifi_is_set_up_and_the_file_deleted(fb):
    (fb.boot / "burrow-wifi.txt").write_text(WIFI)
    assert fb.wifi() == []
    conf = fb.root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
    assert "ssid=" + b"Home Net".hex() in conf.read_text()
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    assert not (fb.boot / "burrow-wifi.txt").exists()
    assert ["systemctl", "enable", "wpa_supplicant@wlan0.service"] in fb.ran


def test_a_bad_wifi_file_changes_nothing_but_is_deleted_and_explained(fb):
    (fb.boot / "burrow-wifi.txt").write_text("country=DE\nssid=x\npassword=short\n")
    problems = fb.wifi()
    assert len(problems) == 1 and "8 to 63" in problems[0] and "deleted" in problems[0]
    assert not (fb.root / "etc/wpa_supplicant").exists() and fb.ran == []
    assert not (fb.boot / "burrow-wifi.txt").exists()  # it may hold a password
    fb.report(problems)
    assert "8 to 63" in (fb.boot / "burrow-firstboot-errors.txt").read_text()


def test_an_override_that_checks_out_is_moved_into_burrow_d(fb):
    text = '# mine\nupstream_dns_servers = ["10.0.2.2:5300"]\n'
    (fb.boot / "burrow.toml").write_text(text)
    assert fb.override() == []
    assert (fb.root / "etc/burrow/burrow.d/50-boot-partition.toml").read_text() == text
    assert not (fb.boot / "burrow.toml").exists()


def test_an_override_that_does_not_check_out_is_refused_and_explained(fb):
    (fb.boot / "burrow.toml").write_text("[cache]\nmax_bytes = -5\nbogus = 1\n")
    problems = fb.override()
    assert len(problems) == 1
    assert "50-boot-partition.toml: cache.max_bytes" in problems[0] and "cache.bogus" in problems[0]
    assert not (fb.root / "etc/burrow/burrow.d").exists()
    assert (fb.boot / "burrow.toml.rejected").exists() and not (fb.boot / "burrow.toml").exists()


def test_the_jwt_key_is_made_once_per_board(fb):
    fb.jwt_key()
    key = fb.root / "var/lib/burrow/jwt.key"
    first = key.read_bytes()
    assert len(first) == 32 and oct(key.stat().st_mode & 0o777) == "0o600"
    fb.jwt_key()  # again (a power cut before the marker): the same key
    assert key.read_bytes() == first


def test_first_boot_runs_to_its_marker_once(fb, monkeypatch):
    grown = []
    monkeypatch.setattr(fb, "grow_root", lambda: grown.append(1))
    (fb.boot / "burrow-wifi.txt").write_text(WIFI)
    assert fb.main(["firstboot"]) == 0
    assert grown == [1] and (fb.root / "var/lib/burrow-firstboot/done").exists()
    assert not (fb.boot / "burrow-firstboot-errors.txt").exists()
    assert fb.main(["firstboot"]) == 0 and grown == [1]  # done: nothing runs again
    assert fb.main(["firstboot", "what"]) == 2


def test_a_failed_step_still_reads_the_owners_files_and_runs_again_next_boot(fb, monkeypatch):
    def broken():
        raise RuntimeError("growpart /dev/mmcblk0 2: failed")
    monkeypatch.setattr(fb, "grow_root", broken)
    (fb.boot / "burrow-wifi.txt").write_text(WIFI)
    assert fb.main(["firstboot"]) == 1
    assert (fb.root / "etc/wpa_supplicant/wpa_supplicant-wlan0.conf").exists()
    assert (fb.root / "var/lib/burrow/jwt.key").exists()  # the other steps ran
    assert not (fb.root / "var/lib/burrow-firstboot/done").exists()  # so the next boot tries again
    monkeypatch.setattr(fb, "grow_root", lambda: None)
    assert fb.main(["firstboot"]) == 0 and (fb.root / "var/lib/burrow-firstboot/done").exists()


def test_grow_root_accepts_nochange_and_refuses_failure(fb, monkeypatch):
    monkeypatch.setattr(fb, "root_partition", lambda: ("/dev/vda2", "/dev/vda", "2"))
    answers = {"growpart": subprocess.CompletedProcess([], 1, "NOCHANGE: partition 2 is size 100", "")}
    monkeypatch.setattr(fb.subprocess, "run", lambda argv, *a, **kw: fb.ran.append(argv) or
                        answers.get(argv[0], subprocess.CompletedProcess(argv, 0, "", "")))
    fb.grow_root()
    assert ["resize2fs", "/dev/vda2"] in fb.ran
    answers["growpart"] = subprocess.CompletedProcess([], 2, "", "failed to resize")
    with pytest.raises(RuntimeError, match="failed to resize"):
        fb.grow_root()


def test_ssh_takes_only_public_keys_from_the_file(fb):
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9xY2NzZWNyZXRrZXlmb3J0ZXN0aW5nb25seQ owner@laptop"
    (fb.boot / "ssh").write_text(f"# my key\n{key}\nnot a key\nssh-rsa\n")
    assert fb.ssh_prepare() == 0
    assert ["ssh-keygen", "-A"] in fb.ran
    keys = fb.root / "root/.ssh/authorized_keys"
    assert keys.read_text() == key + "\n"
    fb.ssh_prepare()  # every start: no duplicates
    assert keys.read_text() == key + "\n"
    (fb.boot / "ssh").write_text("")
    fb.ssh_prepare()
    assert keys.read_text() == key + "\n"
