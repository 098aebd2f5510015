"""The Pi-hole face's HTTP plumbing: its answers (``took`` in every one), its errors, where a
request's session id comes from, and the check every authenticated route runs.

Pi-hole v6 (FTL's ``src/api/docs/content/specs``) answers every call with JSON that carries
``took`` (seconds spent), and every error as ``{"error": {"key", "message", "hint"}, "took"}``.
A call without a valid session answers 401 with the key ``unauthorized``, whatever it asked.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

from microdot import Response

from .sessions import Session, Sessions

JSON = "application/json; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}
# Where Pi-hole reads a session id (api/auth.yaml's security schemes, and FTL's check_client_auth):
SID_HEADERS = ("X-FTL-SID", "sid")  # header names; microdot's headers ignore case
CSRF_HEADERS = ("X-CSRF-TOKEN", "X-FTL-CSRF")  # cookie sessions must echo their CSRF token
MAX_SID_FIELD = 128


class PiholeError(Exception):
    """An answer in Pi-hole's error shape: ``status``, ``key`` (machine-readable), ``message``
    and ``hint`` (null when there is nothing to add)."""

    def __init__(self, status: int, key: str, message: str, hint: Any = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.key, self.message, self.hint = status, key, message, hint
        self.headers = headers or {}


def unauthorized() -> PiholeError:
    return PiholeError(401, "unauthorized", "Unauthorized")


def bad_request(message: str, hint: Any = None) -> PiholeError:
    return PiholeError(400, "bad_request", message, hint)


def answer(body: dict, started: float, status: int = 200, headers: dict | None = None) -> Response:
    """``body`` with ``took`` (seconds since ``started``, a perf_counter reading) as JSON."""
    payload = {**body, "took": round(time.perf_counter() - started, 6)}
    return Response(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), status,
                    {"Content-Type": JSON, **NO_STORE, **(headers or {})})


def error_answer(e: PiholeError, started: float) -> Response:
    return answer({"error": {"key": e.key, "message": e.message, "hint": e.hint}}, started, e.status, e.headers)


def json_body(req) -> Any:
    """The body parsed as JSON whatever the Content-Type says (Pi-hole does the same: clients
    send the password as text/plain or with no type at all); None when there is none."""
    raw = req.body or b""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _form_sid(req) -> str | None:
    ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded" or not req.body:
        return None
    try:
        fields = urllib.parse.parse_qs(req.body.decode("utf-8"), max_num_fields=64)
    except (ValueError, UnicodeDecodeError):
        return None
    values = fields.get("sid")
    return values[0] if values else None


def presented_sid(req) -> tuple[str | None, bool]:
    """(the session id the request carries, whether it came only from a cookie).

    In Pi-hole's order: the ``X-FTL-SID`` header, a ``sid`` header (any case), ``?sid=``, a
    ``sid`` field of a JSON or form body, then the ``sid`` cookie (which also needs the CSRF
    header: see :func:`authenticate`)."""
    for name in SID_HEADERS:
        value = req.headers.get(name)
        if value:
            return value.strip(), False
    value = req.args.get("sid") if req.args else None
    if value:
        return value, False
    body = json_body(req)
    if isinstance(body, dict) and isinstance(body.get("sid"), str) and body["sid"]:
        return body["sid"], False
    value = _form_sid(req)
    if value:
        return value, False
    cookie = (req.cookies or {}).get("sid")
    if cookie:
        return cookie, True
    return None, False


def authenticate(req, sessions: Sessions) -> Session:
    """The request's live session (its validity moved on); PiholeError 401 otherwise."""
    sid, from_cookie = presented_sid(req)
    if not sid or len(sid) > MAX_SID_FIELD:
        raise unauthorized()
    session = sessions.use(sid)
    if session is None:
        raise unauthorized()
    if from_cookie:
        echoed = next((req.headers.get(h) for h in CSRF_HEADERS if req.headers.get(h)), None)
        if echoed != session.csrf:
            raise unauthorized()
    return session

