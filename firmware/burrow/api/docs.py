"""/openapi.json, Swagger UI at /docs and ReDoc at /redoc, all served from local files.

The viewers' files are the release builds of Swagger UI and ReDoc, kept in ``viewers/`` beside
this module with their licences and shipped as package data (scripts/vendor-api-viewers
refreshes them from npm; docs/dependencies.md says why they are not a PyPI dependency). No CDN
is used. The pages load no inline script, so the strict Content-Security-Policy holds.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from microdot import Response

from .. import __version__
from . import openapi
from .errors import ApiError
from .routes import Api, json_response

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
VIEWERS_DIR = Path(__file__).resolve().parent / "viewers"
ASSET_TYPES = {".js": "text/javascript; charset=UTF-8", ".css": "text/css; charset=UTF-8",
               ".png": "image/png", ".map": "application/json"}

SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Burrow API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui-dist/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-dist/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
"""

REDOC_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Burrow API</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc/bundles/redoc.standalone.js"></script></body></html>
"""


def assets_dir() -> Path | None:
    """The viewers' files, or None when a repackaging left them out."""
    return VIEWERS_DIR if VIEWERS_DIR.is_dir() else None


def register(api: Api) -> None:
    cache: dict = {}

    def document() -> dict:
        if "doc" not in cache:  # routes are fixed once the app is built
            cache["doc"] = openapi.build(api, __version__)
        return cache["doc"]

    @api.route("GET", "/openapi.json", role="public", summary="This API's OpenAPI 3.1 document",
               tags=["docs"])
    async def openapi_json(req):
        return document()

    def page(html: str):
        async def handler(req):
            if assets_dir() is None:
                return json_response({"error": "Service Unavailable", "code": 503,
                                      "message": "API viewer files are missing from this "
                                                 "installation (burrow/api/viewers)"}, 503)
            return Response(html, 200, {"Content-Type": "text/html; charset=UTF-8"})
        return handler

    api.route("GET", "/docs", role="public", summary="Swagger UI", tags=["docs"])(page(SWAGGER_PAGE))
    api.route("GET", "/redoc", role="public", summary="ReDoc", tags=["docs"])(page(REDOC_PAGE))

    @api.route("GET", "/docs/init.js", role="public", summary="Swagger UI start-up script", tags=["docs"])
    async def init_js(req):
        return Response((WEB_DIR / "docs-init.js").read_bytes(), 200,
                        {"Content-Type": ASSET_TYPES[".js"], "Cache-Control": "max-age=3600"})

    @api.route("GET", "/docs/assets/<path:asset>", role="public", static=True, summary="API viewer files", tags=["docs"])
    async def asset(req, asset):
        base = assets_dir()
        if base is None:
            raise ApiError(404, "the API viewer files are not installed")
        target = (base / asset).resolve()
        # No path traversal; os.path.isfile is False (not an error) for over-long names.
        if base.resolve() not in target.parents or not os.path.isfile(target):
            raise ApiError(404, "no such file")
        ctype = ASSET_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(target.read_bytes(), 200, {"Content-Type": ctype, "Cache-Control": "max-age=86400"})
