"""Content codings of API answers: which one the client takes (``Accept-Encoding``, RFC 9110
§12.5.3) and the gzip of large JSON.

Only gzip is offered. A JSON answer of at least ``GZIP_MIN_BYTES`` is gzipped when the request's
``Accept-Encoding`` takes gzip; smaller ones gain little (the gzip header alone is 18 bytes) and
cost a compression each. ``GZIP_LEVEL`` was chosen by measuring a 100 KB ``/api/queries`` page
(docs/benchmarks.md, "API JSON compression"): level 1 costs a fraction of level 6 or 9 for a few
percent more bytes, and the board's CPU also answers DNS. Bodies of ``GZIP_THREAD_BYTES`` and
more are compressed in a worker thread (zlib lets go of the GIL), so a big page never holds up
the event loop, and with it DNS answers.
"""

from __future__ import annotations

import asyncio
import gzip
import re

GZIP_MIN_BYTES = 1024  # JSON bodies smaller than this are sent as they are
GZIP_LEVEL = 1  # zlib level: see the module doc and docs/benchmarks.md
GZIP_THREAD_BYTES = 32 * 1024  # bodies this large are compressed off the event loop
MAX_CODINGS = 32  # Accept-Encoding elements looked at; a longer list is cut there

_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)")


def parse_accept_encoding(value: str | None) -> dict[str, float] | None:
    """{coding: weight} of an Accept-Encoding field value, names lower-cased, ``x-gzip`` taken
    as ``gzip``; None when the field is absent. A malformed element (a bad ``q``) is skipped,
    as if the client had not listed that coding; parameters other than ``q`` are ignored."""
    if value is None:
        return None
    out: dict[str, float] = {}
    for element in value.split(",")[:MAX_CODINGS]:
        name, *params = (part.strip() for part in element.split(";"))
        name = name.lower()
        if not name:
            continue
        weight = 1.0
        for param in params:
            key, eq, raw = param.partition("=")
            if key.strip().lower() == "q":
                raw = raw.strip()
                if not eq or not _QVALUE.fullmatch(raw):
                    weight = -1.0  # malformed: the element is skipped
                    break
                weight = float(raw)
        if weight < 0:
            continue
        if name == "x-gzip":
            name = "gzip"
        out[name] = min(weight, out.get(name, weight))  # listed twice: the lower weight
    return out


def accepts_gzip(value: str | None) -> bool:
    """Whether an answer may be gzipped for a request whose Accept-Encoding is ``value``.

    Only when the client asks: no field, or an empty one, means plain. gzip is taken when its
    weight (its own, else that of ``*``) is above 0 and not below an explicitly listed
    ``identity``'s: ``gzip;q=0`` refuses it, ``gzip;q=0.5, identity`` prefers plain."""
    weights = parse_accept_encoding(value)
    if not weights:
        return False
    q = weights.get("gzip", weights.get("*", 0.0))
    if q <= 0.0:
        return False
    return "identity" not in weights or q >= weights["identity"]


def gzip_bytes(data: bytes) -> bytes:
    """gzip of ``data`` at GZIP_LEVEL, mtime 0 so equal bodies compress to equal bytes."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


async def gzip_body(data: bytes) -> bytes:
    """gzip_bytes, in a worker thread for bodies of GZIP_THREAD_BYTES or more."""
    if len(data) >= GZIP_THREAD_BYTES:
        return await asyncio.to_thread(gzip_bytes, data)
    return gzip_bytes(data)
