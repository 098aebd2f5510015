"""Config: defaults, TOML layering, env overrides, and errors that name the key path."""

import pytest

from burrow import config
from burrow.config import ConfigError


def write(tmp_path, text):
    p = tmp_path / "burrow.toml"
    p.write_text(text)
    return p


def test_defaults_are_valid_and_safe():
    cfg = config.load(None, environ={})
    assert cfg["server.listen_address"] == ["127.0.0.1:5300"]
    assert cfg["server.web_ui_address"] == "127.0.0.1:8080"
    assert "192.168.0.0/16" in cfg["access.allowed_networks"]
    assert "0.0.0.0/0" not in cfg["access.allowed_networks"]
    assert cfg.source("cache.max_bytes") == "default"


def test_required_keys_exist_with_seed_names():
    keys = {k for k, _ in config.load(None, environ={}).items()}
    for k in ["upstream_dns_servers", "server.listen_address", "server.web_ui_address",
              "server.decision_trace", "cache.enabled", "cache.max_bytes", "cache.min_ttl",
              "cache.max_ttl", "cache.negative_ttl", "cache.serve_stale", "cache.prefetch",
              "rate_limit.enabled", "rate_limit.rps", "rate_limit.burst", "rate_limit.action",
              "rate_limit.cleanup_interval", "rate_limit.max_tracked_clients", "logging.level",
              "logging.format", "logging.output", "storage.data_dir",
              "storage.query_log_flush_interval", "storage.query_log_retention_days",
              "storage.query_log_max_bytes", "access.allowed_networks"]:
        assert k in keys


def test_file_values_and_port_defaults(tmp_path):
    p = write(tmp_path, 'upstream_dns_servers = ["192.0.2.1", "[2001:db8::1]:5353"]\n'
                        '[server]\nlisten_address = ["127.0.0.1:53", "::1"]\n'
                        '[cache]\nmax_bytes = 1024\n')
    cfg = config.load(p, environ={})
    assert cfg["upstream_dns_servers"] == ["192.0.2.1:53", "[2001:db8::1]:5353"]
    assert cfg["server.listen_address"] == ["127.0.0.1:53", "[::1]:53"]
    assert cfg["cache.max_bytes"] == 1024 and cfg.source("cache.max_bytes") == "file"


def test_listen_address_accepts_a_single_string(tmp_path):
    cfg = config.load(write(tmp_path, '[server]\nlisten_address = "127.0.0.1:5353"\n'), environ={})
    assert cfg["server.listen_address"] == ["127.0.0.1:5353"]


def test_every_error_is_reported_with_its_key_path(tmp_path):
    p = write(tmp_path, 'upstream_dns_servers = ["not-an-ip"]\nbogus = 1\n'
                        '[cache]\nmax_bytes = -5\nmin_ttl = "x"\n[nosuch]\na = 1\n'
                        '[rate_limit]\naction = "explode"\n[access]\nallowed_networks = ["10.0.0.0/33"]\n')
    with pytest.raises(ConfigError) as e:
        config.load(p, environ={})
    keys = {k for k, _ in e.value.errors}
    assert keys == {"upstream_dns_servers", "bogus", "cache.max_bytes", "cache.min_ttl", "nosuch",
                    "rate_limit.action", "access.allowed_networks"}


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, "[cache\n"), environ={})
    assert e.value.errors[0][0] == "(file)"
    with pytest.raises(ConfigError):
        config.load(tmp_path / "missing.toml", environ={})


def test_cross_check_min_ttl_le_max_ttl(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, "[cache]\nmin_ttl = 600\nmax_ttl = 60\n"), environ={})
    assert e.value.errors[0][0] == "cache.min_ttl"


def test_env_overrides_file(tmp_path):
    p = write(tmp_path, "[cache]\nmax_bytes = 1024\n")
    cfg = config.load(p, environ={"BURROW__CACHE__MAX_BYTES": "2048", "BURROW__RATE_LIMIT__ENABLED": "false"})
    assert cfg["cache.max_bytes"] == 2048 and cfg.source("cache.max_bytes") == "env"
    assert cfg["rate_limit.enabled"] is False
    with pytest.raises(ConfigError) as e:
        config.load(p, environ={"BURROW__CACHE__NOPE": "1"})
    assert e.value.errors[0][0] == "cache.nope"


def test_with_overrides_validates_and_keeps_original():
    cfg = config.load(None, environ={})
    new = cfg.with_overrides({"cache.max_bytes": 4096})
    assert new["cache.max_bytes"] == 4096 and cfg["cache.max_bytes"] != 4096
    assert new.source("cache.max_bytes") == "runtime"
    with pytest.raises(ConfigError):
        cfg.with_overrides({"cache.max_bytes": "lots"})


def test_readme_documents_every_option():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    missing = [o.key for o in config.OPTIONS if f"`{o.key}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"


def test_debug_logging_keeps_pyroute2_chatter_out(capsys):
    import logging

    from burrow.logfile import setup_logging
    setup_logging(config.load(None, environ={"BURROW__LOGGING__LEVEL": "debug"}))
    try:
        logging.getLogger("pyroute2").setLevel(logging.NOTSET)  # what importing pyroute2 does
        logging.getLogger("pyroute2.netlink.core").debug("message {'attrs': ...}")
        logging.getLogger("pyroute2.netlink.core").warning("netlink trouble")
        logging.getLogger("burrow.test").debug("ours")
        err = capsys.readouterr().err
        assert "message {'attrs'" not in err and "netlink trouble" in err and "ours" in err
    finally:
        logging.getLogger().handlers[:] = []
        logging.getLogger().setLevel(logging.WARNING)
