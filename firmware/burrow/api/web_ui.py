"""The phone admin page: ``GET /`` and its static files under ``/ui/``.

Plain files from ``burrow/web/`` (the page, its ES modules and style, and the third-party code
that scripts/build-web vendors into ``web/vendor/``): no bundler, no CDN, no inline script, so the
strict Content-Security-Policy of every response holds. The page signs in with the cookie session
and calls the same API as everyone else; nothing here knows more than a file server.

Caching (docs/architecture.md, "The page's static files"):

- ``/`` is ``no-cache`` with a strong ETag: a phone revalidates it on each visit (one small 304).
  Its ``src``/``href`` attributes that start with ``/ui/`` are rewritten, once per bundle, to
  ``/ui/v/<bundle>/``: the bundle hash covers every file of the page, so the page names its
  script and style under a prefix that changes whenever any file does.
- ``/ui/v/<bundle>/<path>`` with the current bundle hash is ``public, max-age=31536000,
  immutable``: the phone keeps it until the page names another bundle. ES modules import each
  other by relative URL, so a whole tree of modules stays under the hash without any build step.
  An older bundle hash (a page loaded before an update) still gets the file, as ``no-cache``.
- ``/ui/<path>`` keeps working, ``no-cache`` with an ETag.

Compression: scripts/build-web writes ``<file>.gz`` beside each text file (gzip -9). When the
request's Accept-Encoding allows gzip and the ``.gz`` holds the file's current bytes (its CRC-32
and length, from the gzip trailer, checked once per file version), the answer is the ``.gz`` with
``Content-Encoding: gzip``; otherwise the plain file (an editable checkout without the build).
Every answer says ``Vary: Accept-Encoding``, and each representation has its own ETag (RFC 9110
8.8.3). The page itself is compressed here, once per bundle.

Memory: file bodies are read per request and not kept; what is kept is bounded: one entry per
file (its ETags and the result of the .gz check, at most ``MAX_FILES``) and the rewritten page.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from microdot import Response

from .encoding import accepts_gzip
from .errors import ApiError
from .routes import Api

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGE = "index.html"
CONTENT_TYPES = {".html": "text/html; charset=UTF-8", ".js": "text/javascript; charset=UTF-8",
                 ".css": "text/css; charset=UTF-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".ico": "image/x-icon", ".woff2": "font/woff2"}
ASSET_SUFFIXES = frozenset(CONTENT_TYPES) - {".html"}  # the page itself is only served at /
MAX_ASSET = 1024 * 1024  # bytes; the page's files are tens of KiB, anything bigger is a mistake
MAX_FILES = 1024  # files of the page the bundle hash covers and per-file entries kept
BUNDLE_PREFIX = "/ui/v/"
BUNDLE_HASH_LEN = 16  # hex digits of the bundle hash in URLs
BUNDLE_HASH = re.compile(r"^[0-9a-f]{%d}$" % BUNDLE_HASH_LEN)
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
VARY = "Accept-Encoding"
# The page's own references: src="/ui/..." and href="/ui/..." (not already under a bundle).
PAGE_REFERENCE = re.compile(rb'(\s(?:src|href)=["\'])/ui/(?!v/)')


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match by the weak comparison (RFC 9110 13.1.2): ``*`` or any listed tag."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _signature(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _gz_holds(packed: bytes, data: bytes) -> bool:
    """The gzip trailer's CRC-32 and length are those of ``data`` (a stale .gz is not used)."""
    if len(packed) < 18 or packed[:2] != b"\x1f\x8b":
        return False
    crc, size = struct.unpack("<II", packed[-8:])
    return crc == zlib.crc32(data) and size == len(data) & 0xFFFFFFFF


@dataclass
class _Known:
    """What is kept per file: its version (size, mtime, inode) and the .gz's, the plain ETag,
    and the .gz's ETag when the .gz holds this version (else None)."""

    plain: tuple[int, int, int]
    packed: tuple[int, int, int] | None
    etag: str
    gz_etag: str | None


