"""Build the admin page's static files: vendor the third-party front-end code the lockfile names,
then write a gzip copy beside every file of the page.

Usage: scripts/build-web [--no-dev] [--registry URL] [--cache DIR] [--sizes]

1. Vendoring. ``package.json`` names the exact versions; ``package-lock.json`` names each one's
   tarball on the npm registry and its sha512 ``integrity``. No node is needed: each tarball is
   read from the local cache (``$BURROW_NPM_CACHE``, else ``$XDG_CACHE_HOME/burrow/npm``, else
   ``~/.cache/burrow/npm``) or downloaded, and checked against the lock before anything is
   copied. Only the files the page or the tests load are taken (``VENDORED`` below), with their
   licences, into git-ignored folders:

   - uplot → ``firmware/burrow/web/vendor/uplot/`` (shipped in the package, served under /ui/)
   - axe-core → ``tests/browser/vendor/axe-core/`` (browser tests only; ``--no-dev`` skips it)

   A folder is replaced whole, and only once everything for it is read and checked: a failed or
   tampered download is an error (exit status 1, the reason on stderr) that leaves the previous
   copy as it was. A folder already matching the lock (``VERSIONS.json`` in it, every file's
   sha256) is left alone, so re-runs are quick and need no network.

2. Precompression. Beside every text file of the page (``firmware/burrow/web/``, vendored
   files included) a ``.gz`` is written: gzip level 9 with mtime 0 and no file name, so the
   same input always gives the same bytes. A file whose ``.gz`` already holds those bytes is not
   rewritten; a ``.gz`` whose source is gone is removed. The web server (burrow/api/web_ui.py)
   answers with the ``.gz`` when the client accepts gzip and the ``.gz`` matches the file.

3. ``--sizes``: the page weight, each JS and CSS file raw and gzipped, and the total against
   the budget (``BUDGET_GZIP``; docs/benchmarks.md, "Page weight").

``scripts/run`` (``--no-dev``), ``scripts/test`` and the wheel build (setup.py, a build_py step)
run it. Standard library only: it runs in pip's isolated build environment as it is.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = "https://registry.npmjs.org/"
WEB = "firmware/burrow/web"  # the page's folder, from the root of the checkout (or sdist)
STATE = "VERSIONS.json"  # in each vendored folder: what it was built from
COMPRESSED_SUFFIXES = frozenset({".html", ".js", ".css", ".svg"})  # text the page loads
MAX_TARBALL = 32 * 1024 * 1024  # bytes; axe-core's is 0.7 MiB
MAX_MEMBER = 8 * 1024 * 1024  # one file taken from a tarball
MAX_PAGE_FILES = 2000  # files under firmware/burrow/web/ that get a .gz; more is a mistake
TIMEOUT = 60.0  # seconds for one download
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


class BuildError(Exception):
    """What went wrong, for the person running the build; nothing was replaced."""


@dataclass(frozen=True)
class Vendored:
    """Which files of one npm package go where. ``dest``: folder from the checkout's root;
    ``files``: path in the package → file name in ``dest``; ``derive``: turns the taken files
    into those written (name → bytes); ``dev``: only the tests use it, the package does not."""

    dest: str
    files: dict[str, str]
    dev: bool = False
    derive: Callable[[dict[str, bytes]], dict[str, bytes]] | None = None


def uplot_esm_min(taken: dict[str, bytes]) -> dict[str, bytes]:
    """uPlot publishes its minified build only as an IIFE (``var uPlot=function(){...}();``) and
    its ES module only unminified (145 KB, 42 KB gzipped, against 51 KB and 22 KB). The page is
    ES modules, so the minified build is made importable by exporting the one name it declares:
    its bytes unchanged, one line added. Refused if the build no longer has that shape."""
    iife = taken.pop("uPlot.iife.min.js")
    body = iife.split(b"\n", 1)[1] if iife.startswith(b"/*") else iife
    if not body.startswith(b"var uPlot=function(){") or b"export " in body[-200:]:
        raise BuildError("uplot: dist/uPlot.iife.min.js no longer starts with 'var uPlot=function(){': "
                         "check the ES module wrapper in scripts/build_web.py against the new build")
    return {**taken, "uPlot.esm.min.js": iife.rstrip(b"\n") + b"\nexport default uPlot;\n"}


VENDORED: dict[str, Vendored] = {
    "uplot": Vendored(WEB + "/vendor/uplot",
                      {"dist/uPlot.iife.min.js": "uPlot.iife.min.js", "dist/uPlot.min.css": "uPlot.min.css",
                       "LICENSE": "LICENSE"},
                      derive=uplot_esm_min),
    "axe-core": Vendored("tests/browser/vendor/axe-core",
                         {"axe.min.js": "axe.min.js", "LICENSE": "LICENSE",
                          "LICENSE-3RD-PARTY.txt": "LICENSE-3RD-PARTY.txt"},
                         dev=True),
}


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    resolved: str
    integrity: str


# ---- the lock ----------------------------------------------------------------------------------

def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildError(f"{path} is missing") from None
    except ValueError as exc:
        raise BuildError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BuildError(f"{path} is not a JSON object")
    return data


def read_lock(root: Path = ROOT) -> dict[str, Locked]:
    """The locked packages, after checking that package.json and package-lock.json agree and
    that each names an exact version, a registry tarball and a sha512 integrity."""
    manifest = read_json(root / "package.json")
    lock = read_json(root / "package-lock.json")
    packages = lock.get("packages")
    if not isinstance(packages, dict) or not isinstance(packages.get(""), dict):
        raise BuildError("package-lock.json has no 'packages' entry for the project (lockfileVersion 3)")
    wanted: dict[str, str] = {}
    for section in ("dependencies", "devDependencies"):
        declared = manifest.get(section) or {}
        if declared != (packages[""].get(section) or {}):
            raise BuildError(f"package.json and package-lock.json disagree on {section}: "
                             "update the lock with the manifest")
        for name, version in declared.items():
            if not isinstance(version, str) or not EXACT_VERSION.match(version):
                raise BuildError(f"package.json: {name} must name one exact version, not {version!r}")
            wanted[name] = version
    out: dict[str, Locked] = {}
    for name, version in wanted.items():
        entry = packages.get(f"node_modules/{name}")
        if not isinstance(entry, dict) or entry.get("version") != version:
            raise BuildError(f"package-lock.json: no entry for {name}@{version}")
        resolved, integrity = entry.get("resolved"), entry.get("integrity")
        if not isinstance(resolved, str) or not resolved.startswith(REGISTRY):
            raise BuildError(f"package-lock.json: {name} must be resolved from {REGISTRY}, not {resolved!r}")
        if not isinstance(integrity, str) or not integrity.startswith("sha512-"):
            raise BuildError(f"package-lock.json: {name} needs a sha512 integrity, not {integrity!r}")
        out[name] = Locked(name, version, resolved, integrity)
    missing = set(VENDORED) - set(out)
    if missing:
        raise BuildError(f"package.json does not name {sorted(missing)}, which scripts/build_web.py copies")
    return out


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


# ---- fetching ----------------------------------------------------------------------------------

def default_cache() -> Path:
    if os.environ.get("BURROW_NPM_CACHE"):
        return Path(os.environ["BURROW_NPM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "burrow" / "npm"


def cache_path(cache: Path, pkg: Locked) -> Path:
    digest = hashlib.sha256(pkg.integrity.encode()).hexdigest()[:16]
    return cache / f"{pkg.name}-{pkg.version}-{digest}.tgz"


def download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as res:  # https, or a test's loopback registry
            data = res.read(MAX_TARBALL + 1)
    except urllib.error.HTTPError as exc:
        raise BuildError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BuildError(f"download of {url} failed: {reason}") from None
    if len(data) > MAX_TARBALL:
        raise BuildError(f"download of {url} is over {MAX_TARBALL} bytes: refused")
    return data


def tarball(pkg: Locked, registry: str, cache: Path, log) -> bytes:
    """The package's tarball, checked against the lock: from the cache, else the registry."""
    cached = cache_path(cache, pkg)
    try:
        data = cached.read_bytes()
    except OSError:
        data = None
    if data is not None:
        if hmac.compare_digest(integrity_of(data), pkg.integrity):
            return data
        log(f"build-web: the cached {cached.name} does not match the lock; fetching it again")
    url = registry.rstrip("/") + "/" + pkg.resolved[len(REGISTRY):]
    log(f"build-web: fetching {pkg.name}@{pkg.version} from {url}")
    data = download(url)
    got = integrity_of(data)
    if not hmac.compare_digest(got, pkg.integrity):
        raise BuildError(f"{pkg.name}@{pkg.version} from {url} does not match package-lock.json: "
                         f"integrity {got}, expected {pkg.integrity}. Refused; nothing was replaced")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        write_atomic(cached, data)
    except OSError as exc:  # a read-only cache costs a download next time, nothing more
        log(f"build-web: could not cache {pkg.name} in {cache}: {exc}")
    return data


