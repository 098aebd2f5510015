"""Secondary zones: copy a zone from a primary with AXFR (RFC 5936) and keep it fresh.

Three layers, each usable alone:

* :func:`axfr` transfers one zone over TCP and returns its records as :class:`Record`
  (RDATA in zone-file text), in the order the primary sent them, without the closing SOA.
  Every reply is checked (ID, QR, opcode, rcode, question), the stream must open with the
  zone's SOA and end with it, owners must lie inside the zone, and the transfer is bounded
  by a record cap, a byte cap and one overall timeout.
* :func:`query_soa_serial` asks a primary for the zone's SOA serial (UDP, TCP when the
  answer is truncated) for the cheap "has it changed?" check.
* :class:`SecondaryZone` is the refresh schedule of RFC 1034 §4.3.5 as a small class with an
  injected clock: check again after REFRESH, after RETRY when a check failed, stop answering
  (SERVFAIL) once EXPIRE has passed without a successful check; serials compare with RFC 1982
  arithmetic. :meth:`SecondaryZone.refresh_once` does one check-and-maybe-transfer.

Wire framing reuses :mod:`burrow.dns.wire` (bounds-checked, names decompressed and
lower-cased). RDATA becomes text here: the types that carry names or character-strings are
formatted by this module (dnslib's ``toZone`` does not escape quotes, backslashes or dots in
labels, writes octal escapes and decodes TXT as UTF-8); the numeric/hex/base64 DNSSEC-era types
go through dnslib; anything else is written in the RFC 3597 generic form ``\\# len hex``,
which every zone-file parser must accept.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import struct
import time
from typing import Callable, Iterable

import dnslib
from dnslib.label import DNSBuffer

from ..dns import qtypes, wire
from ..dns.serial import serial_gt
from .records import Record

log = logging.getLogger(__name__)

TYPE_AXFR = 252
MAX_RECORDS = 500_000  # cap: records in one transfer (~100 B each in memory → ~50 MB worst case)
MAX_BYTES = 64 * 1024 * 1024  # cap: wire bytes read in one transfer
DEFAULT_TIMEOUT = 10.0  # seconds for one whole transfer or serial check
UDP_PAYLOAD = 1232  # EDNS size we advertise for the SOA query (flag day 2020)

_RCODE_NAMES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
                6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
_RCODE_HINTS = {5: "this host is not allowed to transfer the zone",
                9: "the primary is not authoritative for the zone",
                3: "the primary does not know the zone",
                4: "the primary does not implement zone transfers"}

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SOA_TAIL = struct.Struct("!IIIII")


class AxfrError(Exception):
    """A transfer or serial check failed; the message says which primary and why."""


# ---- primaries ------------------------------------------------------------------------------

def parse_primary(text: str, default_port: int = 53) -> tuple[str, int]:
    """``"ip"``, ``"ip:port"``, ``"[v6]"``, ``"[v6]:port"`` or a bare IPv6 → (ip, port)."""
    text = text.strip()
    port = default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"primary {text!r}: missing ']'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"primary {text!r}: expected ':port' after ']'")
            port = _port(text, rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(text, port_text)
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"primary {text!r}: {host!r} is not an IP address") from None
    return str(address), port


def _port(text: str, port_text: str) -> int:
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"primary {text!r}: bad port {port_text!r}")
    return int(port_text)


def _label(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def soa_fields(value: str) -> tuple[str, str, int, int, int, int, int]:
    """Split an SOA RDATA text into (mname, rname, serial, refresh, retry, expire, minimum)."""
    parts = value.split()
    if len(parts) != 7:
        raise ValueError(f"bad SOA RDATA {value!r}")
    return (parts[0], parts[1], *(int(p) for p in parts[2:]))  # type: ignore[return-value]


# ---- RDATA → zone-file text -------------------------------------------------------------------

_NAME_SPECIAL = frozenset(b'.\\"();@$')


def _name_text(name: bytes) -> str:
    """Wire name (uncompressed) → absolute text with the trailing dot, escaped for zone files."""
    labels = []
    i = 0
    while name[i]:
        raw = name[i + 1:i + 1 + name[i]]
        labels.append("".join(chr(b) if 33 <= b <= 126 and b not in _NAME_SPECIAL else f"\\{b:03d}"
                              for b in raw))
        i += name[i] + 1
    return ".".join(labels) + "."


def _string_text(raw: bytes) -> str:
    """One <character-string> → quoted text; '"' and '\\' escaped, non-printables as \\DDD."""
    out = ['"']
    for b in raw:
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 32 <= b <= 126:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    out.append('"')
    return "".join(out)


class _Cursor:
    """Reads fields of one RDATA inside its message (names may point back into the message)."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, start: int, end: int):
        self.data, self.pos, self.end = data, start, end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise wire.WireError("RDATA too short")
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return _U16.unpack(self.take(2))[0]

    def name(self) -> str:
        name, after = wire.read_name(self.data, self.pos)
        if after > self.end:
            raise wire.WireError("name runs past RDATA")
        self.pos = after
        return _name_text(name)

    def string(self) -> str:
        return _string_text(self.take(self.u8()))

    def rest(self) -> bytes:
        return self.take(self.end - self.pos)

    def done(self) -> None:
        if self.pos != self.end:
            raise wire.WireError("trailing bytes in RDATA")


