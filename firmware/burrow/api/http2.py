"""HTTP/2 (RFC 9113) on the HTTPS listener: the ``h2`` library's state machine, our asyncio glue.

A TLS connection whose ALPN chose ``h2`` is served here instead of by BurrowWeb's HTTP/1.1 loop
(BurrowWeb.handle_request decides, after the connection caps, which it shares). Each stream
becomes a microdot ``Request`` (``:method``, ``:path``, ``:authority`` as Host, the headers —
cookies joined with ``; ``, repeats with ``, `` — and the body) and goes through the same
screen, redirect and ``dispatch_request`` as an HTTP/1.1 request: the Host/Origin checks, auth,
CSRF, limits, the one error shape and gzip all apply unchanged. The answer goes back as HEADERS
and DATA frames within the peer's flow-control windows; a streamed body (an export) chunk by
chunk.

Caps (docs/architecture.md, "Budgets"): MAX_STREAMS concurrent streams per connection
(SETTINGS_MAX_CONCURRENT_STREAMS; a stream past it is refused with REFUSED_STREAM, and h2
itself ends a connection that goes past it once the setting is acknowledged); the header list
MAX_HEADER_BYTES / MAX_HEADERS (431); bodies as over HTTP/1.1 (JSON 64 KiB, any 16 MiB: the
route answers 413, then the stream is reset); the request deadline per stream, from its HEADERS
to its last DATA (408); the keep-alive idle timeout while no stream is open (then GOAWAY);
WRITE_DEADLINE for an answer. Frames that cost the client nothing and the server something —
RST_STREAM (rapid reset, CVE-2023-44487), PING, SETTINGS, PRIORITY, empty DATA, refused streams
— draw on a per-connection budget (FLOOD_BURST, refilled at FLOOD_RATE a second); a client
that empties it gets GOAWAY ENHANCE_YOUR_CALM and the connection closes.

No server push, and no extended CONNECT (RFC 8441, SETTINGS_ENABLE_CONNECT_PROTOCOL stays 0):
a browser opens an HTTP/1.1 connection for ``/ws/events``.
"""

from __future__ import annotations

import asyncio
import logging
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import ujson
from h2.errors import ErrorCodes
from microdot import Request, Response
from microdot.microdot import NoCaseDict

from . import errors
from .errors import ApiError
from .routes import (BODILESS, MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE, SECURITY_HEADERS,
                     WRITE_DEADLINE, LINGER, _close_body, body_length)

