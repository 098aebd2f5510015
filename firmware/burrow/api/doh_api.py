"""DNS over HTTPS (RFC 8484) at ``/dns-query``, and its JSON form.

- ``GET /dns-query?dns=<base64url, no padding>`` and ``POST /dns-query`` with an
  ``application/dns-message`` body: the DNS message in, the reply as ``application/dns-message``.
- ``GET /dns-query?name=&type=[&do=&cd=]``: the JSON form the public resolvers offer
  (``application/dns-json``: Status, TC, RD, RA, AD, CD, Question, Answer, Authority).

Each message goes the way a UDP or TCP query goes (``DnsServer.answer``: the fast path, then
the chain: access list, rate limit, client groups), with the HTTP peer as the client.
``Cache-Control: max-age`` is the smallest TTL of the answer section (of the authority's SOA for
a negative answer, RFC 2308). Served over HTTPS (the TLS service's listener); over plain HTTP
only to a client on this machine (a reverse proxy that terminates TLS in front), else 403.
No per-address API limiter: DNS has its own rate limit (the guard stage), and a browser's
DoH makes many requests.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import TYPE_CHECKING, Any

import ujson
from dnslib import QTYPE, DNSRecord
from microdot import Response

from ..dns import qtypes
from ..dns.names import BadName, normalize
from .errors import ApiError, ValidationError
from .routes import DOH_PATH, Api, client_ip, is_loopback
from .schema import Bool, Query, Str, any_case, domain_name

if TYPE_CHECKING:
    from ..resolver import Resolver

DNS_MESSAGE = "application/dns-message"
DNS_JSON = "application/dns-json"
MAX_MESSAGE = 65535  # a DNS message's largest size (its TCP length prefix is 16 bits)
MIN_MESSAGE = 12  # a header
JSON_EDNS_SIZE = 1232  # the EDNS size of a query made for the JSON form (DNS flag day 2020)

DohQuery = Query({
    "dns": Str(required=False, max_len=8192, pattern="^[A-Za-z0-9_-]*=*$",
               description="the DNS query, base64url without padding (RFC 8484 §4.1)"),
    "name": domain_name(required=False, description="JSON form: the name to look up"),
    "type": Str(required=False, max_len=10, default="A", pattern=any_case(*sorted(qtypes.NAMES), "TYPE")[:-2] + "|[0-9]{1,5})$",
                description="JSON form: the query type, a name (A, AAAA, …) or a number"),
    "do": Bool(required=False, default=False, description="JSON form: ask for DNSSEC records (the DO bit)"),
    "cd": Bool(required=False, default=False, description="JSON form: checking disabled (the CD bit)"),
    "ct": Str(required=False, max_len=64, description="JSON form: the answer's content type (accepted, ignored)"),
})


def decode_dns_param(text: str) -> bytes:
    """The ``dns`` parameter: base64url, padding optional."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValidationError([("dns", "is not base64url")]) from None


def json_query(name: str, qtype: int, do: bool, cd: bool) -> bytes:
    """A query message for the JSON form: ID 0, RD, CD if asked, EDNS with DO if asked."""
    flags = 0x0100 | (0x0010 if cd else 0)
    header = struct.pack("!HHHHHH", 0, flags, 1, 0, 0, 1 if do else 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label) + b"\x00"
    message = header + qname + struct.pack("!HH", qtype, 1)
    if do:
        message += b"\x00" + struct.pack("!HHIH", 41, JSON_EDNS_SIZE, 0x8000, 0)
    return message


def max_age(reply: Any) -> int:
    """RFC 8484 §5.1: the answer's smallest TTL; for a negative answer the SOA's (min of its
    TTL and MINIMUM, RFC 2308 §5); 0 when there is neither."""
    ttls = [rr.ttl for rr in reply.rr if rr.rtype != QTYPE.OPT]
    if ttls:
        return min(ttls)
    for rr in reply.auth:
        if rr.rtype == QTYPE.SOA:
            return min(rr.ttl, rr.rdata.times[-1])
    return 0


def _records(rrs: list[Any]) -> list[dict[str, Any]]:
    return [{"name": str(rr.rname), "type": rr.rtype, "TTL": rr.ttl, "data": rr.rdata.toZone()}
            for rr in rrs if rr.rtype != QTYPE.OPT]


