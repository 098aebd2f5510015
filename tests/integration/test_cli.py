"""The command line: --version, check-config, and refusing to start on a bad config."""

import socket
import subprocess
import sys

from burrow import __version__
from tests.support.burrow_proc import BurrowProcess
from tests.support.timing import wait_for


def burrow(*args, cwd=None, timeout=20):
    return subprocess.run([sys.executable, "-m", "burrow", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_version():
    r = burrow("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_check_config_prints_effective_config_with_sources(tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text("[cache]\nmax_bytes = 1234\n")
    r = burrow("check-config", "--config", str(cfg))
    assert r.returncode == 0
    assert "max_bytes = 1234  # file" in r.stdout
    assert "[rate_limit]" in r.stdout and "configuration OK" in r.stdout


def test_check_config_lists_every_error(tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text('[cache]\nmax_bytes = "big"\nwat = 1\n[server]\nlisten_address = "nope"\n')
    r = burrow("check-config", "--config", str(cfg))
    assert r.returncode == 2
    for key in ("cache.max_bytes", "cache.wat", "server.listen_address"):
        assert key in r.stdout


def test_run_refuses_to_start_with_errors(tmp_path):
    cfg = tmp_path / "b.toml"
    cfg.write_text("[cache]\nunknown_key = 1\n")
    r = burrow("run", "--config", str(cfg))
    assert r.returncode == 2 and "cache.unknown_key" in r.stderr


def test_tcp_idle_connections_are_closed_and_capped(tmp_path, upstream):
    with BurrowProcess(tmp_path, [upstream.address],
                       {"server": {"tcp_idle_timeout": 0.5, "max_tcp_connections": 3}}) as b:
        idle = socket.create_connection(("127.0.0.1", b.dns_port), timeout=5)
        assert idle.recv(10) == b""  # server closed the idle connection
        idle.close()
        held = [socket.create_connection(("127.0.0.1", b.dns_port), timeout=5) for _ in range(3)]
        extra = socket.create_connection(("127.0.0.1", b.dns_port), timeout=5)
        try:
            assert extra.recv(10) == b""  # over the cap: closed at once
        except ConnectionResetError:
            pass
        finally:
            extra.close()
            for s in held:
                s.close()

        def answered_over_tcp():  # once the server has seen the held connections close
            try:
                return b.query("after.example.test", tcp=True).answer
            except (EOFError, OSError):
                return None

        assert wait_for(answered_over_tcp, what="a TCP slot to come free")
