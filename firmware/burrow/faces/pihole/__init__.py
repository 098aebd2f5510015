"""The Pi-hole v6 face: Pi-hole FTL's REST API on its own listener (``compat.pihole_address``),
over the same services as Burrow's own API (docs/compat.md, "Pi-hole v6 face").

``build(services, limits)`` makes the face and its lifecycle service; app.py starts it after
the web service. Its routes are not in Burrow's OpenAPI document: they follow Pi-hole's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .face import PiholeFace
from .service import PiholeService
from .sessions import Sessions

if TYPE_CHECKING:
    from ...services import Services

__all__ = ["PiholeFace", "PiholeService", "Sessions", "attach"]


def attach(service: PiholeService, services: Services) -> None:
    """Make the face from the running appliance's services and hand it to ``service``."""
    service.face = PiholeFace(services, Sessions(services.settings))
