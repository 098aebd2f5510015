"""The web service: the admin page and the API on their listener, as one lifecycle service.

The routes are built by :func:`burrow.api.create_api` when the services are made; ``start()``
binds the listener (last of all services: it serves what the others built), ``stop()`` closes
it first and then stops the password workers, so no check starts after the API is closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from ..config.schema import format_hostport, parse_hostport
from .routes import Api

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080


class WebService:
    """The API served on ``address`` (``server.web_ui_address``) with the connection caps.

    :param limits: (max connections, max per client, request deadline, keep-alive idle timeout;
        the last two in seconds).
    :param auth: the AuthService whose password workers stop with the web.

    ``api`` is set once the services exist (the routes are made from them, and this service
    is one of them); :meth:`start` serves it.
    """

    name = "web"

    def __init__(self, address: str, limits: tuple[int, int, float, float], auth):
        self.api: Api | None = None
        self.host, self.configured_port = parse_hostport(address, DEFAULT_PORT)
        self.limits = limits
        self.auth = auth
        self.port: int | None = None  # the bound port (the configured one may be 0)
        self._server = None
        # The HTTPS listener (opened and closed by the TLS service, burrow/tls) and its
        # connections, closed with it: the same Api, the same caps (BurrowWeb counts both).
        self._tls_server: asyncio.Server | None = None
        self._tls_writers: set = set()

    def address(self) -> str:
        """host:port as bound (as configured before the start)."""
        return format_hostport(self.host, self.port or self.configured_port)

    async def start(self) -> None:
        if self.api is None:
            raise RuntimeError("the web service has no API to serve (create_api was not called)")
        self.api.web.limit(*self.limits)
        self._server = await self.api.web.start_server(self.host, self.configured_port, start_serving=False)
        await self._server.start_serving()
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("admin page and API on http://%s/", self.address())

    async def stop(self) -> None:
        await self.stop_tls()
        if self._server is not None:
            self._server.close()
        if self.api is not None:
            self.api.web.close_idle()  # kept-alive connections do not outlive the listener
        self.auth.close()  # the password workers: no check starts after the API is closed

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext, handshake_timeout: float) -> int:
        """Serve the same Api over HTTPS on host:port (TlsListener, burrow/tls/service.py);
        returns the bound port. A handshake not done in ``handshake_timeout`` s is cut."""
        if self.api is None:
            raise RuntimeError("the web service has no API to serve (create_api was not called)")
        web = self.api.web
        writers = self._tls_writers

        async def serve(reader, writer):
            writers.add(writer)
            try:
                await web.serve(reader, writer)
            finally:
                writers.discard(writer)

        self._tls_server = await asyncio.start_server(serve, host, port, ssl=context,
                                                      ssl_handshake_timeout=handshake_timeout)
        bound = self._tls_server.sockets[0].getsockname()[1]
        log.info("admin page and API on https://%s/", format_hostport(host, bound))
        return bound

    async def stop_tls(self) -> None:
        server, self._tls_server = self._tls_server, None
        if server is None:
            return
        server.close()
        for writer in list(self._tls_writers):  # kept-alive HTTPS connections end with their listener
            writer.close()
        try:
            await asyncio.wait_for(server.wait_closed(), 2)
        except asyncio.TimeoutError:
            pass

    def snapshot(self) -> dict:
        return {"address": self.address(),
                "connections": self.api.web.active_connections if self.api is not None else 0}

    def background_tasks(self) -> list:
        return []
