"""scripts/build_web.py against a fake npm registry on 127.0.0.1 (never the real one): tarballs
checked against the lock, the previous copy kept on any failure, the cache used offline, and
deterministic .gz files beside the page's files."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import io
import json
import shutil
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_web.py"


def load():
    spec = importlib.util.spec_from_file_location("build_web", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_web"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bw = load()

UPLOT_IIFE = b'/*! uPlot stand-in */\nvar uPlot=function(){"use strict";function P(){}return P}();\n'


def tgz(files: dict[str, bytes]) -> bytes:
    """The same files always give the same bytes (gzip's header time is fixed at 0): the lock's
    integrity and the registry's tarball are made by separate calls, maybe a second apart."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo("package/" + name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return gzip.compress(out.getvalue(), mtime=0)


def uplot_tgz(tag: bytes = b"") -> bytes:
    return tgz({"dist/uPlot.iife.min.js": UPLOT_IIFE + tag, "dist/uPlot.min.css": b".uplot{color:red}" + tag,
                "dist/uPlot.esm.js": b"export default 1;", "LICENSE": b"MIT " + tag, "package.json": b"{}"})


AXE = tgz({"axe.min.js": b"window.axe={run(){}};", "LICENSE": b"MPL-2.0", "LICENSE-3RD-PARTY.txt": b"others"})


class Registry:
    """Serves ``files`` (URL path → bytes) on 127.0.0.1; counts the requests."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.hits: list[str] = []
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                registry.hits.append(self.path)
                body = registry.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry():
    r = Registry()
    yield r
    r.close()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def write_project(root: Path, uplot: tuple[str, bytes], axe: tuple[str, bytes] = ("4.0.0", AXE),
                  integrity: str | None = None) -> None:
    """package.json and package-lock.json naming uplot and axe-core at these versions; the lock's
    integrity is the tarball's own unless ``integrity`` says otherwise."""
    (uv, ubody), (av, abody) = uplot, axe
    manifest = {"name": "t", "dependencies": {"uplot": uv}, "devDependencies": {"axe-core": av}}
    lock = {"name": "t", "lockfileVersion": 3, "packages": {
        "": {"name": "t", "dependencies": {"uplot": uv}, "devDependencies": {"axe-core": av}},
        "node_modules/uplot": {"version": uv, "resolved": f"{bw.REGISTRY}uplot/-/uplot-{uv}.tgz",
                               "integrity": integrity or sri(ubody)},
        "node_modules/axe-core": {"version": av, "resolved": f"{bw.REGISTRY}axe-core/-/axe-core-{av}.tgz",
                                  "integrity": sri(abody), "dev": True}}}
    (root / "package.json").write_text(json.dumps(manifest))
    (root / "package-lock.json").write_text(json.dumps(lock))


@pytest.fixture
def project(tmp_path, registry):
    root = tmp_path / "repo"
    web = root / "firmware/burrow/web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text('<script type="module" src="/ui/js/main.js"></script>')
    (web / "js/main.js").write_text("import uPlot from '../vendor/uplot/uPlot.esm.min.js';\n" * 20)
    (web / "logo.png").write_bytes(b"\x89PNG")  # not text: no .gz
    registry.files["/uplot/-/uplot-1.0.0.tgz"] = uplot_tgz()
    registry.files["/axe-core/-/axe-core-4.0.0.tgz"] = AXE
    write_project(root, ("1.0.0", uplot_tgz()))
    return root


def build(root: Path, registry: Registry, cache: Path, **kw):
    logged: list[str] = []
    bw.build(root, registry=registry.url, cache=cache, log=logged.append, **kw)
    return logged


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_build_vendors_the_locked_files_and_compresses_the_page(project, registry, tmp_path):
    build(project, registry, tmp_path / "cache")
    vendor = project / "firmware/burrow/web/vendor/uplot"
    names = sorted(p.name for p in vendor.iterdir())
    assert names == ["LICENSE", "VERSIONS.json", "uPlot.esm.min.js", "uPlot.esm.min.js.gz",
                     "uPlot.min.css", "uPlot.min.css.gz"]
    # The minified IIFE, unchanged, made importable by one added line.
    assert (vendor / "uPlot.esm.min.js").read_bytes() == UPLOT_IIFE + b"export default uPlot;\n"
    state = json.loads((vendor / "VERSIONS.json").read_text())
    assert state["version"] == "1.0.0" and state["integrity"] == sri(uplot_tgz())
    axe = project / "tests/browser/vendor/axe-core"
    assert (axe / "axe.min.js").read_bytes() == b"window.axe={run(){}};" and (axe / "LICENSE").exists()
    web = project / "firmware/burrow/web"
    for rel in ("index.html", "js/main.js", "vendor/uplot/uPlot.min.css"):
        assert gzip.decompress((web / (rel + ".gz")).read_bytes()) == (web / rel).read_bytes(), rel
    assert not (web / "logo.png.gz").exists()
    assert not list(axe.glob("*.gz"))  # the tests' copy is not served: nothing to compress


def test_a_second_run_is_offline_and_changes_nothing(project, registry, tmp_path):
    build(project, registry, tmp_path / "cache")
    before = snapshot(project)
    mtimes = {p: p.stat().st_mtime_ns for p in project.rglob("*") if p.is_file()}
    hits = len(registry.hits)
    build(project, registry, tmp_path / "cache")
    assert len(registry.hits) == hits
    assert snapshot(project) == before
    assert {p: p.stat().st_mtime_ns for p in project.rglob("*") if p.is_file()} == mtimes
    # Without the vendored folder, the cache brings it back without the network.
    registry.close()
    shutil.rmtree(project / "firmware/burrow/web/vendor")
    build(project, registry, tmp_path / "cache")
    assert snapshot(project) == before


def test_a_tampered_download_is_refused_and_the_previous_copy_stays(project, registry, tmp_path):
    cache = tmp_path / "cache"
    build(project, registry, cache)
    web = project / "firmware/burrow/web"
    before = snapshot(web)
    cached = sorted(p.name for p in cache.iterdir())
    # The lock moves to 2.0.0; the registry serves other bytes than those the lock names.
    write_project(project, ("2.0.0", uplot_tgz(b"genuine")))
    registry.files["/uplot/-/uplot-2.0.0.tgz"] = uplot_tgz(b"tampered")
    with pytest.raises(bw.BuildError, match=r"uplot@2\.0\.0 .* does not match package-lock.json: integrity"):
        build(project, registry, cache)
    assert snapshot(web) == before
    assert sorted(p.name for p in cache.iterdir()) == cached  # nothing unverified is cached


def test_the_command_fails_with_the_reason(project, registry, tmp_path, capsys, monkeypatch):
    write_project(project, ("2.0.0", uplot_tgz(b"genuine")))
    registry.files["/uplot/-/uplot-2.0.0.tgz"] = uplot_tgz(b"tampered")
    monkeypatch.setattr(bw, "ROOT", project)
    assert bw.main(["--registry", registry.url, "--cache", str(tmp_path / "cache")]) == 1
    err = capsys.readouterr().err
    assert "build-web: error: uplot@2.0.0" in err and "does not match package-lock.json" in err
    assert not (project / "firmware/burrow/web/vendor").exists()


def test_a_failed_download_leaves_the_previous_copy(project, registry, tmp_path):
    cache = tmp_path / "cache"
    build(project, registry, cache)
    web = project / "firmware/burrow/web"
    before = snapshot(web)
    write_project(project, ("3.0.0", uplot_tgz(b"three")))  # the registry has no 3.0.0: 404
    with pytest.raises(bw.BuildError, match=r"download of .*uplot-3\.0\.0\.tgz failed: HTTP 404"):
        build(project, registry, cache)
    assert snapshot(web) == before
    registry.close()  # nothing listening: a connection error, same outcome
    with pytest.raises(bw.BuildError, match="download of .* failed"):
        build(project, registry, cache)
    assert snapshot(web) == before


def test_a_corrupt_cache_entry_is_fetched_again(project, registry, tmp_path):
    cache = tmp_path / "cache"
    build(project, registry, cache, dev=False)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"not the tarball")
    shutil.rmtree(project / "firmware/burrow/web/vendor")
    hits = len(registry.hits)
    logged = build(project, registry, cache, dev=False)
    assert len(registry.hits) == hits + 1 and any("does not match the lock" in m for m in logged)
    assert entry.read_bytes() == uplot_tgz()


