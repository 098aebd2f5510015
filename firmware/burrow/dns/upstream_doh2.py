"""DNS over HTTPS to an upstream over HTTP/2 (RFC 9113): one connection, many streams.

Imported by upstream_doh.py only when a server picks ``h2`` in the TLS handshake (ALPN), so the
``h2`` library (the HTTP/2 state machine, from PyPI; the socket work here is ours) costs nothing
to a Burrow without a DoH upstream that speaks it.

Each query is one stream: POST ``application/dns-message``, answered ``200`` with that type and
a body of at most MAX_BODY bytes, matched to the query by its stream. A connection carries at
most H2_MAX_STREAMS streams at once, fewer if the server's SETTINGS_MAX_CONCURRENT_STREAMS is
lower. Streams wait for the server's first SETTINGS (its connection preface, sent with the
handshake's last flight), so no request overruns a limit or window the server set there. The
request body honours the server's flow-control windows (waiting for WINDOW_UPDATE); what the
server sends us is acknowledged as it is read, so its windows never close. A query whose timeout
passes resets its stream (CANCEL): the connection goes on serving the others.

What ends a stream and what the caller then does:
- the answer: returned;
- RST_STREAM REFUSED_STREAM (the server did not process it): :class:`Retry` — asked again, once
  (on this connection while it takes streams, else on a fresh one);
- any other RST_STREAM, a bad status, type or size: :class:`TransportError`, not asked again;
- GOAWAY: the connection takes no new streams. The ``h2`` state machine ends at GOAWAY, so
  streams still open are not answered on it: all of them end with :class:`Retry` (those above
  the GOAWAY's last stream ID were never processed; those at or below it may have been, and a
  DNS question asked twice is harmless);
- the connection lost, or a protocol error: :class:`Retry` if the connection had answered
  earlier streams (the server's housekeeping, as for HTTP/1.1), else :class:`TransportError`.

A connection with no stream for IDLE_TIMEOUT says GOAWAY and closes.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .upstream_doh import Retry
from .upstream_tls import IDLE_TIMEOUT, TransportError

H2_MAX_STREAMS = 100  # concurrent streams on one HTTP/2 connection (fewer if the server says so)
MAX_BODY = 65535  # bytes of a DNS message
MAX_HEADER_LIST = 16 * 1024  # bytes of the answer's headers (SETTINGS_MAX_HEADER_LIST_SIZE)
READ_SIZE = 65536  # bytes read from the socket at once
GOAWAY_FRAME = 0x7  # its type (RFC 9113 §6.8)


class _Stream:
    __slots__ = ("future", "status", "ctype", "body")

    def __init__(self, future: asyncio.Future[bytes]) -> None:
        self.future = future
        self.status = b""
        self.ctype = b""
        self.body = bytearray()


class H2Connection:
    """One HTTP/2 connection to a DoH server (module doc). ``on_change`` is called whenever a
    stream ends or the connection goes (the transport wakes queries waiting for room)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int,
                 authority: str, path: str, on_change: Callable[[H2Connection], None]) -> None:
        self.reader = reader
        self.writer = writer
        self.generation = generation
        self.on_change = on_change
        self.streams: dict[int, _Stream] = {}
        self.served = 0  # streams answered
        self.resets = 0  # streams the server reset
        self.goaway = False  # the server said GOAWAY: no new streams
        self.settled = False  # the server's first SETTINGS came (its stream limit is known)
        self.ready = asyncio.Event()  # set when settled or closed
        self.closed = False
        self.last_used = time.monotonic()
        self.send_room = asyncio.Event()  # set when a flow-control window may have opened
        self._idle: asyncio.TimerHandle | None = None
        self._base_headers = [(b":method", b"POST"), (b":scheme", b"https"),
                              (b":authority", authority.encode("ascii")), (b":path", path.encode("ascii")),
                              (b"content-type", b"application/dns-message"),
                              (b"accept", b"application/dns-message")]
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0,  # the server opens none to us
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST,
        })
        self.h2.initiate_connection()
        self._flush()
        self.reader_task = asyncio.ensure_future(self._read())
        self._idle_later()

    # ---- for the transport ----

    def limit(self) -> int:
        if not self.settled:
            return 0  # no stream before the server's SETTINGS: its limits and windows
        return min(H2_MAX_STREAMS, self.h2.remote_settings.max_concurrent_streams)

    def usable(self, generation: int) -> bool:
        return not self.closed and not self.goaway and self.generation == generation

    def has_room(self) -> bool:
        return max(len(self.streams), self.h2.open_outbound_streams) < self.limit()

    async def post(self, packet: bytes) -> bytes:
        """One query on its own stream → the answer's body (module doc for what it raises)."""
        if self.closed or self.goaway:
            raise Retry("the connection is going away")
        try:
            sid = self.h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError:
            self.goaway = True  # stream IDs used up: a fresh connection
            raise Retry("stream IDs used up") from None
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        stream = _Stream(asyncio.get_running_loop().create_future())
        self.streams[sid] = stream
        try:
            self.h2.send_headers(sid, [*self._base_headers, (b"content-length", b"%d" % len(packet))])
            await self._send_body(sid, packet)
            return await stream.future
        except h2.exceptions.TooManyStreamsError:
            raise Retry("the server lowered its stream limit") from None
        except (h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError, ConnectionError, OSError) as e:
            if stream.future.done():  # the stream or the connection ended while we sent: that says why
                return await stream.future
            if isinstance(e, (ConnectionError, OSError)):
                raise self._lost(f"connection lost: {e}") from None
            raise TransportError(f"HTTP/2: {e}") from None
        finally:
            if self.streams.get(sid) is stream:  # not ended by the server: our timeout, or a send error
                del self.streams[sid]
                if not self.closed:
                    try:
                        self.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                    except h2.exceptions.H2Error:
                        pass
                    self._flush()
            if stream.future.done() and not stream.future.cancelled():
                stream.future.exception()  # retrieved, even when our caller was cancelled
            self.last_used = time.monotonic()
            if not self.streams:
                self._idle_later()
            self.on_change(self)

    async def _send_body(self, sid: int, data: bytes) -> None:
        """DATA frames within the stream's and the connection's flow-control windows."""
        view = memoryview(data)
        while view:
            room = min(self.h2.local_flow_control_window(sid), self.h2.max_outbound_frame_size, len(view))
            if room <= 0:
                self._flush()
                self.send_room.clear()
                await self.send_room.wait()  # a WINDOW_UPDATE or SETTINGS; the caller's timeout bounds it
                if self.closed or sid not in self.streams:
                    return  # the stream's future says why
                continue
            self.h2.send_data(sid, view[:room].tobytes(), end_stream=room == len(view))
            view = view[room:]
        self._flush()
        await self.writer.drain()

    def close(self, reason: BaseException | None = None) -> None:
        """Close now; open streams end with ``reason``."""
        if self.closed:
            return
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._fail_all(reason or Retry("connection closed"))
        try:
            self.h2.close_connection()
            self._flush()
        except h2.exceptions.H2Error:
            pass
        self.writer.close()
        if not self.reader_task.done() and self.reader_task is not asyncio.current_task():
            self.reader_task.cancel()
        self.send_room.set()
        self.ready.set()
        self.on_change(self)

    # ---- inside ----

    def _flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def _fail_all(self, reason: BaseException) -> None:
        for stream in self.streams.values():
            if not stream.future.done():
                stream.future.set_exception(reason)
        self.streams.clear()

    def _lost(self, what: str) -> BaseException:
        if self.served:
            return Retry(what)
        return TransportError(what)

    def _idle_later(self) -> None:
        if not self.closed and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(IDLE_TIMEOUT, self._idle_close)

    def _idle_close(self) -> None:
        self._idle = None
        if not self.streams:
            self.close()

    async def _read(self) -> None:
        """Frames are given to h2 up to a GOAWAY, so what came before one is still read (h2
        refuses every frame after it) and nothing behind it is."""
        reason: BaseException | None = None
        buf = bytearray()
        try:
            while not self.goaway:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                buf += data
                # whole frames up to and including the first GOAWAY go to h2 in one call
                end = 0
                while end + 9 <= len(buf):
                    size = int.from_bytes(buf[end:end + 3], "big")
                    if size > self.h2.max_inbound_frame_size:
                        end = len(buf)  # h2 refuses it (FRAME_SIZE_ERROR)
                        break
                    if end + 9 + size > len(buf):
                        break
                    end += 9 + size
                    if buf[end - 9 - size + 3] == GOAWAY_FRAME:
                        break
                if end:
                    frames = bytes(buf[:end])
                    del buf[:end]
                    for event in self.h2.receive_data(frames):
                        self._event(event)
                self._flush()
            if self.goaway:
                reason = Retry("GOAWAY from the server")
        except h2.exceptions.ProtocolError as e:
            self._flush()  # h2's GOAWAY
            reason = self._lost(f"HTTP/2 protocol error: {e}")
        except (ConnectionError, ssl.SSLError, OSError) as e:
            reason = self._lost(f"connection lost: {e}")
        except asyncio.CancelledError:
            reason = Retry("connection closed")
        finally:
            self.close(reason or self._lost("connection closed by the server"))

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                for name, value in event.headers or ():
                    if name == b":status":
                        stream.status = bytes(value)
                    elif name == b"content-type":
                        stream.ctype = bytes(value).split(b";")[0].strip().lower()
        elif isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None and event.data:
                stream.body += event.data
                if len(stream.body) > MAX_BODY:
                    self._end(event.stream_id, TransportError(f"answer body over {MAX_BODY} bytes"), reset=True)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                self._end(event.stream_id, self._verdict(stream))
        elif isinstance(event, h2.events.StreamReset):
            self.resets += 1
            code = event.error_code
            code_name = code.name if isinstance(code, h2.errors.ErrorCodes) else str(code)
            if code == h2.errors.ErrorCodes.REFUSED_STREAM:
                self._end(event.stream_id, Retry("stream refused by the server"))
            else:
                self._end(event.stream_id, TransportError(f"stream reset by the server ({code_name})"))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = True  # _read ends the connection; its open streams are asked again
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settled = True
                self.ready.set()
            self.send_room.set()
            self.on_change(self)  # the stream limit may have moved

    def _verdict(self, stream: _Stream) -> bytes | BaseException:
        if stream.status != b"200":
            return TransportError(f"HTTP {stream.status.decode('latin-1') or 'without a status'}")
        if stream.ctype != b"application/dns-message":
            return TransportError(f"answer of type {stream.ctype.decode('latin-1') or 'none'!r}, "
                                  "not application/dns-message")
        return bytes(stream.body)

    def _end(self, sid: int, outcome: bytes | BaseException, reset: bool = False) -> None:
        stream = self.streams.pop(sid, None)
        if stream is None or stream.future.done():
            return
        if isinstance(outcome, BaseException):
            stream.future.set_exception(outcome)
        else:
            self.served += 1
            stream.future.set_result(outcome)
        if reset:
            try:
                self.h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            except h2.exceptions.H2Error:
                pass
        self.send_room.set()