def _fmt_a(c: _Cursor) -> str:
    return str(ipaddress.IPv4Address(c.take(4)))


def _fmt_aaaa(c: _Cursor) -> str:
    return str(ipaddress.IPv6Address(c.take(16)))


def _fmt_name(c: _Cursor) -> str:
    return c.name()


def _fmt_two_names(c: _Cursor) -> str:
    return f"{c.name()} {c.name()}"


def _fmt_pref_name(c: _Cursor) -> str:
    return f"{c.u16()} {c.name()}"


def _fmt_soa(c: _Cursor) -> str:
    mname, rname = c.name(), c.name()
    return f"{mname} {rname} " + " ".join(map(str, _SOA_TAIL.unpack(c.take(20))))


def _fmt_srv(c: _Cursor) -> str:
    return f"{c.u16()} {c.u16()} {c.u16()} {c.name()}"


def _fmt_strings(c: _Cursor) -> str:
    parts = [c.string()]
    while c.pos < c.end:
        parts.append(c.string())
    return " ".join(parts)


def _fmt_hinfo(c: _Cursor) -> str:
    return f"{c.string()} {c.string()}"


def _fmt_naptr(c: _Cursor) -> str:
    return f"{c.u16()} {c.u16()} {c.string()} {c.string()} {c.string()} {c.name()}"


def _fmt_caa(c: _Cursor) -> str:
    start = c.pos
    flags = c.u8()
    tag = c.take(c.u8())
    if not tag or not tag.isascii() or not tag.isalnum():  # RFC 8659 tags: [A-Za-z0-9]+
        c.pos = start
        return _generic(c.rest())
    return f"{flags} {tag.decode('ascii')} {_string_text(c.rest())}"


_FORMATTERS: dict[int, Callable[[_Cursor], str]] = {
    1: _fmt_a, 28: _fmt_aaaa,
    2: _fmt_name, 5: _fmt_name, 12: _fmt_name, 39: _fmt_name,  # NS CNAME PTR DNAME
    3: _fmt_name, 4: _fmt_name, 7: _fmt_name, 8: _fmt_name, 9: _fmt_name,  # MD MF MB MG MR
    15: _fmt_pref_name, 18: _fmt_pref_name, 21: _fmt_pref_name, 36: _fmt_pref_name,  # MX AFSDB RT KX
    6: _fmt_soa, 33: _fmt_srv, 35: _fmt_naptr,
    14: _fmt_two_names, 17: _fmt_two_names,  # MINFO RP
    16: _fmt_strings, 99: _fmt_strings, 13: _fmt_hinfo, 257: _fmt_caa,  # TXT SPF HINFO CAA
}

# Types whose dnslib toZone output is right (numbers, hex, base64; the names in them are
# never compressed). The value is the offset of the one name inside, checked to be plain
# letters/digits/'-'/'_'/'*' first because dnslib does not escape labels.
_DNSLIB_TYPES: dict[int, int | None] = {
    43: None, 48: None, 44: None, 52: None, 29: None,  # DS DNSKEY SSHFP TLSA LOC
    46: 18, 47: 0, 65: 2,  # RRSIG (signer) NSEC (next) HTTPS (target)
}
_PLAIN_LABEL = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*")


def _generic(raw: bytes) -> str:
    return f"\\# {len(raw)} {raw.hex().upper()}" if raw else "\\# 0"


