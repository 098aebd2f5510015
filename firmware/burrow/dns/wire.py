"""Zero-copy helpers on raw DNS packets (RFC 1035, RFC 6891 EDNS, RFC 8914 EDE).

The fast path and the forwarder work on bytes: they read header fields and the question
straight from the packet, patch IDs and TTLs in place, and never build dnslib objects. Every
reader here checks bounds and raises :class:`WireError` on malformed input; nothing else may
escape from a parse.
"""

from __future__ import annotations

import struct

# Header flag bits (second and third bytes of the header as one 16-bit word).
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
RA = 0x0080
AD = 0x0020
CD = 0x0010

NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
BADVERS = 16  # extended rcode: upper 8 bits go in the OPT record

# Type and class numbers live in qtypes.py; re-exported so wire.TYPE_A reads as it always has.
# (``X as X``: an explicit re-export, for type checkers.)
from .qtypes import (CLASS_ANY as CLASS_ANY, CLASS_CH as CLASS_CH, CLASS_IN as CLASS_IN,  # noqa: E402
                     TYPE_A as TYPE_A, TYPE_AAAA as TYPE_AAAA, TYPE_ANY as TYPE_ANY, TYPE_AXFR as TYPE_AXFR,
                     TYPE_CNAME as TYPE_CNAME, TYPE_DNAME as TYPE_DNAME, TYPE_DNSKEY as TYPE_DNSKEY,
                     TYPE_DS as TYPE_DS, TYPE_HINFO as TYPE_HINFO, TYPE_IXFR as TYPE_IXFR,
                     TYPE_MAILA as TYPE_MAILA, TYPE_MAILB as TYPE_MAILB, TYPE_MX as TYPE_MX, TYPE_NS as TYPE_NS,
                     TYPE_NSEC as TYPE_NSEC, TYPE_NSEC3 as TYPE_NSEC3, TYPE_OPT as TYPE_OPT,
                     TYPE_PTR as TYPE_PTR, TYPE_RRSIG as TYPE_RRSIG, TYPE_SOA as TYPE_SOA, TYPE_SRV as TYPE_SRV,
                     TYPE_TKEY as TYPE_TKEY, TYPE_TSIG as TYPE_TSIG, TYPE_TXT as TYPE_TXT)

EDNS_UDP_MAX = 1232  # DNS flag day 2020: the largest UDP answer we send (avoids fragmentation)
PLAIN_UDP_MAX = 512  # RFC 1035 limit for clients without EDNS
OPT_EDE = 15  # RFC 8914 option code

# Extended DNS Error codes we use (RFC 8914).
EDE_OTHER, EDE_STALE_ANSWER, EDE_BLOCKED, EDE_FILTERED, EDE_PROHIBITED = 0, 3, 15, 17, 18
EDE_NOT_READY, EDE_NO_REACHABLE_AUTHORITY, EDE_NETWORK_ERROR = 14, 22, 23
EDE_NOT_SUPPORTED, EDE_INVALID_QUERY_TYPE = 21, 30  # RFC 8914; 30 from RFC 9824

# Types whose RDATA may hold compressed names (RFC 3597 §4: only the well-known ones).
_NAME_RDATA = {TYPE_NS: 0, TYPE_CNAME: 0, TYPE_PTR: 0, TYPE_DNAME: 0, 3: 0, 4: 0, 7: 0, 8: 0, 9: 0,
               TYPE_MX: 2, TYPE_SRV: 6}

_H = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")


class WireError(ValueError):
    """The packet is malformed. ``rcode`` says how to answer it (FORMERR unless set)."""

    def __init__(self, message: str, rcode: int = FORMERR):
        super().__init__(message)
        self.rcode = rcode


# ---- reading ----------------------------------------------------------------------------------

def question_end(data: bytes, offset: int = 12) -> int:
    """Offset just past the QNAME starting at ``offset`` (uncompressed, as queries carry it)."""
    n = len(data)
    i = offset
    total = 0
    while True:
        if i >= n:
            raise WireError("question name runs past the packet")
        length = data[i]
        if length == 0:
            return i + 1
        if length > 63:
            raise WireError("compressed or invalid label in question")
        i += length + 1
        total += length + 1
        if total > 254:
            raise WireError("question name longer than 255 octets")


