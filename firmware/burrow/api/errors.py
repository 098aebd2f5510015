"""One error shape for the whole API, and one map from exceptions to it.

Every error body is ``{"error", "code", "message", "details"?, "timestamp"}`` — the union of
the two seeds' formats. Services raise ApiError (or any exception carrying ``status`` and
``error`` attributes, such as the auth errors); nothing else needs to know about HTTP.
"""

from __future__ import annotations

import datetime
import http
import logging

log = logging.getLogger(__name__)


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class ApiError(Exception):
    """An error answered as JSON. ``error`` defaults to the status's reason phrase."""

    def __init__(self, status: int, message: str, details=None, error: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.error = error or reason(status)
        self.headers = headers or {}


class ValidationError(ApiError):
    """400 naming each bad field: details = [{"field": "cache.max_ttl", "message": "..."}]."""

    def __init__(self, problems: list[tuple[str, str]]):
        details = [{"field": f, "message": m} for f, m in problems]
        summary = "; ".join(f"{f}: {m}" if f else m for f, m in problems)
        super().__init__(400, f"invalid request: {summary}", details)


def error_body(status: int, message: str, details=None, error: str | None = None) -> dict:
    body = {"error": error or reason(status), "code": status, "message": message}
    if details is not None:
        body["details"] = details
    body["timestamp"] = now_iso()
    return body


def from_exception(exc: BaseException) -> tuple[int, dict, dict]:
    """(status, body, extra headers) for any exception raised by a handler."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.status, exc.message, exc.details, exc.error), exc.headers
    status = getattr(exc, "status", None)
    if isinstance(status, int) and 400 <= status < 600:
        # Service-layer errors (auth, config) carry their own status and short code.
        headers = {}
        retry = getattr(exc, "retry_after", None)
        if retry is not None:
            headers["Retry-After"] = str(int(retry) + 1)
        details = getattr(exc, "details", None)
        field = getattr(exc, "field", None)
        if details is None and field:
            details = [{"field": field, "message": str(exc)}]
        return status, error_body(status, str(exc), details, getattr(exc, "error", None)), headers
    from ..config import ConfigError
    if isinstance(exc, ConfigError):
        return 400, error_body(400, f"invalid configuration: {exc}",
                               [{"field": k, "message": m} for k, m in exc.errors]), {}
    log.exception("unhandled error in an API handler", exc_info=exc)
    return 500, error_body(500, "internal error; see the log"), {}