def _via_dnslib(rtype: int, raw: bytes) -> str | None:
    name_at = _DNSLIB_TYPES[rtype]
    if name_at is not None:
        try:
            name, _ = wire.read_name(raw, name_at)
        except wire.WireError:
            return None
        i = 0
        while name[i]:
            if not _PLAIN_LABEL.issuperset(name[i + 1:i + 1 + name[i]]):
                return None
            i += name[i] + 1
    try:
        buffer = DNSBuffer(raw)
        rdata = dnslib.RDMAP[dnslib.QTYPE[rtype]].parse(buffer, len(raw))
        if buffer.offset != len(raw):
            return None
        return rdata.toZone()
    except Exception:  # dnslib raises assorted types on odd data; fall back to \#
        return None


def rdata_text(data: bytes, rr: wire.RR) -> str:
    """Zone-file text of one RR's RDATA (``rr`` located in message ``data``).

    Raises WireError when RDATA of a known type is malformed.
    """
    fmt = _FORMATTERS.get(rr.rtype)
    if fmt is not None:
        if rr.rtype in (16, 99) and rr.rdlen == 0:
            return _generic(b"")
        cursor = _Cursor(data, rr.rdata_offset, rr.end)
        text = fmt(cursor)
        cursor.done()
        return text
    raw = bytes(data[rr.rdata_offset:rr.end])
    if rr.rtype in _DNSLIB_TYPES:
        parsed = _via_dnslib(rr.rtype, raw)
        if parsed is not None:
            return parsed
    return _generic(raw)


# ---- messages ---------------------------------------------------------------------------------

def _zone_wire(zone: str) -> bytes:
    try:
        return wire.text_to_name(zone)
    except (wire.WireError, UnicodeError) as exc:
        raise ValueError(f"bad zone name {zone!r}: {exc}") from None


def _zone_label(zone_wire: bytes) -> str:
    return wire.name_to_text(zone_wire) or "."


def _build_query(qid: int, zone_wire: bytes, qtype: int, edns: bool = False) -> bytes:
    packet = wire.header(qid, 0, qd=1, ar=1 if edns else 0) + zone_wire + struct.pack("!HH", qtype, wire.CLASS_IN)
    if edns:
        packet += wire.opt_record(udp_size=UDP_PAYLOAD)
    return packet


def _check_reply(data: bytes, qid: int, zone_wire: bytes, qtype: int, where: str,
                 question_required: bool) -> tuple[int, int, int]:
    """Validate a reply's header and question. Returns (flags, answer count, answer offset)."""
    if len(data) < 12:
        raise AxfrError(f"{where}: reply shorter than a DNS header")
    rid, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", data)
    if rid != qid:
        raise AxfrError(f"{where}: reply ID {rid} does not match query ID {qid}")
    if not flags & wire.QR:
        raise AxfrError(f"{where}: reply has QR clear")
    opcode = (flags >> 11) & 0xF
    if opcode != 0:
        raise AxfrError(f"{where}: reply opcode {opcode}, expected QUERY")
    rcode = flags & 0xF
    if rcode:
        name = _RCODE_NAMES.get(rcode, str(rcode))
        hint = _RCODE_HINTS.get(rcode)
        raise AxfrError(f"{where}: primary answered {name}" + (f" ({hint})" if hint else ""))
    if qd > 1:
        raise AxfrError(f"{where}: reply has {qd} questions")
    offset = 12
    if qd == 1:
        try:
            qname, offset = wire.read_name(data, offset)
        except wire.WireError as exc:
            raise AxfrError(f"{where}: bad question: {exc}") from None
        if offset + 4 > len(data):
            raise AxfrError(f"{where}: truncated question")
        rtype, rclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        if qname != zone_wire or rtype != qtype or rclass != wire.CLASS_IN:
            raise AxfrError(f"{where}: reply question {_zone_label(qname)} type {rtype} class {rclass} "
                            f"does not match the query")
    elif question_required:
        raise AxfrError(f"{where}: reply has no question")
    return flags, an, offset


async def _read_message(reader: asyncio.StreamReader, where: str, budget: int) -> bytes:
    try:
        length = _U16.unpack(await reader.readexactly(2))[0]
        if length > budget:
            raise AxfrError(f"{where}: transfer exceeds the byte cap")
        if length < 12:
            raise AxfrError(f"{where}: {length}-byte message is shorter than a DNS header")
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise AxfrError(f"{where}: connection closed before the closing SOA") from None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (OSError, asyncio.CancelledError):
        pass


