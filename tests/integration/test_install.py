"""A complete install: the built wheel, installed into a fresh virtualenv, is a whole Burrow.

scripts/run and scripts/test install the checkout in editable mode, so the code reads its files
from the repository; the image and anyone running ``pip install .`` get only what the wheel
carries and what it declares. This builds the sdist and, from it, the wheel (``python -m build``,
each step in its own isolated build environment, as any installer does), installs the wheel with
its declared dependencies into a new virtualenv, and starts that virtualenv's ``burrow`` on
loopback against a test upstream: /docs and /redoc with their viewer files, the admin page with
its script and style, the vendored uPlot and the .gz files the wheel build makes
(scripts/build_web.py, run by setup.py), and the board files must all be found.

Bounded: each step has its own time limit. About 30 s for the module on a 2-core machine with
other work running (build ~10 s, venv ~6 s, install ~3 s from pip's cache, then Burrow's start
and the checks); a first run that downloads the dependencies takes longer.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import REPO_ROOT, BurrowProcess

pytestmark = pytest.mark.timeout(900)  # the sum of the step limits below, and some

BUILD_TIMEOUT = 300.0  # sdist + wheel, each in an isolated environment with setuptools
VENV_TIMEOUT = 120.0
INSTALL_TIMEOUT = 300.0  # the wheel and its declared dependencies
BOARD_FILES = sorted(p.stem for p in (REPO_ROOT / "board").glob("*.toml"))
A_NAMED_BOARD = "rpi-4"  # found only if the board files came with the install


def clean_env() -> dict[str, str]:
    """This environment without what would point the installed Burrow back at the checkout."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "BURROW_BOARD_DIR", "VIRTUAL_ENV"):
        env.pop(key, None)
    return env


def run(argv: list[str], timeout: float, cwd: Path) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, \
        f"{argv} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


class Installed:
    def __init__(self, wheel: Path, venv: Path):
        self.wheel = wheel
        self.venv = venv

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def python_json(self, code: str, cwd: Path):
        """Run CODE with the installed interpreter (not from the checkout); its printed JSON."""
        return json.loads(run([self.python, "-c", code], 60.0, cwd).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    # `build` is in the [test] extra: without it this fails (it does not skip).
    assert importlib.util.find_spec("build"), "python -m build is missing: pip install -e '.[test]'"
    work = tmp_path_factory.mktemp("install")
    dist = work / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO_ROOT)], BUILD_TIMEOUT, work)
    wheels = sorted(dist.glob("burrow-*.whl"))
    assert len(wheels) == 1, wheels
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], VENV_TIMEOUT, work)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheels[0])],
        INSTALL_TIMEOUT, work)
    return Installed(wheels[0], venv)


def test_the_wheel_carries_the_board_files_the_api_viewers_and_the_admin_page(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {"burrow/web/index.html", "burrow/web/js/main.js", "burrow/web/js/screens/dashboard.js",
            "burrow/web/app.css"} <= names
    # The wheel build ran scripts/build_web.py (setup.py): vendored uPlot with its licence, and
    # a .gz beside every text file of the page, never in the sdist.
    assert {"burrow/web/vendor/uplot/uPlot.esm.min.js", "burrow/web/vendor/uplot/uPlot.min.css",
            "burrow/web/vendor/uplot/LICENSE"} <= names, sorted(n for n in names if "/web/" in n)
    texts = [n for n in names if n.startswith("burrow/web/") and n.endswith((".html", ".js", ".css"))]
    assert [n for n in texts if n + ".gz" not in names] == []
    with tarfile.open(next(installed.wheel.parent.glob("burrow-*.tar.gz"))) as sdist:
        shipped = sdist.getnames()
    assert any(n.endswith("/package-lock.json") for n in shipped), shipped
    assert not [n for n in shipped if n.endswith(".gz") or "/web/vendor/" in n]
    assert not [n for n in BOARD_FILES if f"burrow/board/files/{n}.toml" not in names], sorted(names)
    viewers = [n for n in names if n.startswith("burrow/api/viewers/")]
    assert any(n.endswith("/swagger-ui-bundle.js") for n in viewers), viewers
    assert any(n.endswith("/redoc.standalone.js") for n in viewers), viewers
    # The licences travel with the files they cover.
    assert sum(n.endswith("/LICENSE") for n in viewers) >= 2, viewers


def test_the_installed_package_finds_every_board_file(installed, tmp_path):
    found = installed.python_json(
        "import json, burrow; from burrow.board import boards; "
        "print(json.dumps([burrow.__file__, str(boards.default_board_dir()), sorted(boards.load_all())]))",
        tmp_path)
    package_file, board_dir, names = found
    assert Path(package_file).is_relative_to(installed.venv), package_file  # not the checkout
    assert Path(board_dir).is_relative_to(installed.venv), board_dir
    assert names == BOARD_FILES


def installed_web_dir(installed: Installed, cwd: Path) -> Path:
    web = Path(installed.python_json(
        "import json; from burrow.api import web_ui; print(json.dumps(str(web_ui.WEB_DIR)))", cwd))
    assert web.is_relative_to(installed.venv), web  # not the checkout
    return web


def test_the_installed_burrow_serves_docs_redoc_the_admin_page_and_its_board(installed, up, tmp_path,
                                                                             monkeypatch):
    for key in ("PYTHONPATH", "BURROW_BOARD_DIR"):  # BurrowProcess passes this environment on
        monkeypatch.delenv(key, raising=False)
    config = {"board": {"name": A_NAMED_BOARD, "status_leds": False, "button": False}}
    with BurrowProcess(tmp_path / "run", [up.address], config,
                       command=[str(installed.venv / "bin" / "burrow")]) as b:
        assert b.query("www.example.com", "A").answer  # it resolves through the test upstream

        for page in ("/docs", "/redoc"):
            status, html = b.http("GET", page)
            assert status == 200, (page, html)
            assets = re.findall(r'(?:src|href)="(/docs/[^"]+)"', html)
            assert assets, html
            for asset in assets:
                status, body = b.http("GET", asset)
                assert status == 200 and len(body) > 100, (page, asset, status, str(body)[:200])

        status, html = b.http("GET", "/")
        assert status == 200, html
        web = installed_web_dir(installed, tmp_path)
        assets = re.findall(r'(?:src|href)="/ui/v/[0-9a-f]{16}/([^"]+)"', html)
        assert "js/main.js" in assets and "app.css" in assets, html
        for rel in assets + ["vendor/uplot/uPlot.esm.min.js", "vendor/uplot/uPlot.min.css"]:
            bundled = re.search(r'"(/ui/v/[0-9a-f]{16}/)', html).group(1) + rel
            status, body = b.http("GET", bundled)
            assert status == 200, (bundled, body)
            assert body == (web / rel).read_text()
            gz = urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{b.web_port}{bundled}", headers={"Accept-Encoding": "gzip"}), timeout=30)
            assert gz.headers["Content-Encoding"] == "gzip", bundled
            assert gz.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert gzip.decompress(gz.read()) == (web / rel).read_bytes()

        token = admin_token(b)
        status, system = authed(b, token, "GET", "/api/system")
        assert status == 200, system
        assert system["board"] == A_NAMED_BOARD, b.output()