def json_answer(reply: Any) -> dict[str, Any]:
    """The JSON form of a reply, as Google's and Cloudflare's resolvers answer it."""
    h = reply.header
    out: dict[str, Any] = {
        "Status": h.rcode, "TC": bool(h.tc), "RD": bool(h.rd), "RA": bool(h.ra), "AD": bool(h.ad),
        "CD": bool(h.cd), "Question": [{"name": str(q.qname), "type": q.qtype} for q in reply.questions],
    }
    if reply.rr:
        out["Answer"] = _records(reply.rr)
    if reply.auth:
        out["Authority"] = _records(reply.auth)
    return out


def register(api: Api, *, resolver: Resolver) -> None:
    server = resolver.server
    common = {400: "not a DNS query (details name the parameter)",
              403: "plain HTTP from another machine: DNS over HTTPS is served over HTTPS"}

    def admit(req) -> tuple[str, int]:
        ip = client_ip(req)
        if req.scheme != "https" and not is_loopback(ip):
            raise ApiError(403, "DNS over HTTPS is served over HTTPS (plain HTTP only from this machine, "
                                "for a reverse proxy)")
        return ip, req.client_addr[1] if req.client_addr else 0

    async def ask(req, message: bytes, field: str) -> bytes:
        peer = admit(req)
        if len(message) < MIN_MESSAGE:
            raise ValidationError([(field, "the DNS message is shorter than a header")])
        reply = await server.answer(message, peer, "doh")
        if reply is None:
            raise ValidationError([(field, "the DNS message was not answered (not a query, or over the rate limit)")])
        return reply

    async def wire_answer(req, message: bytes, field: str) -> Response:
        reply = await ask(req, message, field)
        try:
            age = max_age(DNSRecord.parse(reply))
        except Exception:  # a reply we made ourselves; if dnslib cannot read it, do not cache
            age = 0
        return Response(reply, 200, {"Content-Type": DNS_MESSAGE, "Cache-Control": f"max-age={age}"})

    @api.route("GET", DOH_PATH, role="public", static=True, tags=["dns"], query=DohQuery, raw_response=True,
               summary="DNS over HTTPS (RFC 8484): a query as ?dns=, or the JSON form ?name=&type=",
               responses={200: "application/dns-message (dns=), or application/dns-json (name=)", **common})
    async def doh_get(req):
        admit(req)
        q = req.g.query
        if q.get("dns") is not None:
            return await wire_answer(req, decode_dns_param(q["dns"]), "dns")
        if not q.get("name"):
            raise ValidationError([("dns", "give dns= (RFC 8484) or name= (the JSON form)")])
        try:
            name = normalize(q["name"])
        except BadName as e:
            raise ValidationError([("name", str(e))]) from None
        qtype_text = q.get("type") or "A"
        qtype = int(qtype_text) if qtype_text.isdigit() else qtypes.number(qtype_text)
        if not 0 < qtype <= qtypes.MAX_TYPE:
            raise ValidationError([("type", "must be 1-65535")])
        reply_bytes = await ask(req, json_query(name, qtype, bool(q.get("do")), bool(q.get("cd"))), "name")
        reply = DNSRecord.parse(reply_bytes)
        body = ujson.dumps(json_answer(reply), ensure_ascii=False, escape_forward_slashes=False).encode()
        return Response(body, 200, {"Content-Type": DNS_JSON, "Cache-Control": f"max-age={max_age(reply)}"})

    @api.route("POST", DOH_PATH, role="public", static=True, tags=["dns"], raw_response=True, body_media=DNS_MESSAGE,
               summary="DNS over HTTPS (RFC 8484): the query as an application/dns-message body",
               responses={200: "application/dns-message", **common,
                          413: f"the body is over {MAX_MESSAGE} bytes",
                          415: f"the body must be {DNS_MESSAGE}"})
    async def doh_post(req):
        admit(req)
        ctype = (req.content_type or "").split(";")[0].strip().lower()
        if ctype != DNS_MESSAGE:
            raise ApiError(415, f"send the DNS message as {DNS_MESSAGE}", error="Unsupported Media Type")
        if req.content_length > MAX_MESSAGE:
            raise ApiError(413, f"a DNS message is at most {MAX_MESSAGE} bytes")
        return await wire_answer(req, req.body or b"", "body")
