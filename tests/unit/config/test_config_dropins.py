"""Drop-in files (--config-dir, the image's /etc/burrow/burrow.d): applied over burrow.toml in name
order, key by key; a bad drop-in is named in the error and nothing starts."""

import subprocess
import sys

import pytest

from burrow import config
from burrow.config import ConfigError


@pytest.fixture
def base(tmp_path):
    p = tmp_path / "burrow.toml"
    p.write_text('upstream_dns_servers = ["192.0.2.1"]\n[cache]\nmax_bytes = 1024\nmin_ttl = 5\n')
    return p


def test_later_files_win_key_by_key(tmp_path, base):
    d = tmp_path / "burrow.d"
    d.mkdir()
    (d / "20-late.toml").write_text("[cache]\nmax_bytes = 4096\n")
    (d / "10-early.toml").write_text('upstream_dns_servers = ["10.0.2.2:5300"]\n[cache]\nmax_bytes = 2048\n')
    (d / "notes.txt").write_text("[cache]\nmax_bytes = 1\n")  # not *.toml: ignored
    cfg = config.load(base, environ={}, config_dir=d)
    assert cfg["cache.max_bytes"] == 4096
    assert cfg["cache.min_ttl"] == 5  # the base file's key stays where no drop-in names it
    assert cfg["upstream_dns_servers"] == ["10.0.2.2:5300"]
    assert cfg.source("cache.max_bytes") == "file"


def test_a_missing_folder_is_no_drop_ins(tmp_path, base):
    cfg = config.load(base, environ={}, config_dir=tmp_path / "absent")
    assert cfg["cache.max_bytes"] == 1024


def test_the_environment_still_wins(tmp_path, base):
    d = tmp_path / "burrow.d"
    d.mkdir()
    (d / "a.toml").write_text("[cache]\nmax_bytes = 2048\n")
    cfg = config.load(base, environ={"BURROW__CACHE__MAX_BYTES": "8192"}, config_dir=d)
    assert cfg["cache.max_bytes"] == 8192


def test_a_bad_drop_in_is_named(tmp_path, base):
    d = tmp_path / "burrow.d"
    d.mkdir()
    (d / "50-boot.toml").write_text("[cache]\nmax_bytes = -1\nnonsense = 1\n")
    with pytest.raises(ConfigError) as e:
        config.load(base, environ={}, config_dir=d)
    keys = [k for k, _ in e.value.errors]
    assert "50-boot.toml: cache.max_bytes" in keys and "50-boot.toml: cache.nonsense" in keys


def test_a_drop_in_that_is_not_toml_is_refused(tmp_path, base):
    d = tmp_path / "burrow.d"
    d.mkdir()
    (d / "x.toml").write_text("[cache\n")
    with pytest.raises(ConfigError, match="x.toml is not valid TOML"):
        config.load(base, environ={}, config_dir=d)


def test_check_config_reads_the_folder(tmp_path, base):
    d = tmp_path / "burrow.d"
    d.mkdir()
    (d / "a.toml").write_text("[cache]\nmax_bytes = 2048\n")
    out = subprocess.run([sys.executable, "-m", "burrow", "check-config", "--config", str(base),
                          "--config-dir", str(d)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "max_bytes = 2048  # file" in out.stdout
    (d / "b.toml").write_text("[cache]\nmax_bytes = \"lots\"\n")
    out = subprocess.run([sys.executable, "-m", "burrow", "check-config", "--config", str(base),
                          "--config-dir", str(d)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "b.toml: cache.max_bytes" in out.stdout