def test_no_dev_leaves_the_test_only_packages_out(project, registry, tmp_path):
    build(project, registry, tmp_path / "cache", dev=False)
    assert (project / "firmware/burrow/web/vendor/uplot/uPlot.esm.min.js").exists()
    assert not (project / "tests").exists()
    assert registry.hits == ["/uplot/-/uplot-1.0.0.tgz"]


def test_a_changed_lock_replaces_the_folder_whole(project, registry, tmp_path):
    build(project, registry, tmp_path / "cache")
    vendor = project / "firmware/burrow/web/vendor/uplot"
    (vendor / "stray.js").write_text("left by hand")
    write_project(project, ("2.0.0", uplot_tgz(b"v2")))
    registry.files["/uplot/-/uplot-2.0.0.tgz"] = uplot_tgz(b"v2")
    build(project, registry, tmp_path / "cache")
    assert not (vendor / "stray.js").exists() and not (vendor / "stray.js.gz").exists()
    assert (vendor / "LICENSE").read_bytes() == b"MIT v2"
    assert gzip.decompress((vendor / "uPlot.min.css.gz").read_bytes()) == b".uplot{color:red}v2"
    assert not [p for p in vendor.parent.iterdir() if p.name.startswith(".")]  # no temporary folders


@pytest.mark.parametrize("change, message", [
    (lambda m, l: m["dependencies"].update(uplot="^1.0.0"), "disagree on dependencies"),
    (lambda m, l: (m["dependencies"].update(uplot="^1.0.0"), l["packages"][""]["dependencies"].update(uplot="^1.0.0")),
     "must name one exact version"),
    (lambda m, l: l["packages"]["node_modules/uplot"].update(resolved="https://example.invalid/u.tgz"),
     "must be resolved from https://registry.npmjs.org/"),
    (lambda m, l: l["packages"]["node_modules/uplot"].update(integrity="sha1-AAAA"), "needs a sha512 integrity"),
    (lambda m, l: l["packages"].pop("node_modules/uplot"), "no entry for uplot@1.0.0"),
    (lambda m, l: (m["dependencies"].pop("uplot"), l["packages"][""]["dependencies"].pop("uplot")),
     r"does not name \['uplot'\]"),
])
def test_a_lock_that_does_not_pin_is_refused(project, registry, tmp_path, change, message):
    manifest = json.loads((project / "package.json").read_text())
    lock = json.loads((project / "package-lock.json").read_text())
    change(manifest, lock)
    (project / "package.json").write_text(json.dumps(manifest))
    (project / "package-lock.json").write_text(json.dumps(lock))
    with pytest.raises(bw.BuildError, match=message):
        build(project, registry, tmp_path / "cache")
    assert registry.hits == [] and not (project / "firmware/burrow/web/vendor").exists()