@dataclass
class Representation:
    """One encoding of a file: its ETag and length; its bytes, or the file to read them from."""

    etag: str
    length: int
    gzipped: bool
    data: bytes | None = None
    source: Path | None = None

    def body(self) -> bytes:
        if self.data is None:
            assert self.source is not None
            self.data = self.source.read_bytes()
        return self.data


class StaticFiles:
    """The page's files under ``root``: the bundle hash, ETags and the .gz choice."""

    def __init__(self, root: Path = WEB_DIR):
        self.root = root.resolve()
        self._known: dict[str, _Known] = {}
        self._listing: dict[str, tuple[int, int, int]] = {}
        self.bundle = ""
        self._page: tuple[str, Representation, Representation] | None = None
        self.refresh()

    # ---- the bundle ------------------------------------------------------------------------

    def _scan(self) -> dict[str, tuple[int, int, int]]:
        """relative path → (size, mtime, inode) of each servable file; at most MAX_FILES."""
        found: dict[str, tuple[int, int, int]] = {}
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                path = os.path.join(folder, name)
                if name.startswith(".") or os.path.splitext(name)[1] not in CONTENT_TYPES:
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if st.st_size > MAX_ASSET:
                    continue
                if len(found) >= MAX_FILES:
                    log.warning("over %d files under %s: the bundle hash covers %d of them",
                                MAX_FILES, self.root, MAX_FILES)
                    return found
                found[os.path.relpath(path, self.root).replace(os.sep, "/")] = _signature(st)
        return found

    def refresh(self) -> str:
        """The bundle hash, computed again only when a file's size, mtime or inode changed (a
        stat per file: cheap; an installed package never changes under a running process, an
        edited checkout does)."""
        listing = self._scan()
        if listing != self._listing:
            digest = hashlib.sha256()
            for rel in sorted(listing):
                try:
                    data = (self.root / rel).read_bytes()
                except OSError:
                    continue
                digest.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
            self._listing = listing
            self.bundle = digest.hexdigest()[:BUNDLE_HASH_LEN]
        return self.bundle

    def in_bundle(self, path: Path, rel: str) -> bool:
        """Whether the file is, now, the version the bundle hash was computed over."""
        try:
            return self._listing.get(rel) == _signature(os.stat(path))
        except OSError:
            return False

    # ---- one file ---------------------------------------------------------------------------

    def resolve(self, asset: str) -> tuple[Path, str] | None:
        """The file ``asset`` names under the root, and its relative path; None if it is not a
        page file (traversal, a dot-name, another kind of file, too big, missing)."""
        if "\x00" in asset:  # no file name holds one; the OS calls would raise ValueError (a 500)
            return None
        if any(part.startswith(".") for part in asset.split("/")):
            return None
        target = (self.root / asset).resolve()
        # No path traversal, only the page's kinds of file; isfile is False for over-long names.
        if (self.root not in target.parents or target.suffix not in ASSET_SUFFIXES
                or not os.path.isfile(target) or os.path.getsize(target) > MAX_ASSET):
            return None
        return target, target.relative_to(self.root).as_posix()

    def representation(self, path: Path, rel: str, gzip_ok: bool) -> Representation:
        """The plain file or, when accepted and current, its .gz. Known versions are not read
        until the body is needed (a 304 reads nothing)."""
        st = os.stat(path)
        gz_path = path.with_name(path.name + ".gz")
        try:
            gz_sig: tuple[int, int, int] | None = _signature(os.stat(gz_path))
        except OSError:
            gz_sig = None
        known = self._known.get(rel)
        if known is not None and known.plain == _signature(st) and known.packed == gz_sig:
            if gzip_ok and known.gz_etag is not None and gz_sig is not None:
                return Representation(known.gz_etag, gz_sig[0], True, source=gz_path)
            return Representation(known.etag, st.st_size, False, source=path)
        data = path.read_bytes()
        packed = self._read_gz(gz_path, data) if gz_sig is not None else None
        if len(self._known) >= MAX_FILES and rel not in self._known:
            self._known.clear()  # bounded; refilled as files are asked for
        self._known[rel] = _Known(_signature(st), gz_sig, etag_of(data),
                                  etag_of(packed) if packed is not None else None)
        if gzip_ok and packed is not None:
            return Representation(etag_of(packed), len(packed), True, data=packed)
        return Representation(etag_of(data), len(data), False, data=data)

    @staticmethod
    def _read_gz(gz_path: Path, data: bytes) -> bytes | None:
        try:
            packed = gz_path.read_bytes()
        except OSError:
            return None
        return packed if _gz_holds(packed, data) else None

    # ---- the page ---------------------------------------------------------------------------

    def page(self, gzip_ok: bool) -> Representation:
        """index.html with its /ui/ references under the current bundle (which covers the page
        itself): made once per bundle, plain and gzipped, then kept."""
        bundle = self.refresh()
        if self._page is None or self._page[0] != bundle:
            data = (self.root / PAGE).read_bytes()
            if len(data) > MAX_ASSET:
                raise ApiError(500, "the admin page is too big to serve")
            page = PAGE_REFERENCE.sub(rb"\1" + (BUNDLE_PREFIX + bundle + "/").encode(), data)
            packed = gzip.compress(page, compresslevel=9, mtime=0)
            self._page = (bundle, Representation(etag_of(page), len(page), False, data=page),
                          Representation(etag_of(packed), len(packed), True, data=packed))
        return self._page[2] if gzip_ok else self._page[1]