log = logging.getLogger(__name__)
# hpack logs every header it encodes or decodes at DEBUG — cookies and Authorization included —
# and formatting them costs more than the request: never below WARNING, whatever logging.level says.
for _name in ("hpack", "h2"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MAX_STREAMS = 16  # concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS)
STREAM_BACKSTOP = 100  # h2's own limit until the client acks MAX_STREAMS (then a connection error past it)
# The header list size h2's decoder takes: h2's default, left in force (the advertised cap is
# MAX_HEADER_BYTES): between the two a request gets 431 like over HTTP/1.1; past it the
# connection ends (COMPRESSION_ERROR).
HEADER_BACKSTOP = h2.connection.H2Connection.DEFAULT_MAX_HEADER_LIST_SIZE
STREAM_WINDOW = 65535  # bytes a stream's body may run ahead of the route reading it
CONNECTION_WINDOW = MAX_STREAMS * STREAM_WINDOW  # so one stalled stream does not stall the others
FLOOD_BURST = 200  # cheap frames (resets, pings, settings, priority, empty data, refusals) at once
FLOOD_RATE = 50.0  # ... and per second after that
READ_SIZE = 64 * 1024
WRITE_BUFFER_CAP = 256 * 1024  # bytes queued to a client that does not read: then wait (WRITE_DEADLINE)
# Fields that mean something only to HTTP/1.1 (RFC 9113 8.2.2): never sent on a stream.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"})


class Stream:
    """One request's state: its headers, the body as it arrives, the window to answer in."""

    def __init__(self, sid: int, headers: list, ended: bool):
        self.id = sid
        self.headers = headers
        self.ended = ended
        self.body = bytearray()
        self.received = 0  # flow-controlled bytes received (padding included)
        self.acked = 0  # ... of which given back to the client's window
        self.streaming = False  # the route reads the body (H2Body): acked as it is read
        self.arrived = asyncio.Event()  # more body, or its end
        self.window = asyncio.Event()  # the send window may have opened
        self.task: asyncio.Task | None = None
        self.declared = 0  # Content-Length, 0 if none


class H2Body:
    """``req.stream`` of a body too large to read up front: it reads what arrived, and opens the
    client's window by what it took (so the client can send at most STREAM_WINDOW ahead)."""

    def __init__(self, server: H2Server, stream: Stream):
        self.server = server
        self.stream = stream

    async def read(self, n: int = -1) -> bytes:
        st = self.stream
        while not st.body and not st.ended:
            st.arrived.clear()
            await st.arrived.wait()
        if n < 0 or n >= len(st.body):
            out = bytes(st.body)
            st.body.clear()
        else:
            out = bytes(st.body[:n])
            del st.body[:n]
        self.server.ack(st)
        return out


class H2Server:
    """One HTTP/2 connection of ``web`` (a BurrowWeb), admitted under its caps already.

    ``refusal``: the connection is over a cap; every stream is answered with it (the API's error
    shape, 503 with Retry-After) and the connection ends after the first, as over HTTP/1.1."""

    def __init__(self, web, reader, writer, peer, client: str, refusal: ApiError | None = None):
        self.web = web
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.client = client
        self.refusal = refusal
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True))
        self.streams: dict[int, Stream] = {}
        self.draining: set[int] = set()  # streams answered whose body is still coming (see _close)
        self.idle_since = time.monotonic()
        self.tokens = float(FLOOD_BURST)
        self.refilled = self.idle_since
        self.flooded = False
        self.served = 0
        self.ending = False  # GOAWAY sent: no new streams; close when the last one is done
        self.done = asyncio.Event()

    # ---- the connection ------------------------------------------------------------------------

    async def run(self) -> None:
        conn = self.conn
        S = h2.settings.SettingCodes
        # The first SETTINGS: in force at once (so h2's decoder keeps HEADER_BACKSTOP, and a stream
        # past MAX_STREAMS before the client saw our limit is refused by _open, not a connection
        # error); the second lowers h2's own stream limit to MAX_STREAMS once the client acks it.
        conn.local_settings = h2.settings.Settings(client=False, initial_values={
            S.MAX_CONCURRENT_STREAMS: STREAM_BACKSTOP, S.MAX_HEADER_LIST_SIZE: MAX_HEADER_BYTES,
            S.INITIAL_WINDOW_SIZE: STREAM_WINDOW, S.ENABLE_CONNECT_PROTOCOL: 0})
        conn.initiate_connection()
        conn.update_settings({S.MAX_CONCURRENT_STREAMS: MAX_STREAMS})
        conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.flush()
        try:
            await self._read_loop()
        finally:
            self.draining.clear()
            for st in list(self.streams.values()):
                if st.task is not None:
                    st.task.cancel()
            tasks = [st.task for st in self.streams.values() if st.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            self.web.idle.pop(self.writer, None)
            self.flush()
            try:
                async with asyncio.timeout(LINGER):
                    await self.writer.drain()
            except (OSError, TimeoutError, asyncio.TimeoutError):
                pass
            self.writer.close()

    async def _read_loop(self) -> None:
        web = self.web
        while True:
            timeout = None
            if not self.streams:
                if self.ending or web.closing:
                    return
                timeout = max(0.0, self.idle_since + web.keepalive_timeout - time.monotonic())
                web.idle[self.writer] = self.client  # evicted first when a cap is full
            try:
                async with asyncio.timeout(timeout):
                    data = await self.reader.read(READ_SIZE)
            except (TimeoutError, asyncio.TimeoutError):
                web.idle_closes += 1
                self.conn.close_connection(ErrorCodes.NO_ERROR)
                return
            except OSError:
                return
            finally:
                web.idle.pop(self.writer, None)
            if not data:
                return
            try:
                events = self.conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                code = getattr(exc, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
                log.debug("HTTP/2 protocol error from %s: %s", self.client, exc)
                self.conn.close_connection(code)
                return
            for event in events:
                self._on(event)
                if self.flooded:
                    break
            if self.flooded:
                log.info("HTTP/2 client %s flooded (resets, pings, settings); connection closed", self.client)
                web.flood_cuts += 1
                self.conn.close_connection(ErrorCodes.ENHANCE_YOUR_CALM, additional_data=b"too many frames")
                return
            self.flush()
            if self.writer.transport.get_write_buffer_size() > WRITE_BUFFER_CAP:
                try:
                    async with asyncio.timeout(WRITE_DEADLINE):
                        await self.writer.drain()
                except (OSError, TimeoutError, asyncio.TimeoutError):
                    web.deadline_cuts += 1
                    return

    def _charge(self, cost: float = 1.0) -> None:
        now = time.monotonic()
        self.tokens = min(FLOOD_BURST, self.tokens + (now - self.refilled) * FLOOD_RATE)
        self.refilled = now
        self.tokens -= cost
        if self.tokens < 0:
            self.flooded = True

    def _on(self, event) -> None:
        E = h2.events
        if isinstance(event, E.RequestReceived):
            self._open(event.stream_id, event.headers, event.stream_ended is not None)
        elif isinstance(event, E.DataReceived):
            st = self.streams.get(event.stream_id)
            if not event.data and event.stream_ended is None:
                self._charge()  # empty DATA frames (CVE-2019-9518)
            if st is None:
                if event.flow_controlled_length:
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                return
            st.body += event.data
            st.received += event.flow_controlled_length
            if not st.streaming:
                self.ack(st)  # read up front (see _wait_body); STREAM_WINDOW more at most
            st.arrived.set()
        elif isinstance(event, E.StreamEnded):
            self.draining.discard(event.stream_id)
            st = self.streams.get(event.stream_id)
            if st is not None:
                st.ended = True
                st.arrived.set()
        elif isinstance(event, E.StreamReset):
            self._charge()  # rapid reset (CVE-2023-44487): a reset costs the client nothing
            self.draining.discard(event.stream_id)
            st = self.streams.get(event.stream_id)
            if st is not None and st.task is not None:
                st.task.cancel()
        elif isinstance(event, E.WindowUpdated):
            if event.stream_id:
                st = self.streams.get(event.stream_id)
                if st is not None:
                    st.window.set()
            else:
                for st in self.streams.values():
                    st.window.set()
        elif isinstance(event, E.RemoteSettingsChanged):
            self._charge()
            for st in self.streams.values():
                st.window.set()
        elif isinstance(event, (E.PingReceived, E.PriorityUpdated)):
            self._charge()
        elif isinstance(event, E.ConnectionTerminated):
            self.ending = True

    def _open(self, sid: int, headers: list, ended: bool) -> None:
        web = self.web
        if self.ending or len(self.streams) >= MAX_STREAMS or (self.refusal is not None and self.served):
            self._charge()
            self._reset(sid, ErrorCodes.REFUSED_STREAM)
            return
        st = Stream(sid, headers, ended)
        self.streams[sid] = st
        self.served += 1
        if self.served > 1:
            web.reused_requests += 1
        st.task = asyncio.get_running_loop().create_task(self._serve(st))

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            try:
                self.writer.write(data)
            except (OSError, RuntimeError):
                pass

    def ack(self, st: Stream) -> None:
        """Give back to the client's windows what arrived and is not held in ``st.body`` any more
        (before the route runs, everything: a body up to MAX_JSON_BODY is read up front)."""
        held = len(st.body) if st.streaming else 0
        give = st.received - held - st.acked
        if give > 0 and st.id in self.streams:
            st.acked += give
            try:
                self.conn.acknowledge_received_data(give, st.id)
            except h2.exceptions.StreamClosedError:
                pass
            if st.streaming:
                self.flush()  # from H2Body.read; the read loop flushes after its events itself

    # ---- a stream ------------------------------------------------------------------------------

    async def _serve(self, st: Stream) -> None:
        web = self.web
        try:
            if self.refusal is not None:
                await self._answer(st, None, error_answer(self.refusal))
                self.conn.close_connection(ErrorCodes.NO_ERROR)
                self.ending = True
                return
            try:
                req = self._request(st)
                async with asyncio.timeout(web.request_deadline):
                    await self._wait_body(st, req)
            except (TimeoutError, asyncio.TimeoutError):
                web.deadline_cuts += 1
                await self._answer(st, None, error_answer(ApiError(
                    408, f"the request did not arrive within {web.request_deadline:g} s")))
                return
            except ApiError as exc:
                web.refused_requests += 1
                await self._answer(st, None, error_answer(exc))
                return
            refusal = web.screen(req) if web.screen is not None else None
            if refusal is not None:
                await self._answer(st, req, error_answer(refusal))
                return
            web.requests_total += 1
            res = web.redirect(req) if web.redirect is not None else None
            if res is None:
                res = await web.dispatch_request(req)
            if res is Response.already_handled:  # a WebSocket: never over h2 (no extended CONNECT)
                self._reset(st.id, ErrorCodes.INTERNAL_ERROR)
                return
            await self._answer(st, req, res)
        except asyncio.CancelledError:
            pass  # the client reset the stream, or the connection ended
        except (TimeoutError, asyncio.TimeoutError, OSError):
            web.deadline_cuts += 1
            self._reset(st.id, ErrorCodes.CANCEL)
        except h2.exceptions.StreamClosedError:
            pass
        except Exception:
            log.exception("HTTP/2 stream %d failed", st.id)
            self._reset(st.id, ErrorCodes.INTERNAL_ERROR)
        finally:
            self._close(st)

    def _close(self, st: Stream) -> None:
        if self.streams.pop(st.id, None) is None:
            return
        if not st.ended:
            # Answered before the whole body came (a 413, a refusal): what still comes is read
            # and dropped for LINGER, as HTTP/1.1 lingers (a client that sends its whole body
            # before it reads, httpx for one, reads the answer), then the stream is reset NO_ERROR.
            self.draining.add(st.id)
            asyncio.get_running_loop().call_later(LINGER, self._drained, st.id)
        give = st.received - st.acked  # the connection window back for what the route left
        if give > 0:
            try:
                self.conn.acknowledge_received_data(give, st.id)
            except h2.exceptions.StreamClosedError:
                pass
        if not self.streams:
            self.idle_since = time.monotonic()
            if self.web.closing and not self.ending:
                self.conn.close_connection(ErrorCodes.NO_ERROR)
                self.ending = True
        self.flush()

    def _drained(self, sid: int) -> None:
        if sid in self.draining:
            self.draining.discard(sid)
            self._reset(sid, ErrorCodes.NO_ERROR)

    def _reset(self, sid: int, code) -> None:
        try:
            self.conn.reset_stream(sid, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass
        self.flush()

    def _request(self, st: Stream) -> Request:
        """The microdot Request of the stream's header block (ApiError 400/431 if it is not one)."""
        pseudo: dict[str, str] = {}
        headers = NoCaseDict()
        size = 0
        count = 0
        for raw_name, raw_value in st.headers:
            size += len(raw_name) + len(raw_value) + 32  # RFC 9113 6.5.2: the header list size
            if size > MAX_HEADER_BYTES:
                raise ApiError(431, f"the request header fields are over {MAX_HEADER_BYTES} bytes")
            name = raw_name.decode("ascii", "replace")
            try:
                value = raw_value.decode()
            except UnicodeDecodeError:
                raise ApiError(400, f"the {name} header is not UTF-8") from None
            if name.startswith(":"):
                pseudo[name] = value
                continue
            count += 1
            if count > MAX_HEADERS:
                raise ApiError(431, f"more than {MAX_HEADERS} request header fields")
            if name in headers:  # RFC 9113 8.2.3: cookie crumbs joined with "; ", others with ", "
                headers[name] = headers[name] + ("; " if name == "cookie" else ", ") + value
            else:
                headers[name] = value
        method, path = pseudo.get(":method", ""), pseudo.get(":path", "")
        if not path.startswith("/"):
            raise ApiError(400, "the request target must be a path starting with /")
        if len(path) > MAX_REQUEST_LINE:
            raise ApiError(414, f"the request target is over {MAX_REQUEST_LINE} bytes")
        if ":authority" in pseudo:  # RFC 9113 8.3.1: it stands for Host
            headers["Host"] = pseudo[":authority"]
        st.declared = body_length(headers)
        try:
            return Request(self.web, self.peer, method, path, "2", headers, body=b"",
                           sock=(self.reader, self.writer), scheme="https")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the query string is not valid percent-encoded UTF-8") from None

    async def _wait_body(self, st: Stream, req: Request) -> None:
        """Read the body up front up to Request.max_body_length (64 KiB, as HTTP/1.1 does); a
        larger one (declared or found) is left to the route (``req.stream``)."""
        cap = Request.max_body_length
        while not st.ended and len(st.body) <= cap and st.declared <= cap:
            st.arrived.clear()
            await st.arrived.wait()
        if st.ended and len(st.body) <= cap:
            req._body = bytes(st.body)
            st.body.clear()
            if "Content-Length" not in req.headers:
                req.content_length = len(req._body)
                if req._body:
                    req.headers["Content-Length"] = str(req.content_length)
            return
        if not st.declared:
            raise ApiError(411, "send a body of more than 64 KiB with a Content-Length")
        st.streaming = True
        req._stream = H2Body(self, st)

    async def _answer(self, st: Stream, req: Request | None, res: Response) -> None:
        conn = self.conn
        headers = res.headers
        status = res.status_code
        send_body = req is None or req.method != "HEAD"
        if status < 200 or status in BODILESS:
            for name in ("Content-Length", "Transfer-Encoding"):
                if name in headers:
                    del headers[name]
            send_body = False
        else:
            res.complete()
        fields = [(":status", str(status))]
        for name, values in headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP:
                continue
            for value in values if isinstance(values, list) else [values]:
                fields.append((lower, str(value)))
        body = res.body
        empty = isinstance(body, bytes) and not body
        async with asyncio.timeout(WRITE_DEADLINE):
            conn.send_headers(st.id, fields, end_stream=not send_body or empty)
            if not send_body or empty:
                self.flush()
                if not isinstance(body, bytes):
                    await _close_body(res)
                return
            if isinstance(body, bytes):
                await self._send(st, body, end=True)
                return
            self.flush()  # the head now: a streamed body's first chunk may take a while
            chunks = res.body_iter()
            try:
                async for chunk in chunks:
                    if isinstance(chunk, str):
                        chunk = chunk.encode()
                    if chunk:
                        await self._send(st, chunk, end=False)
            except (OSError, TimeoutError, asyncio.CancelledError, h2.exceptions.StreamClosedError):
                raise
            except Exception:  # the body failed half-way: reset, so the client sees it cut
                log.exception("the body of %s %s failed while it was sent", req.method if req else "?",
                              req.path if req else "?")
                self._reset(st.id, ErrorCodes.INTERNAL_ERROR)
                return
            finally:
                if hasattr(chunks, "aclose"):
                    await chunks.aclose()
            conn.end_stream(st.id)
            self.flush()

    async def _send(self, st: Stream, data: bytes, end: bool) -> None:
        """DATA frames within the stream's and the connection's windows."""
        conn = self.conn
        view = memoryview(data)
        while view:
            window = conn.local_flow_control_window(st.id)
            if window <= 0:
                st.window.clear()
                await st.window.wait()
                continue
            size = min(window, conn.max_outbound_frame_size, len(view))
            last = end and size == len(view)
            conn.send_data(st.id, bytes(view[:size]), end_stream=last)
            view = view[size:]
            self.flush()
            await self.writer.drain()


def error_answer(exc: ApiError) -> Response:
    body = ujson.dumps(errors.error_body(exc.status, exc.message, exc.details, exc.error)).encode()
    return Response(body, exc.status, {**SECURITY_HEADERS, **exc.headers,
                                       "Content-Type": "application/json; charset=UTF-8"})
