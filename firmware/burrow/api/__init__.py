"""The web API: microdot on the DNS process's loop; one module per resource registers routes.

Every module has ``register(api, *, <the services it uses>)``: :func:`create_api` hands each
one only those (the wiring below is the list of who uses what); no module sees the whole
container. The registry (``api.routes``) is what OpenAPI, docs and the role tests enumerate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from . import config_api, docs, health, metrics, queries, stats, system
from . import backup, events_api, import_api, reports, ws
from . import auth_api, users_api
from . import blocking_api, explain_api, forwarding_api, groups_api, lists_api, policies_api, rpz_api, userlists_api
from . import localrecords_api, zones_api
from . import setup_api
from . import doh_api
from . import ui_partials, web_ui
from .origin import Site
from .routes import Api, WebSettings

if TYPE_CHECKING:
    from ..services import Services
    from .server import WebService

MODULES = [health, docs, stats, queries, config_api, system, metrics, events_api, reports, backup, ws,
           auth_api, users_api, blocking_api, userlists_api, lists_api, explain_api, policies_api,
           groups_api, rpz_api, forwarding_api, localrecords_api, zones_api, setup_api, ui_partials, web_ui, doh_api]


def create_api(s: Services, web: WebService, settings: WebSettings) -> Api:
    """The Api (registry + microdot app) over the running services ``s`` (burrow/services.py),
    served by ``web`` as ``settings`` say."""
    api = Api(s.auth, Site(s.config, s.board, certificate_names=s.tls.names), settings=settings)
    health.register(api, health=s.health, version=s.version)
    docs.register(api)
    stats.register(api, recorder=s.recorder, resolver=s.resolver, board=s.board, health=s.health, version=s.version,
                   pause=s.pause, groups=s.groups, lists=s.lists, list_store=s.list_store, forwarding=s.forwarding)
    queries.register(api, recorder=s.recorder)
    config_api.register(api, config=s.config, resolver=s.resolver, events=s.events, tls=s.tls)
    system.register(api, board=s.board, resolver=s.resolver, health=s.health, web=web, lifecycle=s.lifecycle,
                    clock=s.clock, version=s.version)
    metrics.register(api, public=bool(s.config["server.metrics_public"]), version=s.version, health=s.health,
                     supervisor=s.supervisor, lists=s.lists, recorder=s.recorder, resolver=s.resolver,
                     events=s.events, board=s.board)
    events_api.register(api, eventlog=s.eventlog)
    reports.register(api, recorder=s.recorder)
    backup.register(api, settings=s.settings, state=s.state, reload_settings=s.reload_settings, events=s.events,
                    version=s.version)
    import_api.register(api, settings=s.settings, state=s.state, reload_settings=s.reload_settings, events=s.events)
    ws.register(api, events=s.events, recorder=s.recorder, resolver=s.resolver, board=s.board)
    auth_api.register(api, auth=s.auth, events=s.events, acl=s.resolver.acl)
    users_api.register(api, auth=s.auth, events=s.events)
    blocking_api.register(api, pause=s.pause, groups=s.groups, events=s.events)
    userlists_api.register(api, allow_list=s.allow_list, deny_list=s.deny_list, groups=s.groups, events=s.events)
    lists_api.register(api, lists=s.lists, list_store=s.list_store, threats=s.threats, groups=s.groups,
                       events=s.events)
    explain_api.register(api, resolver=s.resolver, groups=s.groups)
    policies_api.register(api, policies=s.policies)
    groups_api.register(api, groups=s.groups, pause=s.pause, allow_list=s.allow_list, deny_list=s.deny_list,
                        list_store=s.list_store, events=s.events)
    rpz_api.register(api, list_store=s.list_store, lists=s.lists, rpz=s.rpz, groups=s.groups, events=s.events)
    forwarding_api.register(api, forwarding=s.forwarding, board=s.board, events=s.events)
    localrecords_api.register(api, zones=s.zones, events=s.events)
    zones_api.register(api, zones=s.zones, events=s.events)
    setup_api.register(api, probes=s.resolver.local.probes, list_store=s.list_store)
    ui_partials.register(api, recorder=s.recorder)
    web_ui.register(api)
    doh_api.register(api, resolver=s.resolver)
    return api


class _Unavailable:
    """Stands in for a service when only the route table is wanted: any use of it (a handler
    that runs) fails loudly, naming what it reached for."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> _Unavailable:
        return _Unavailable(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self._name} is not available: no services are running")


class _Offline:
    def __init__(self, given: dict):
        from .. import __version__
        from ..config import load
        self.version = __version__
        self.config = load(None, environ={})  # the defaults: /metrics stays private
        self.__dict__.update(given)

    def __getattr__(self, name: str) -> _Unavailable:
        return _Unavailable(name)


def offline_api(**services) -> Api:
    """The route table without running services (the API reference, the role tests): each
    service not given is a stand-in that fails if a handler uses it."""
    return create_api(cast("Services", _Offline(services)), cast("WebService", _Unavailable("web")), WebSettings())