# ---- AXFR ---------------------------------------------------------------------------------------

async def axfr(zone: str, primary: str, port: int = 53, timeout: float = DEFAULT_TIMEOUT,
               max_records: int = MAX_RECORDS, max_bytes: int = MAX_BYTES) -> list[Record]:
    """Transfer ``zone`` from ``primary`` (an IP address) over TCP.

    Returns the zone's records in the order sent, starting with its SOA, without the closing
    SOA. Raises :class:`AxfrError` on any failure (refused, malformed, caps, timeout, network).
    """
    zone_wire = _zone_wire(zone)
    where = f"AXFR of {_zone_label(zone_wire)} from {_label(primary, port)}"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(primary, port)
            try:
                return await _transfer(reader, writer, zone_wire, where, max_records, max_bytes)
            finally:
                await _close(writer)
    except TimeoutError:
        raise AxfrError(f"{where}: timed out after {timeout:g} s") from None
    except OSError as exc:
        raise AxfrError(f"{where}: {exc.strerror or exc}") from None


async def _transfer(reader, writer, zone_wire: bytes, where: str, max_records: int,
                    max_bytes: int) -> list[Record]:
    qid = secrets.randbelow(65536)
    query = _build_query(qid, zone_wire, TYPE_AXFR)
    writer.write(_U16.pack(len(query)) + query)
    await writer.drain()
    records: list[Record] = []
    soa_rdata: bytes | None = None
    received = 0
    first = True
    while True:
        message = await _read_message(reader, where, max_bytes - received - 2)
        received += 2 + len(message)
        _flags, an, offset = _check_reply(message, qid, zone_wire, TYPE_AXFR, where, question_required=False)
        if first and an == 0:
            raise AxfrError(f"{where}: first reply has no records")
        try:
            rrs, _ = wire.read_rrs(message, offset, an)
        except wire.WireError as exc:
            raise AxfrError(f"{where}: malformed reply: {exc}") from None
        for index, rr in enumerate(rrs):
            if rr.rclass != wire.CLASS_IN:
                raise AxfrError(f"{where}: record of class {rr.rclass}, expected IN")
            if not wire.is_subdomain(rr.owner, zone_wire):
                raise AxfrError(f"{where}: record owner {_zone_label(rr.owner)} is outside the zone")
            if rr.rtype == wire.TYPE_SOA and rr.owner == zone_wire:
                try:
                    rdata = wire.rdata_uncompressed(message, rr)
                except wire.WireError as exc:
                    raise AxfrError(f"{where}: bad SOA: {exc}") from None
                if soa_rdata is not None:  # the closing SOA
                    if rdata[-20:-16] != soa_rdata[-20:-16]:
                        raise AxfrError(f"{where}: SOA serial changed during the transfer")
                    if index != len(rrs) - 1:
                        raise AxfrError(f"{where}: records after the closing SOA")
                    return records
                soa_rdata = rdata
            elif soa_rdata is None:
                raise AxfrError(f"{where}: transfer does not start with the zone's SOA")
            if len(records) >= max_records:
                raise AxfrError(f"{where}: more than {max_records} records (record cap)")
            try:
                value = rdata_text(message, rr)
            except wire.WireError as exc:
                raise AxfrError(f"{where}: bad {qtypes.name(rr.rtype)} RDATA at "
                                f"{_zone_label(rr.owner)}: {exc}") from None
            ttl = rr.ttl if rr.ttl < 0x80000000 else 0  # RFC 2181 §8
            records.append(Record(wire.name_to_text(rr.owner), qtypes.name(rr.rtype), ttl, value))
        first = False


# ---- SOA serial check -------------------------------------------------------------------------

class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        self.error: Exception | None = None

    def datagram_received(self, data, addr) -> None:
        if not self.queue.full():
            self.queue.put_nowait(data)

    def error_received(self, exc) -> None:  # ICMP port unreachable etc.
        self.error = exc
        if not self.queue.full():
            self.queue.put_nowait(b"")


def _soa_serial(data: bytes, zone_wire: bytes, an: int, offset: int, where: str) -> int:
    try:
        rrs, _ = wire.read_rrs(data, offset, an)
    except wire.WireError as exc:
        raise AxfrError(f"{where}: malformed reply: {exc}") from None
    for rr in rrs:
        if rr.rtype == wire.TYPE_SOA and rr.owner == zone_wire and rr.rclass == wire.CLASS_IN:
            try:
                rdata = wire.rdata_uncompressed(data, rr)
            except wire.WireError as exc:
                raise AxfrError(f"{where}: bad SOA: {exc}") from None
            return _U32.unpack_from(rdata, len(rdata) - 20)[0]
    raise AxfrError(f"{where}: no SOA for the zone in the answer")