def take(pkg: Locked, data: bytes, spec: Vendored) -> dict[str, bytes]:
    """The files ``spec`` names, read from the (already verified) tarball; nothing is written."""
    taken: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for inside, name in spec.files.items():
                try:
                    member = tar.getmember("package/" + inside)
                except KeyError:
                    raise BuildError(f"{pkg.name}@{pkg.version} has no {inside}") from None
                if not member.isfile() or member.size > MAX_MEMBER:
                    raise BuildError(f"{pkg.name}@{pkg.version}: {inside} is not a regular file "
                                     f"of at most {MAX_MEMBER} bytes")
                fileobj = tar.extractfile(member)
                assert fileobj is not None  # a regular file
                taken[name] = fileobj.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BuildError(f"{pkg.name}@{pkg.version}: the tarball cannot be read: {exc}") from None
    if spec.derive is not None:
        taken = spec.derive(taken)
    return taken


def recipe(spec: Vendored) -> dict:
    """What a folder was made with besides the tarball: a change here rebuilds it."""
    return {"taken": spec.files, "derived_by": spec.derive.__name__ if spec.derive else None}


def state_of(pkg: Locked, spec: Vendored, files: dict[str, bytes]) -> dict:
    return {"name": pkg.name, "version": pkg.version, "integrity": pkg.integrity, "recipe": recipe(spec),
            "files": {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())}}