def test_the_fake_tarballs_do_not_depend_on_the_clock(monkeypatch):
    first = uplot_tgz(b"x")
    monkeypatch.setattr("time.time", lambda: 4_000_000_000.0)
    assert uplot_tgz(b"x") == first


def test_an_unexpected_uplot_build_is_refused():
    with pytest.raises(bw.BuildError, match="no longer starts with"):
        bw.uplot_esm_min({"uPlot.iife.min.js": b"/*! x */\nexport default function(){}\n"})


def test_the_gz_files_are_deterministic_and_follow_their_sources(tmp_path):
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "a.js").write_text("console.log('a');\n" * 100)
    (web / "sub/b.css").write_text("body{color:#000}\n" * 50)
    assert bw.precompress(web) == (2, 0)
    first = {p.name: p.read_bytes() for p in web.rglob("*.gz")}
    for packed in first.values():
        assert packed[:3] == b"\x1f\x8b\x08" and packed[3] == 0  # gzip, deflate, no file name
        assert packed[4:8] == b"\0\0\0\0"  # mtime 0
    assert bw.precompress(web) == (0, 0)  # same bytes: not rewritten
    for p in web.rglob("*.gz"):
        p.unlink()
    bw.precompress(web)
    assert {p.name: p.read_bytes() for p in web.rglob("*.gz")} == first  # byte for byte
    (web / "a.js").write_text("console.log('changed');\n")
    (web / "sub/b.css").unlink()
    assert bw.precompress(web) == (1, 1)
    assert gzip.decompress((web / "a.js.gz").read_bytes()) == b"console.log('changed');\n"
    assert not (web / "sub/b.css.gz").exists()


def test_the_page_is_within_its_weight_budget():
    """All JS + CSS of the real page, vendored uPlot included, gzipped: at most 150 KB (issue 15;
    docs/benchmarks.md, "Page weight")."""
    web = bw.ROOT / bw.WEB
    rows = bw.weights(web)
    assert "vendor/uplot/uPlot.esm.min.js" in [r[0] for r in rows], "run scripts/build-web (scripts/test does)"
    total = sum(packed for _, _, packed in rows)
    assert total <= bw.BUDGET_GZIP, f"{total} bytes gzipped: over the budget; scripts/build-web --sizes lists them"
