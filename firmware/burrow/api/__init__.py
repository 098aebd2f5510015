"""The web API: microdot on the DNS process's loop; one module per resource registers routes.

Every module has ``register(api, app)``; the registry (``api.routes``) is what OpenAPI, docs
and the role tests enumerate.
"""

from __future__ import annotations

from . import config_api, docs, health, metrics, queries, stats, system
from . import backup, events_api, reports, ws
from . import auth_api, users_api
from . import blocking_api, explain_api, forwarding_api, groups_api, lists_api, policies_api, rpz_api, userlists_api
from . import localrecords_api, zones_api
from . import web_ui
from .routes import Api, WebSettings

MODULES = [health, docs, stats, queries, config_api, system, metrics, events_api, reports, backup, ws,
           auth_api, users_api, blocking_api, userlists_api, lists_api, explain_api, policies_api,
           groups_api, rpz_api, forwarding_api, localrecords_api, zones_api, web_ui]


def create_api(app, settings: WebSettings = WebSettings()) -> Api:
    """Build the Api (registry + microdot app) for the running ``app`` (burrow.app.App)."""
    api = Api(app, settings=settings)
    for module in MODULES:
        module.register(api, app)
    return api
