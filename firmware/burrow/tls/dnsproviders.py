"""DNS providers for ACME DNS-01: create and delete the ``_acme-challenge`` TXT records through a
provider's API with an API token.

One provider so far, Cloudflare (API v4: ``POST``/``DELETE``
``{api}/zones/{zone_id}/dns_records[/{id}]`` with ``Authorization: Bearer <token>``; the zone
is given, or found with ``GET {api}/zones?name=`` from the record's name upwards). The API base is
configurable (a test points it at a fake on loopback). Requests use the standard library
(``urllib``, the system's CA store for https) in a worker thread, each bounded by ``timeout``.

The token is a secret: it is kept in the object only for the ``Authorization`` header, left out
of ``repr``, and scrubbed from every error message (the provider's own words included), and
nothing here logs a request.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message as HTTPMessage
from typing import IO, Any

from burrow.tls.acme import DnsProviderError

CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
TIMEOUT_S = 30.0  # one API request
MAX_RESPONSE = 1 << 20  # bytes of an API answer read
MAX_ZONES_CACHED = 64  # zone ids remembered by name
TXT_TTL = 60  # seconds; Cloudflare's minimum for a record that is not proxied


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would carry the Authorization header to the new place."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class CloudflareRecord:
    """What :meth:`CloudflareDns.delete_txt` needs."""

    zone_id: str
    record_id: str
    name: str


class CloudflareDns:
    """TXT records through Cloudflare's API with a scoped API token (Zone.DNS edit)."""

    def __init__(self, token: str, *, zone_id: str | None = None, api_base: str = CLOUDFLARE_API,
                 timeout: float = TIMEOUT_S):
        if not token or any(c.isspace() or not c.isprintable() for c in token):
            raise ValueError("token: an API token is one word of printable characters")
        if not api_base.startswith(("https://", "http://")):
            raise ValueError("api_base must be an http(s) URL")
        if zone_id is not None and not zone_id.isalnum():
            raise ValueError("zone_id: letters and digits only")
        self._token = token
        self.zone_id = zone_id
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        self._zones: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"CloudflareDns(api_base={self.api_base!r}, zone_id={self.zone_id!r}, token=<hidden>)"

    async def create_txt(self, name: str, value: str) -> CloudflareRecord:
        zone_id = self.zone_id or await self._find_zone(name)
        answer = await self._request("POST", f"/zones/{zone_id}/dns_records",
                                     {"type": "TXT", "name": name, "content": value, "ttl": TXT_TTL})
        record_id = answer.get("result", {}).get("id") if isinstance(answer.get("result"), dict) else None
        if not isinstance(record_id, str) or not record_id:
            raise DnsProviderError(f"Cloudflare created the TXT record {name} but returned no id")
        return CloudflareRecord(zone_id=zone_id, record_id=record_id, name=name)

    async def delete_txt(self, handle: object) -> None:
        if not isinstance(handle, CloudflareRecord):
            raise TypeError("not a record this provider made")
        await self._request("DELETE", f"/zones/{handle.zone_id}/dns_records/{handle.record_id}", None)

    async def _find_zone(self, name: str) -> str:
        """The id of the Cloudflare zone holding ``name``: the longest of its suffixes that is a
        zone of the account."""
        labels = name.rstrip(".").lower().split(".")
        for i in range(len(labels) - 1):
            suffix = ".".join(labels[i:])
            if suffix in self._zones:
                return self._zones[suffix]
            query = urllib.parse.urlencode({"name": suffix})
            answer = await self._request("GET", f"/zones?{query}", None)
            result = answer.get("result")
            if isinstance(result, list) and result and isinstance(result[0], dict) and result[0].get("id"):
                zone_id = str(result[0]["id"])
                if len(self._zones) >= MAX_ZONES_CACHED:
                    self._zones.clear()
                self._zones[suffix] = zone_id
                return zone_id
        raise DnsProviderError(f"no Cloudflare zone of this token holds {name}")

    async def _request(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return await asyncio.to_thread(self._request_blocking, method, path, body)
        except DnsProviderError as e:
            raise DnsProviderError(self._scrub(str(e))) from None

    def _request_blocking(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.api_base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self._token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        where = f"Cloudflare {method} {path.split('?', 1)[0]}"
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE)
        except urllib.error.HTTPError as e:
            detail = _errors_of(e.read(MAX_RESPONSE))
            raise DnsProviderError(f"{where}: HTTP {e.code}{': ' + detail if detail else ''}") from None
        except urllib.error.URLError as e:
            raise DnsProviderError(f"{where}: cannot reach {self.api_base}: {e.reason}") from None
        except OSError as e:  # a timeout or a reset while reading
            raise DnsProviderError(f"{where}: {e}") from None
        try:
            answer = json.loads(raw)
        except ValueError:
            raise DnsProviderError(f"{where}: the answer is not JSON") from None
        if not isinstance(answer, dict) or answer.get("success") is not True:
            detail = _errors_of(raw)
            raise DnsProviderError(f"{where}: refused{': ' + detail if detail else ''}")
        return answer

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>")


def _errors_of(raw: bytes) -> str:
    """Cloudflare's ``errors`` ("code: message; …") from an answer, or ""."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return ""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = [f"{e.get('code')}: {e.get('message')}" for e in errors[:5] if isinstance(e, dict)]
    return "; ".join(" ".join(p.split())[:200] for p in parts)