def up_to_date(pkg: Locked, spec: Vendored, dest: Path) -> bool:
    try:
        state = json.loads((dest / STATE).read_text(encoding="utf-8"))
        if (state.get("name"), state.get("version"), state.get("integrity"), state.get("recipe")) != \
                (pkg.name, pkg.version, pkg.integrity, recipe(spec)):
            return False
        return all(hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest
                   for name, digest in state["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def replace_folder(dest: Path, files: dict[str, bytes], state: dict) -> None:
    """``dest`` holds exactly ``files`` (and the state file) afterwards; until the final rename
    the previous folder is untouched."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in dest.parent.glob(f".{dest.name}.*"):  # an interrupted earlier run
        shutil.rmtree(leftover, ignore_errors=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    try:
        for name, body in files.items():
            (fresh / name).write_bytes(body)
        (fresh / STATE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(fresh, 0o755)
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
            os.rename(dest, old / dest.name)
        os.rename(fresh, dest)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def vendor(root: Path, lock: dict[str, Locked], *, dev: bool, registry: str, cache: Path, log) -> list[str]:
    """Bring every vendored folder under ``root`` up to date with the lock; the names of those
    replaced. Every tarball is fetched and checked before any folder is replaced."""
    todo = []
    for name, spec in VENDORED.items():
        if (spec.dev and not dev) or up_to_date(lock[name], spec, root / spec.dest):
            continue
        todo.append((lock[name], spec, take(lock[name], tarball(lock[name], registry, cache, log), spec)))
    for pkg, spec, files in todo:
        replace_folder(root / spec.dest, files, state_of(pkg, spec, files))
        log(f"build-web: {pkg.name}@{pkg.version} -> {spec.dest}/")
    return [pkg.name for pkg, _, _ in todo]


# ---- precompression ----------------------------------------------------------------------------

def gzip_bytes(data: bytes) -> bytes:
    """Deterministic: level 9, mtime 0, no file name in the header."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def page_files(web: Path) -> list[Path]:
    """The page's text files under ``web`` (not in dot-folders, not links out of it)."""
    out: list[Path] = []
    for folder, dirs, names in os.walk(web):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            path = Path(folder) / name
            if name.startswith(".") or path.suffix not in COMPRESSED_SUFFIXES or not path.is_file():
                continue
            out.append(path)
            if len(out) > MAX_PAGE_FILES:
                raise BuildError(f"over {MAX_PAGE_FILES} files under {web}: refusing to compress them all")
    return out


def precompress(web: Path) -> tuple[int, int]:
    """Write ``<file>.gz`` beside each page file; (written, removed)."""
    written = removed = 0
    sources = page_files(web)
    for path in sources:
        packed = gzip_bytes(path.read_bytes())
        target = path.with_name(path.name + ".gz")
        try:
            if target.read_bytes() == packed:
                continue
        except OSError:
            pass
        write_atomic(target, packed)
        written += 1
    for folder, dirs, names in os.walk(web):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if name.endswith(".gz") and not (Path(folder) / name[:-3]).is_file():
                (Path(folder) / name).unlink()
                removed += 1
    return written, removed


# ---- page weight -------------------------------------------------------------------------------

BUDGET_GZIP = 150 * 1024  # bytes: all the page's JS + CSS, gzipped (issue 15)


def weights(web: Path) -> list[tuple[str, int, int]]:
    """(path under the page folder, bytes, bytes gzipped -9) of every JS and CSS file."""
    return [(path.relative_to(web).as_posix(), path.stat().st_size, len(gzip_bytes(path.read_bytes())))
            for path in page_files(web) if path.suffix in (".js", ".css")]


def print_weights(web: Path) -> int:
    rows = weights(web)
    print("| file | bytes | gzipped |\n|---|---:|---:|")
    for rel, raw, packed in rows:
        print(f"| {rel} | {raw} | {packed} |")
    raw, packed = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"| **all JS + CSS** ({len(rows)} files) | **{raw}** | **{packed}** |")
    print(f"\nbudget: {BUDGET_GZIP} bytes gzipped; {'within' if packed <= BUDGET_GZIP else 'OVER'}")
    return 0 if packed <= BUDGET_GZIP else 1


# ---- entry -------------------------------------------------------------------------------------

def build(root: Path | None = None, *, dev: bool = True, registry: str | None = None,
          cache: Path | None = None, log=None) -> None:
    """Vendor (with the test-only packages when ``dev``), then precompress the page, in ``root``
    (the checkout this script is in, by default)."""
    root = root or ROOT
    log = log or (lambda msg: print(msg, file=sys.stderr))
    registry = registry or os.environ.get("BURROW_NPM_REGISTRY") or REGISTRY
    vendor(root, read_lock(root), dev=dev, registry=registry, cache=cache or default_cache(), log=log)
    written, removed = precompress(root / WEB)
    if written or removed:
        log(f"build-web: {written} .gz written, {removed} removed under {WEB}/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build-web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-dev", action="store_true",
                        help="only what the package ships (not axe-core, which only the browser tests use)")
    parser.add_argument("--registry", help=f"npm registry to fetch from (default $BURROW_NPM_REGISTRY or {REGISTRY})")
    parser.add_argument("--cache", type=Path, help="tarball cache folder (default: see the module's doc)")
    parser.add_argument("--sizes", action="store_true",
                        help="after the build, print each JS and CSS file's size, raw and gzipped, and "
                             "the total against the budget (exit status 1 over it)")
    args = parser.parse_args(argv)
    try:
        build(dev=not args.no_dev, registry=args.registry, cache=args.cache)
        if args.sizes:
            return print_weights(ROOT / WEB)
    except BuildError as exc:
        print(f"build-web: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
