"""scripts/flash-writes at small scale: it runs the real process and measures something."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_flash_writes_reports_bytes_per_day(tmp_path):
    out = tmp_path / "flash.json"
    # One simulated hour in 6 s: 600x, ~350 queries/s, a flush every 0.1 s.
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/flash-writes"), "--queries-per-day", "50000",
         "--simulated-hours", "1", "--duration", "6", "--timeout", "40",
         "--python", sys.executable, "--work-dir", str(tmp_path), "--out", str(out)],
        capture_output=True, text=True, timeout=90, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result == json.loads(done.stdout)
    assert result["speedup"] == 600
    assert result["queries_sent"] > 100
    assert result["queries_answered"] > 0
    assert result["querylog_rows"] and result["querylog_rows"] > 0
    assert 0 < result["simulated_days"] < 1
    assert result["process"]["net_write_bytes"] > 0
    assert result["bytes_per_day"] > 0 and result["bytes_per_query"] > 0
    assert result["burrow_exit_code"] == 0
    assert "querylog.db" in result["data_files"]
    assert not list(tmp_path.glob("burrow-flash-*")), "the work dir is cleaned up"
