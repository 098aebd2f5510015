"""The phone admin page: ``GET /`` and its script and style under ``/ui/``.

Plain files from ``burrow/web/`` (index.html, app.js, app.css): no build step, no CDN, no
inline script, so the strict Content-Security-Policy of every response holds. The page signs
in with the cookie session (``POST /api/auth/login?cookie=true``) and calls the same API as
everyone else; nothing here knows more than a file server.

Caching: every answer carries a strong ETag (a hash of the bytes) and ``Cache-Control:
no-cache``, so a phone revalidates with one small 304 after a firmware update instead of
running yesterday's script against today's API.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from microdot import Response

from .errors import ApiError
from .routes import Api

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGE = "index.html"
CONTENT_TYPES = {".html": "text/html; charset=UTF-8", ".js": "text/javascript; charset=UTF-8",
                 ".css": "text/css; charset=UTF-8", ".svg": "image/svg+xml", ".png": "image/png",
                 ".ico": "image/x-icon"}
ASSET_SUFFIXES = frozenset(CONTENT_TYPES) - {".html"}  # the page itself is only served at /
MAX_ASSET = 1024 * 1024  # bytes; the page's files are a few KiB, anything bigger is a mistake


def _etag(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def file_response(req, path: Path) -> Response:
    """The file with its content type, ETag and ``no-cache``; 304 when the client has it."""
    data = path.read_bytes()
    etag = _etag(data)
    headers = {"Cache-Control": "no-cache", "ETag": etag}
    sent = req.headers.get("If-None-Match", "")
    if etag in (tag.strip() for tag in sent.split(",")):
        return Response(b"", 304, headers)
    return Response(data, 200, {"Content-Type": CONTENT_TYPES[path.suffix], **headers})


def register(api: Api) -> None:
    @api.route("GET", "/", role="public", tags=["web"], responses={200: "text/html",
                                                                    304: "not modified (If-None-Match)"},
               summary="The admin page (sign in, status, block lists, blocking pause, router preset)")
    async def index(req):
        return file_response(req, WEB_DIR / PAGE)

    @api.route("GET", "/ui/<path:asset>", role="public", tags=["web"],
               responses={200: "text/javascript or text/css", 304: "not modified (If-None-Match)",
                          404: "no such file"},
               summary="The admin page's script and style")
    async def asset(req, asset):
        if "\x00" in asset:  # no file name holds one; the OS calls would raise ValueError (a 500)
            raise ApiError(404, "no such file")
        target = (WEB_DIR / asset).resolve()
        # No path traversal, only the page's kinds of file; isfile is False for over-long names.
        if (WEB_DIR.resolve() not in target.parents or target.suffix not in ASSET_SUFFIXES
                or not os.path.isfile(target) or os.path.getsize(target) > MAX_ASSET):
            raise ApiError(404, "no such file")
        return file_response(req, target)
