"""The web API: a microdot app on the DNS process's loop, one sub-app per resource."""

from __future__ import annotations

from microdot import Microdot

from .health import health_app


def create_app(app) -> Microdot:
    """Build the web app for the running ``app`` (burrow.app.App)."""
    web = Microdot()
    web.mount(health_app(app))
    return web