async def query_soa_serial(zone: str, primary: str, port: int = 53,
                           timeout: float = DEFAULT_TIMEOUT) -> int:
    """The zone's SOA serial as ``primary`` serves it (authoritative answers only).

    UDP first (re-sent a few times within ``timeout``), TCP when the answer is truncated.
    Replies with a foreign ID or question are ignored, as a resolver would. Raises AxfrError.
    """
    zone_wire = _zone_wire(zone)
    where = f"SOA query for {_zone_label(zone_wire)} to {_label(primary, port)}"
    try:
        async with asyncio.timeout(timeout):
            data, an, offset = await _soa_udp(zone_wire, primary, port, timeout, where)
            if data is None:
                data, an, offset = await _soa_tcp(zone_wire, primary, port, where)
    except TimeoutError:
        raise AxfrError(f"{where}: timed out after {timeout:g} s") from None
    except OSError as exc:
        raise AxfrError(f"{where}: {exc.strerror or exc}") from None
    return _soa_serial(data, zone_wire, an, offset, where)


def _authoritative(flags: int, where: str) -> None:
    if not flags & wire.AA:
        raise AxfrError(f"{where}: answer is not authoritative (AA clear)")


async def _soa_udp(zone_wire: bytes, primary: str, port: int, timeout: float, where: str):
    """(reply, answer count, answer offset), or (None, 0, 0) when the reply was truncated."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Datagrams, remote_addr=(primary, port))
    try:
        qid = secrets.randbelow(65536)
        query = _build_query(qid, zone_wire, wire.TYPE_SOA, edns=True)
        interval = max(timeout / 3, 0.2)
        while True:
            transport.sendto(query)
            deadline = loop.time() + interval
            while (left := deadline - loop.time()) > 0:
                try:
                    data = await asyncio.wait_for(proto.queue.get(), left)
                except TimeoutError:
                    break
                if not data:
                    if proto.error is not None:
                        raise proto.error
                    continue
                if len(data) < 12 or data[:2] != query[:2] or not data[2] & 0x80:
                    continue  # not a reply to our query: keep waiting for ours
                flags, an, offset = _check_reply(data, qid, zone_wire, wire.TYPE_SOA, where,
                                                 question_required=True)
                if flags & wire.TC:
                    return None, 0, 0
                _authoritative(flags, where)
                return data, an, offset
    finally:
        transport.close()


async def _soa_tcp(zone_wire: bytes, primary: str, port: int, where: str):
    reader, writer = await asyncio.open_connection(primary, port)
    try:
        qid = secrets.randbelow(65536)
        query = _build_query(qid, zone_wire, wire.TYPE_SOA)
        writer.write(_U16.pack(len(query)) + query)
        await writer.drain()
        try:
            length = _U16.unpack(await reader.readexactly(2))[0]
            data = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise AxfrError(f"{where}: TCP connection closed before the answer") from None
        flags, an, offset = _check_reply(data, qid, zone_wire, wire.TYPE_SOA, where, question_required=True)
        _authoritative(flags, where)
        return data, an, offset
    finally:
        await _close(writer)


# ---- the refresh schedule -------------------------------------------------------------------

class SecondaryZone:
    """One secondary zone: its data, serial and refresh schedule (RFC 1034 §4.3.5).

    Pure bookkeeping around an injected ``clock`` (seconds, monotonic) plus
    :meth:`refresh_once`, the only method that touches the network. Times are clock values.

    * Before the first successful transfer the zone has no data, answers SERVFAIL, and is due
      at once; a failed attempt is retried after ``first_retry`` seconds.
    * After a transfer or a check that finds the serial unchanged: next check after REFRESH,
      data valid until now + EXPIRE.
    * After a failed check: next check after RETRY; the expire deadline does not move.
    * Once the deadline passes, :meth:`expired` is True (serve SERVFAIL) and the next
      successful check transfers the zone again whatever the serial.

    SOA timers are clamped to [min_interval, max_interval] and EXPIRE to at least
    REFRESH + RETRY, so a hostile or careless primary cannot make us spin or never look again.
    """

    def __init__(self, zone: str, primaries: Iterable[str], *, clock: Callable[[], float] = time.monotonic,
                 timeout: float = DEFAULT_TIMEOUT, max_records: int = MAX_RECORDS,
                 max_bytes: int = MAX_BYTES, first_retry: float = 30.0,
                 min_interval: float = 30.0, max_interval: float = 2_419_200.0):
        self.zone_wire = _zone_wire(zone)
        self.zone = wire.name_to_text(self.zone_wire)
        self.primaries = [parse_primary(p) for p in primaries]
        if not self.primaries:
            raise ValueError(f"secondary zone {zone!r} needs at least one primary")
        self.clock = clock
        self.timeout = timeout
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.first_retry = first_retry
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.records: list[Record] | None = None
        self.serial: int | None = None
        self.refresh = self.retry = first_retry
        self.expire: float | None = None
        self.next_check = clock()
        self.expires_at: float | None = None
        self.last_error: str | None = None

    # -- pure schedule --

    def _now(self, now: float | None) -> float:
        return self.clock() if now is None else now

    def _clamp(self, seconds: int) -> float:
        return float(min(max(seconds, self.min_interval), self.max_interval))

    def load(self, records: list[Record], now: float | None = None) -> None:
        """Adopt a transferred copy; its first record must be the zone's SOA."""
        if not records or records[0].type != "SOA" or records[0].name != self.zone:
            raise ValueError(f"zone {self.zone or '.'}: records must start with its SOA")
        _, _, serial, refresh, retry, expire, _ = soa_fields(records[0].value)
        self.records = records
        self.serial = serial
        self.refresh = self._clamp(refresh)
        self.retry = self._clamp(retry)
        self.expire = max(float(expire), self.refresh + self.retry)
        self.checked(now)

    def checked(self, now: float | None = None) -> None:
        """A check reached a primary and our copy is current: wait REFRESH, renew EXPIRE."""
        now = self._now(now)
        self.last_error = None
        self.next_check = now + self.refresh
        if self.expire is not None:
            self.expires_at = now + self.expire

    def failed(self, error: str, now: float | None = None) -> None:
        """No primary could be checked or transferred: try again after RETRY."""
        self.last_error = error
        self.next_check = self._now(now) + (self.retry if self.serial is not None else self.first_retry)

    def due(self, now: float | None = None) -> bool:
        return self._now(now) >= self.next_check

    def seconds_until_check(self, now: float | None = None) -> float:
        return max(0.0, self.next_check - self._now(now))

    def expired(self, now: float | None = None) -> bool:
        """True when there is no usable copy: never loaded, or EXPIRE passed (→ SERVFAIL)."""
        return self.expires_at is None or self._now(now) >= self.expires_at

    def should_transfer(self, remote_serial: int, now: float | None = None) -> bool:
        """Transfer when we hold nothing usable or the primary's serial is newer (RFC 1982)."""
        return self.serial is None or self.expired(now) or serial_gt(remote_serial, self.serial)

    # -- network --

    async def refresh_once(self) -> list[Record] | None:
        """Check the primaries in order; transfer from the first with a newer serial.

        Returns the new records (also kept in ``self.records``), or None when our copy is
        current. Raises AxfrError (after scheduling a retry) when every primary failed.
        """
        errors = []
        for host, port in self.primaries:
            try:
                if self.serial is not None and not self.expired():
                    remote = await query_soa_serial(self.zone, host, port, self.timeout)
                    if not self.should_transfer(remote):
                        if remote != self.serial:
                            log.warning("zone %s: primary %s has serial %d, older than ours (%d)",
                                        self.zone, _label(host, port), remote, self.serial)
                        self.checked()
                        return None
                records = await axfr(self.zone, host, port, self.timeout, self.max_records, self.max_bytes)
            except AxfrError as exc:
                log.warning("zone %s: %s", self.zone, exc)
                errors.append(str(exc))
                continue
            serial = soa_fields(records[0].value)[2]
            if self.serial is not None and not self.expired() and not serial_gt(serial, self.serial):
                self.checked()  # the primary went back between the SOA query and the AXFR
                return None
            self.load(records)
            log.info("zone %s: transferred serial %d (%d records) from %s",
                     self.zone, serial, len(records), _label(host, port))
            return records
        message = "; ".join(errors)
        self.failed(message)
        raise AxfrError(f"zone {self.zone or '.'}: every primary failed: {message}")