def read_name(data: bytes, offset: int) -> tuple[bytes, int]:
    """Decode a possibly compressed name at ``offset``.

    Returns (name in lower-case wire form without compression, offset just past the name in
    the original data). Loops and forward pointers are refused.
    """
    n = len(data)
    out = bytearray()
    i = offset
    end = -1
    hops = 0
    while True:
        if i >= n:
            raise WireError("name runs past the packet")
        length = data[i]
        if length >= 0xC0:
            if i + 1 >= n:
                raise WireError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[i + 1]
            if end < 0:
                end = i + 2
            if target >= i or hops > 64:
                raise WireError("bad compression pointer")
            hops += 1
            i = target
            continue
        if length > 63:
            raise WireError("invalid label type")
        if length == 0:
            out.append(0)
            if len(out) > 255:
                raise WireError("name longer than 255 octets")
            return bytes(out).lower(), (end if end >= 0 else i + 1)
        if i + 1 + length > n:
            raise WireError("label runs past the packet")
        out += data[i:i + 1 + length]
        if len(out) > 255:
            raise WireError("name longer than 255 octets")
        i += length + 1


def is_subdomain(name: bytes, zone: bytes) -> bool:
    """True when wire name ``name`` equals ``zone`` or lies below it (label-bounded)."""
    if zone == b"\x00" or name == zone:
        return True
    if not name.endswith(zone):
        return False
    i = 0
    cut = len(name) - len(zone)
    while i < cut:  # walk label boundaries: the suffix must start exactly on one
        i += name[i] + 1
    return i == cut


# Label bytes shown as they are in presentation format: printable ASCII but '.' and '\\'.
_PLAIN_LABEL_BYTES = bytes(b for b in range(33, 127) if b not in (46, 92))


def name_to_text(wire_name: bytes) -> str:
    """Wire-form name → dotted text without the trailing dot ("" for the root).

    Bytes outside printable ASCII and the characters '.' and '\\' inside labels are escaped
    as \\DDD (RFC 1035 presentation format), so a label holding a dot stays one label.
    """
    labels = []
    i = 0
    while i < len(wire_name):
        length = wire_name[i]
        if length == 0:
            break
        raw = wire_name[i + 1:i + 1 + length]
        if not raw.translate(None, _PLAIN_LABEL_BYTES):  # nothing left once plain bytes go
            labels.append(raw.decode("ascii"))
        else:
            labels.append("".join(chr(b) if 33 <= b <= 126 and b not in (46, 92) else f"\\{b:03d}"
                                  for b in raw))
        i += length + 1
    return ".".join(labels)


