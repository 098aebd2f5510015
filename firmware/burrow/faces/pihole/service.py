"""The Pi-hole face's listener as one lifecycle service (``pihole`` in app.py's START_ORDER).

It serves :class:`~burrow.faces.pihole.face.PiholeFace` on ``compat.pihole_address`` (empty:
off), with the main API's connection caps. A port it cannot bind is a fault that names the
address ("serving": DNS and the admin page are not affected), never a failed start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ...config.schema import format_hostport, parse_hostport

if TYPE_CHECKING:
    from ...lifecycle import Faults
    from .face import PiholeFace

log = logging.getLogger(__name__)

DEFAULT_PORT = 8081
FAULT = "pihole"


class PiholeService:
    """``PiholeService(address, limits, faults)``; ``face`` is set once the services exist
    (the face is made from them, as the web service's Api is)."""

    name = "pihole"

    def __init__(self, address: str, limits: tuple[int, int, float, float], faults: Faults):
        self.face: PiholeFace | None = None
        self.enabled = bool(address)
        self.host, self.configured_port = parse_hostport(address, DEFAULT_PORT) if address else ("", 0)
        self.limits = limits
        self.faults = faults
        self.port: int | None = None
        self._server: Any = None  # microdot start_server's asyncio.Server (it is typed as returning None)

    def address(self) -> str:
        return format_hostport(self.host, self.port or self.configured_port) if self.enabled else ""

    async def start(self) -> None:
        if not self.enabled or self.face is None:
            return
        web = self.face.web
        web.limit(*self.limits)
        try:
            start: Any = web.start_server  # returns the asyncio.Server with start_serving=False (untyped so)
            self._server = await start(self.host, self.configured_port, start_serving=False)
            await self._server.start_serving()
        except OSError as e:
            self._server = None
            self.faults.set(FAULT, f"the Pi-hole API cannot listen on {self.address()} "
                                   f"(compat.pihole_address): {e.strerror or e}", serving=True)
            return
        self.faults.clear(FAULT)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("Pi-hole v6 API on http://%s/api/", self.address())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.face is not None:
            self.face.web.close_idle()
            self.face.sessions.flush()

    def snapshot(self) -> dict:
        if not self.enabled:
            return {"address": "", "listener": "off"}
        return {"address": self.address(), "listener": "listening" if self._server is not None else "not listening",
                "sessions": self.face.sessions.count() if self.face is not None else 0}

    def background_tasks(self) -> list:
        return []