def answer(req, rep: Representation, content_type: str, cache_control: str) -> Response:
    """200 with the representation, or 304 when the client holds it (its headers those of the
    200, Content-Length included: RFC 9110 8.6, 15.4.5); HEAD: microdot drops the body."""
    headers = {"Cache-Control": cache_control, "ETag": rep.etag, "Vary": VARY, "Content-Type": content_type}
    if rep.gzipped:
        headers["Content-Encoding"] = "gzip"
    if matches(req.headers.get("If-None-Match"), rep.etag):
        return Response(b"", 304, {**headers, "Content-Length": str(rep.length)})
    return Response(rep.body(), 200, headers)


def register(api: Api, root: Path = WEB_DIR) -> StaticFiles:
    files = StaticFiles(root)

    def serve(req, asset: str, cache_control: str) -> Response:
        found = files.resolve(asset)
        if found is None:
            raise ApiError(404, "no such file")
        path, rel = found
        if cache_control == IMMUTABLE and not files.in_bundle(path, rel):
            cache_control = NO_CACHE  # changed since the hash was taken: not that bundle's bytes
        rep = files.representation(path, rel, accepts_gzip(req.headers.get("Accept-Encoding")))
        return answer(req, rep, CONTENT_TYPES[path.suffix], cache_control)

    @api.route("GET", "/", role="public", tags=["web"], static=True, responses={200: "text/html",
                                                                    304: "not modified (If-None-Match)"},
               summary="The admin page (its script and style named under /ui/v/<bundle>/)")
    async def index(req):
        rep = files.page(accepts_gzip(req.headers.get("Accept-Encoding")))
        return answer(req, rep, CONTENT_TYPES[".html"], NO_CACHE)

    # Before /ui/<path:asset>, which would match these paths too: the first route that matches wins.
    @api.route("GET", "/ui/v/<bundle>/<path:asset>", role="public", tags=["web"], static=True,
               responses={200: "text/javascript, text/css, an image or a font",
                          304: "not modified (If-None-Match)", 404: "no such file"},
               summary="The admin page's static files under its bundle hash (cached for a year)")
    async def bundled(req, bundle, asset):
        if not BUNDLE_HASH.match(bundle):
            raise ApiError(404, "no such file")
        return serve(req, asset, IMMUTABLE if bundle == files.bundle else NO_CACHE)

    @api.route("GET", "/ui/<path:asset>", role="public", tags=["web"], static=True,
               responses={200: "text/javascript, text/css, an image or a font",
                          304: "not modified (If-None-Match)", 404: "no such file"},
               summary="The admin page's static files (revalidated on every use)")
    async def asset(req, asset):
        return serve(req, asset, NO_CACHE)

    return files
