"""Live streams over WebSocket: /ws/queries, /ws/metrics, /ws/events, /ws/health.

Every upgrade must carry no ``Origin`` or Burrow's own (origin.py), else 403: browsers send the
session cookie with a WebSocket handshake from any page, and CORS does not apply to WebSockets.
Authentication happens BEFORE the upgrade, through the same route wrapper as every REST call:
``Authorization: Bearer …``, the session cookie, or — because browsers cannot set headers on
a WebSocket — ``?token=<access token>``. Without valid credentials the client gets our JSON
401 and no upgrade. Viewer role suffices.

Every connection reads from its own bounded event-bus subscription. A client that reads slowly
loses the OLDEST messages (a live view wants the newest) and is told so with
``{"type": "lost", "count": N}`` before the next message it gets; the DNS path and other
clients never wait for it (publishers only append to queues). A client that reads nothing for
``SEND_TIMEOUT`` seconds is disconnected, which frees its slot. At most ``MAX_WS_CLIENTS``
streams are open at once; past that the upgrade is refused with 503.

Messages are JSON text: ``{"type": "query"|"metrics"|"event"|"health"|"lost", "data": …}``
(``lost`` carries ``count`` instead of ``data``). /ws/events also says ``{"type": "hello",
"heartbeat": N}`` first and ``{"type": "ping"}`` after N quiet seconds (EVENTS_HEARTBEAT).
Messages from the client are read (so pings and closes work) and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import ujson
from microdot import Response
from microdot.websocket import WebSocketError, websocket_upgrade

from ..storage.events import EVENT_TOPICS, normalize
from ..storage.querylog import iso_utc
from .errors import ApiError
from .queries import DECISIONS
from .routes import Api, error_response
from .schema import Bool, Query, Str

if TYPE_CHECKING:
    from ..board.appliance import Appliance
    from ..resolver import Resolver
    from ..telemetry.events import EventBus
    from ..telemetry.recorder import Recorder

log = logging.getLogger(__name__)

MAX_WS_CLIENTS = 16  # concurrent streams (each holds a bus subscription and a connection)
QUEUE_SIZE = 256  # messages buffered per stream before the oldest are dropped
SEND_TIMEOUT = 60.0  # seconds one message may wait for a client that does not read
METRICS_INTERVAL = 1.0  # seconds between /ws/metrics messages
MAX_CLIENT_MESSAGE = 4096  # bytes; the client has nothing big to say
# /ws/events says {"type": "hello", "heartbeat": N} when it opens and {"type": "ping"} after
# every N seconds without a message, so a page can tell a healthy quiet stream from a dead one
# (or a proxy that accepted the upgrade but relays nothing) and fall back to polling.
EVENTS_HEARTBEAT = 20.0
# /ws/events relays the stored topics and, live only (too chatty to keep), the list manager's
# update progress: lists.refresh_started … lists.compile_progress … lists.refresh_finished.
WS_EVENT_TOPICS = (*EVENT_TOPICS, "lists", "health")
# Also live only, so a dashboard needs no polling: the status LED's state on every change
# ("status.changed", from the board's "health" topic), and "stats.updated" at most every
# STATS_EVENT_INTERVAL seconds while queries are being counted or written to the log.
STATS_EVENT_INTERVAL = 2.0

TOKEN = Str(required=False, max_len=4096,
            description="access token, for browsers (which cannot send headers on a WebSocket)")
WS_RESPONSES = {101: "Switching Protocols: JSON text messages follow",
                503: "too many live streams open; try again later"}


def _dumps(obj) -> str:
    return ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False)


class QueryFilter:
    """Server-side filter for /ws/queries: client (exact IP), domain (substring, any case),
    blocked (true/false), decision (label, e.g. "blocked", "cached")."""

    def __init__(self, client=None, domain=None, blocked=None, decision=None):
        self.client = client
        self.domain = domain.lower() if domain else None
        self.blocked = blocked
        self.decision = decision.lower() if decision else None

    def __call__(self, row: dict) -> bool:
        if self.client and row.get("client_ip") != self.client:
            return False
        if self.domain and self.domain not in str(row.get("domain", "")).lower():
            return False
        if self.blocked is not None and bool(row.get("blocked")) != self.blocked:
            return False
        if self.decision and row.get("decision") != self.decision:
            return False
        return True


class Streams:
    """The open streams: counts them against MAX_WS_CLIENTS and runs each session."""

    def __init__(self, events: EventBus, max_clients: int = MAX_WS_CLIENTS):
        self.events = events
        self.max_clients = max_clients
        self.open = 0
        self.refused = 0
        self.send_timeouts = 0

    def admit(self, req) -> None:
        """Raise before any upgrade unless this is a WebSocket request and a slot is free."""
        headers = req.headers
        if "websocket" not in headers.get("Upgrade", "").lower() \
                or "upgrade" not in headers.get("Connection", "").lower() \
                or not headers.get("Sec-WebSocket-Key"):
            raise ApiError(400, "this endpoint speaks WebSocket: send an Upgrade: websocket request")
        if self.open >= self.max_clients:
            self.refused += 1
            raise ApiError(503, f"{self.max_clients} live streams are open already; close one",
                           headers={"Retry-After": "10"})

    def subscribe(self, topics):
        from ..telemetry.events import TooManySubscribersError
        try:
            return self.events.subscribe(topics, maxsize=QUEUE_SIZE)
        except TooManySubscribersError:
            self.refused += 1
            raise ApiError(503, "too many live subscribers; try again later",
                           headers={"Retry-After": "10"}) from None

    async def serve(self, req, sub, produce) -> Response:
        """Upgrade, then run ``produce(ws, send, closed)`` until either side ends.

        ``sub`` (a bus Subscription or None) is closed when the session ends. ``send(obj)``
        sends one JSON message (bounded by SEND_TIMEOUT); ``closed`` is an Event set when the
        client has gone away.
        """
        self.open += 1
        ws = None
        closed = asyncio.Event()
        reader = None
        try:
            ws = await websocket_upgrade(req)
            ws.max_message_length = MAX_CLIENT_MESSAGE
            reader = asyncio.ensure_future(self._read(ws, sub, closed))

            async def send(obj) -> None:
                try:
                    async with asyncio.timeout(SEND_TIMEOUT):
                        await ws.send(_dumps(obj))
                except (TimeoutError, asyncio.TimeoutError):
                    self.send_timeouts += 1
                    closed.set()
                    _abort(req)  # the client stopped reading: free the slot, drop the buffer
                    raise ConnectionError("websocket client stopped reading") from None

            await produce(ws, send, closed)
        except (OSError, ConnectionError, WebSocketError):
            pass  # the client went away or stopped reading
        except ApiError:
            raise
        except Exception:
            log.exception("websocket stream %s failed", req.path)
        finally:
            self.open -= 1
            if sub is not None:
                sub.close()
            if reader is not None:
                reader.cancel()
            if ws is not None and not closed.is_set():
                try:
                    async with asyncio.timeout(1.0):
                        await ws.close()
                except Exception:
                    _abort(req)
        return Response.already_handled

    @staticmethod
    async def _read(ws, sub, closed: asyncio.Event) -> None:
        # Reads the client's frames so pings are answered and a close is noticed at once.
        try:
            while True:
                await ws.receive()
        except (OSError, WebSocketError, ValueError, asyncio.IncompleteReadError, UnicodeDecodeError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.debug("websocket reader ended", exc_info=True)
        closed.set()
        if sub is not None:
            sub.close()  # wakes a producer waiting for the next bus message


def _abort(req) -> None:
    writer = req.sock[1] if req.sock else None
    transport = getattr(writer, "transport", None)
    if transport is not None:
        transport.abort()


async def _relay(sub, send, transform) -> None:
    """Forward bus messages through ``transform`` (None = skip), reporting losses first."""
    async for event in sub:
        if event.lost:
            await send({"type": "lost", "count": event.lost})
        message = transform(event)
        if message is not None:
            await send(message)


async def _heartbeat(send, closed: asyncio.Event, last: list) -> None:
    """Send {"type": "ping"} whenever EVENTS_HEARTBEAT seconds passed without a message."""
    try:
        while not closed.is_set():
            wait = last[0] + EVENTS_HEARTBEAT - time.monotonic()
            if wait <= 0:
                await send({"type": "ping"})
                continue
            try:
                await asyncio.wait_for(closed.wait(), wait)
            except asyncio.TimeoutError:
                pass
    except (OSError, ConnectionError, WebSocketError):
        closed.set()  # the client went away; the relay ends when its subscription closes
    except Exception:  # never an unretrieved task exception; the relay carries on
        log.debug("websocket heartbeat ended", exc_info=True)


def metrics_snapshot(recorder: Recorder, resolver: Resolver) -> dict:
    """What /ws/metrics sends each second: qps and last-minute counts, cache, fast path."""
    out: dict = {"ts": round(time.time(), 3)}
    out.update(recorder.stats.realtime())
    out["cache"] = resolver.cache.stats()
    out["fast_path"] = resolver.fastpath.stats()
    out["dns"] = resolver.server.counters.as_dict()
    return out


def register(api: Api, *, events: EventBus, recorder: Recorder, resolver: Resolver, board: Appliance) -> None:
    streams = Streams(events)
    api.streams = streams  # for tests and /metrics

    # A browser sends the session cookie with a WebSocket handshake from any page, and CORS does
    # not apply to WebSockets: every upgrade must come from Burrow's own page or carry no Origin.
    @api.web.before_request
    async def same_origin_only(req):
        if req.path.startswith("/ws/") and not api.site.origin_ok(req):
            return error_response(api.site.refuse_origin())

    # Browsers cannot send headers on a WebSocket: take ?token= as a bearer token for /ws/*,
    # before the route wrapper authenticates (only when no Authorization header was sent).
    @api.web.before_request
    async def token_from_query(req):
        if req.path.startswith("/ws/") and "Authorization" not in req.headers:
            token = req.args.get("token") if req.args else None
            if token:
                req.headers["Authorization"] = f"Bearer {token}"

    @api.route("GET", "/ws/queries", role="viewer", summary="Live query stream (WebSocket)",
               tags=["realtime"], raw_response=True, responses=WS_RESPONSES, query=Query({
                   "client": Str(required=False, max_len=64, description="only this client IP"),
                   "domain": Str(required=False, max_len=253, description="domain contains this"),
                   "blocked": Bool(required=False, description="only blocked (true) or not (false)"),
                   "decision": Str(required=False, max_len=32,
                                   description=f"only this decision: {DECISIONS}"),
                   "token": TOKEN}))
    async def ws_queries(req):
        q = req.g.query
        match = QueryFilter(q.get("client"), q.get("domain"), q.get("blocked"), q.get("decision"))
        streams.admit(req)
        sub = streams.subscribe("queries")

        async def produce(ws, send, closed):
            await _relay(sub, send, lambda e: {"type": "query", "data": e.payload}
                         if isinstance(e.payload, dict) and match(e.payload) else None)

        return await streams.serve(req, sub, produce)

    @api.route("GET", "/ws/events", role="viewer",
               summary="Live audit and system events, and block-list update progress (WebSocket)",
               tags=["realtime"], raw_response=True, responses=WS_RESPONSES, query=Query({"token": TOKEN}))
    async def ws_events(req):
        streams.admit(req)
        sub = streams.subscribe(WS_EVENT_TOPICS)

        async def produce(ws, send, closed):
            lock = asyncio.Lock()  # the relay and the heartbeat share one connection
            last = [time.monotonic()]

            async def send_one(obj) -> None:
                async with lock:
                    await send(obj)
                last[0] = time.monotonic()

            await send_one({"type": "hello", "heartbeat": EVENTS_HEARTBEAT})
            beat = asyncio.ensure_future(_heartbeat(send_one, closed, last))
            counted = asyncio.ensure_future(_stats_updates(recorder, send_one, closed))
            try:
                # Same shape as /api/events items (secrets removed), without the id (not stored yet).
                await _relay(sub, send_one, lambda e: {"type": "event", "data": _event(e)})
            finally:
                beat.cancel()
                counted.cancel()

        return await streams.serve(req, sub, produce)

    @api.route("GET", "/ws/metrics", role="viewer", summary="Live metrics every second (WebSocket)",
               tags=["realtime"], raw_response=True, responses=WS_RESPONSES, query=Query({"token": TOKEN}))
    async def ws_metrics(req):
        streams.admit(req)

        async def produce(ws, send, closed):
            while not closed.is_set():
                data = metrics_snapshot(recorder, resolver)
                data["system"] = await board.system_recent()  # read at most every 5 s for all streams
                await send({"type": "metrics", "data": data})
                try:
                    await asyncio.wait_for(closed.wait(), METRICS_INTERVAL)
                except asyncio.TimeoutError:
                    pass

        return await streams.serve(req, None, produce)

    @api.route("GET", "/ws/health", role="viewer", summary="Health status on change (WebSocket)",
               tags=["realtime"], raw_response=True, responses=WS_RESPONSES, query=Query({"token": TOKEN}))
    async def ws_health(req):
        streams.admit(req)
        sub = streams.subscribe("health")

        async def produce(ws, send, closed):
            await send({"type": "health", "data": board.status().as_dict()})
            # The board publishes on every status change.
            await _relay(sub, send, lambda e: {"type": "health", "data": e.payload})

        return await streams.serve(req, sub, produce)


def stats_marker(recorder: Recorder) -> tuple[int, int]:
    """What changes when the figures of /api/stats or the tops of /api/dashboard may have:
    queries counted (drained from the ring) and rows written to the log."""
    return recorder.received, recorder.flushed


async def _stats_updates(recorder: Recorder, send, closed: asyncio.Event) -> None:
    """Send a live-only "stats.updated" event (``data``: ``received``, ``written``) at most
    every STATS_EVENT_INTERVAL seconds, only when queries were counted or written since the
    last one: two integers compared, never a read of the log."""
    try:
        seen = stats_marker(recorder)
        while not closed.is_set():
            try:
                await asyncio.wait_for(closed.wait(), STATS_EVENT_INTERVAL)
            except asyncio.TimeoutError:
                pass
            now = stats_marker(recorder)
            if now != seen and not closed.is_set():
                seen = now
                await send({"type": "event", "data": {
                    "timestamp": iso_utc(time.time()), "ts": time.time(), "type": "stats.updated",
                    "severity": "debug", "actor": None, "client_ip": None,
                    "summary": "query counts changed", "data": {"received": now[0], "written": now[1]}}})
    except (OSError, ConnectionError, WebSocketError):
        closed.set()
    except Exception:  # never an unretrieved task exception; the relay carries on
        log.debug("websocket stats updates ended", exc_info=True)


def _event(e) -> dict:
    if e.topic == "health" and isinstance(e.payload, dict):  # the board's status, on change
        status = e.payload
        event = normalize({"type": "status.changed", "severity": "info", "actor": "system",
                           "summary": f"status {status.get('state')}", "data": dict(status)}, "health")
        event["data"].pop("topic", None)
        return {"timestamp": iso_utc(event["ts"]), **event}
    event = normalize(e.payload, e.topic)
    return {"timestamp": iso_utc(event["ts"]), **event}
