"""The AdGuard Home face: AdGuard Home's HTTP API (``/control/…``, its openapi/openapi.yaml) on
Burrow's main web listener, over the same services as Burrow's own API.

What maps is served from Burrow's services: the status and protection (the pause service),
statistics and the query log (the recorder), filter lists (the list store: block lists are
AdGuard's ``filters``, allow lists its ``whitelist_filters``; threat feeds have no AdGuard
counterpart and stay out of sight), rewrites (local records), clients (Burrow's client
entries), the query log's retention (the ``privacy`` settings). What Burrow does not have —
parental control, safe browsing, safe search, turning the query log off — is reported off, and
turning it on answers 501 with a sentence saying so; never a success that did nothing.

AdGuard's filter ids are Burrow's list ids (1..64): stable for a list's life; a deleted list's
id may be given to a later list (lists_api.py).

docs/compat.md, "AdGuard Home face", has the table of endpoints. The parts: ``general`` (status,
protection, profile, statistics, what Burrow does not have), ``filtering``, ``querylog``,
``records`` (rewrites), ``clients``; ``http`` (Basic auth, AdGuard's answers), ``shapes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import clients, filtering, general, querylog, records
from .filtering import user_rules
from .http import Control

if TYPE_CHECKING:
    from ...api.routes import Api
    from ...services import Services

__all__ = ["register", "user_rules"]
PARTS = (general, filtering, querylog, records, clients)


def register(api: Api, s: Services, *, web_port) -> Control:
    """Serve the face on ``api`` (the main listener's) over the services ``s``; ``web_port()``
    is the listener's bound port (AdGuard's ``http_port``). Returns the Control (its routes)."""
    control = Control(api, s.auth)

    def audit(req, kind: str, summary: str, data: dict | None = None) -> None:
        s.events.publish("events", {"type": kind, "actor": req.g.principal.username,
                                    "client_ip": req.g.client_ip, "summary": f"{summary} (AdGuard Home API)",
                                    "data": data or {}})

    for part in PARTS:
        part.register(control.route, s, audit, web_port=web_port)
    return control