def text_to_name(text: str) -> bytes:
    """Dotted text → lower-case wire form. Raises WireError on empty or long labels."""
    text = text.strip().rstrip(".")
    if not text:
        return b"\x00"
    out = bytearray()
    for label in text.split("."):
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not raw or len(raw) > 63:
            raise WireError(f"bad label {label!r} in {text!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise WireError(f"name too long: {text!r}")
    return bytes(out).lower()


class Edns:
    """The OPT record of a query: advertised UDP size, version, DO bit, raw options."""

    __slots__ = ("udp_size", "version", "do", "ext_rcode", "options")

    def __init__(self, udp_size: int, version: int, do: bool, ext_rcode: int, options: bytes):
        self.udp_size = udp_size
        self.version = version
        self.do = do
        self.ext_rcode = ext_rcode
        self.options = options

    def option(self, code: int) -> bytes | None:
        """The first option ``code``'s data, or None."""
        opts, i = self.options, 0
        while i + 4 <= len(opts):
            c, ln = struct.unpack_from("!HH", opts, i)
            if c == code:
                return opts[i + 4:i + 4 + ln]
            i += 4 + ln
        return None


class RR:
    """One resource record located in a packet (offsets refer to that packet)."""

    __slots__ = ("owner", "rtype", "rclass", "ttl", "ttl_offset", "rdata_offset", "rdlen", "start", "end")

    def __init__(self, owner: bytes, rtype: int, rclass: int, ttl: int, ttl_offset: int, rdata_offset: int,
                 rdlen: int, start: int, end: int) -> None:
        self.owner = owner
        self.rtype = rtype
        self.rclass = rclass
        self.ttl = ttl
        self.ttl_offset = ttl_offset
        self.rdata_offset = rdata_offset
        self.rdlen = rdlen
        self.start = start
        self.end = end


def read_rrs(data: bytes, offset: int, count: int) -> tuple[list[RR], int]:
    """Walk ``count`` RRs from ``offset``; returns them and the offset after the last."""
    rrs = []
    n = len(data)
    for _ in range(count):
        start = offset
        owner, offset = read_name(data, offset)
        if offset + 10 > n:
            raise WireError("truncated resource record")
        rtype, rclass, ttl, rdlen = _RR.unpack_from(data, offset)
        rdata = offset + 10
        end = rdata + rdlen
        if end > n:
            raise WireError("RDATA runs past the packet")
        rrs.append(RR(owner, rtype, rclass, ttl, offset + 4, rdata, rdlen, start, end))
        offset = end
    return rrs, offset


def rdata_uncompressed(data: bytes, rr: RR) -> bytes:
    """RDATA with any embedded names decompressed (for re-encoding an RR elsewhere)."""
    if rr.rtype in _NAME_RDATA:
        fixed = _NAME_RDATA[rr.rtype]
        name, after = read_name(data, rr.rdata_offset + fixed)
        if after != rr.end:
            raise WireError("trailing bytes after name in RDATA")
        return data[rr.rdata_offset:rr.rdata_offset + fixed] + name
    if rr.rtype == TYPE_SOA:
        mname, i = read_name(data, rr.rdata_offset)
        rname, i = read_name(data, i)
        if i + 20 != rr.end:
            raise WireError("bad SOA RDATA length")
        return mname + rname + data[i:i + 20]
    return data[rr.rdata_offset:rr.end]


def rdata_name(data: bytes, rr: RR) -> bytes:
    """The (decompressed, lower-case) name inside a CNAME/DNAME/NS/PTR record."""
    return read_name(data, rr.rdata_offset)[0]


def rrsig_covered(data: bytes, rr: RR) -> int:
    """The type an RRSIG covers (RFC 4034 §3.1.1); 0 when its RDATA is too short to say."""
    return _U16.unpack_from(data, rr.rdata_offset)[0] if rr.rdlen >= 18 else 0


def rrsig_signer(data: bytes, rr: RR) -> bytes:
    """The signer's name in an RRSIG: the zone that made the signature (RFC 4034 §3.1.7)."""
    if rr.rdlen < 19:
        raise WireError("RRSIG RDATA too short")
    name, end = read_name(data, rr.rdata_offset + 18)
    if end > rr.end:
        raise WireError("RRSIG signer runs past its RDATA")
    return name


class ParsedQuery:
    """What the slow path needs from a query packet, validated."""

    __slots__ = ("id", "flags", "qname", "question", "qtype", "qclass", "qend", "edns")

    def __init__(self, id: int, flags: int, qname: bytes, question: bytes, qtype: int, qclass: int, qend: int,
                 edns: Edns | None) -> None:
        self.id = id
        self.flags = flags
        self.qname = qname  # lower-case wire form
        self.question = question  # the question bytes exactly as sent (case kept)
        self.qtype = qtype
        self.qclass = qclass
        self.qend = qend
        self.edns = edns


class Drop(Exception):
    """The packet must be silently dropped (a response, or too short to answer)."""


def parse_query(data: bytes) -> ParsedQuery:
    """Validate a query packet and return its parts.

    Raises Drop for packets that must not be answered (QR set, shorter than a header) and
    WireError (with the rcode to answer: FORMERR, NOTIMP, BADVERS) for the rest.
    """
    if len(data) < 12:
        raise Drop("shorter than a DNS header")
    qid, flags, qd, an, ns, ar = _H.unpack_from(data)
    if flags & QR:
        raise Drop("response sent to the server")
    opcode = (flags >> 11) & 0xF
    if opcode != 0:
        raise WireError(f"opcode {opcode} not implemented", NOTIMP)
    if qd != 1:
        raise WireError(f"QDCOUNT is {qd}, expected 1")
    qname_end = question_end(data, 12)
    qend = qname_end + 4
    if qend > len(data):
        raise WireError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, qname_end)
    edns = None
    offset = qend
    if an or ns or ar:
        _, offset = read_rrs(data, offset, an + ns)
        opts = 0
        for _ in range(ar):
            owner, offset = read_name(data, offset)
            if offset + 10 > len(data):
                raise WireError("truncated additional record")
            rtype, rclass, ttl, rdlen = _RR.unpack_from(data, offset)
            rdata = offset + 10
            offset = rdata + rdlen
            if offset > len(data):
                raise WireError("truncated additional record")
            if rtype == TYPE_OPT:
                opts += 1
                if opts > 1:
                    raise WireError("more than one OPT record")
                if owner != b"\x00":
                    raise WireError("OPT owner is not the root")
                edns = Edns(max(rclass, PLAIN_UDP_MAX), (ttl >> 16) & 0xFF, bool(ttl & 0x8000),
                            ttl >> 24, bytes(data[rdata:offset]))
    if offset != len(data):
        raise WireError("trailing bytes after the last record")
    if edns is not None and edns.version > 0:
        raise WireError(f"EDNS version {edns.version} not supported", BADVERS)
    return ParsedQuery(qid, flags, bytes(data[12:qname_end]).lower(), bytes(data[12:qend]),
                       qtype, qclass, qend, edns)


# ---- writing ----------------------------------------------------------------------------------

def opt_record(do: bool = False, ede: tuple[int, str] | None = None, ext_rcode: int = 0,
               udp_size: int = EDNS_UDP_MAX) -> bytes:
    """Our OPT pseudo-record: advertised size, DO echoed, optional Extended DNS Error."""
    rdata = b""
    if ede is not None:
        code, extra = ede
        payload = _U16.pack(code) + extra.encode("utf-8", "replace")[:200]
        rdata = struct.pack("!HH", OPT_EDE, len(payload)) + payload
    ttl = (ext_rcode << 24) | (0x8000 if do else 0)
    return b"\x00" + _RR.pack(TYPE_OPT, udp_size, ttl, len(rdata)) + rdata


def header(qid: int, flags: int, qd: int = 1, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return _H.pack(qid, flags, qd, an, ns, ar)


def response_flags(query_flags: int, rcode: int, aa: bool = False, ra: bool = True,
                   ad: bool | int = False) -> int:
    """Reply flags to a QUERY: QR set, RD and CD copied from the query, RCODE's low 4 bits
    (``ad`` is read for its truth: a flag word's AD bit will do)."""
    flags = QR | (query_flags & (RD | CD)) | (rcode & 0xF)
    if aa:
        flags |= AA
    if ra:
        flags |= RA
    if ad:
        flags |= AD
    return flags


def build_rr(owner: bytes, rtype: int, rclass: int, ttl: int, rdata: bytes) -> bytes:
    return owner + _RR.pack(rtype, rclass, ttl, len(rdata)) + rdata


def txt_rdata(*strings: str) -> bytes:
    out = bytearray()
    for s in strings:
        raw = s.encode("utf-8")[:255]
        out.append(len(raw))
        out += raw
    return bytes(out)


def with_counts(packet: bytes, an: int, ns: int, ar: int) -> bytes:
    return packet[:6] + struct.pack("!HHH", an, ns, ar) + packet[12:]


def patch_ttls(body: bytes, offsets: tuple[int, ...], ttls: tuple[int, ...], age: int) -> bytes:
    """Copy of ``body`` with each TTL at ``offsets`` set to its original minus ``age`` (≥ 0)."""
    buf = bytearray(body)
    for off, ttl in zip(offsets, ttls):
        _U32.pack_into(buf, off, ttl - age if ttl > age else 0)
    return bytes(buf)


