"""One error shape for the whole API, and one map from exceptions to it.

Every error body is ``{"error", "code", "message", "details"?, "timestamp"}`` — the union of
the two seeds' formats. Stores and services raise domain errors (``burrow.errors.DomainError``
subclasses: status, short code, field path, Retry-After); handlers raise ApiError, itself a
DomainError, for what only HTTP knows. ``from_exception`` maps by class: a DomainError answers
its own status and fields, anything else is a 500.
"""

from __future__ import annotations

import datetime
import http
import logging

from ..errors import DomainError

log = logging.getLogger(__name__)


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class ApiError(DomainError):
    """An error answered as JSON. ``error`` defaults to the status's reason phrase."""

    def __init__(self, status: int, message: str, details=None, error: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.error = error or reason(status)
        self.headers = headers or {}

    def summary(self) -> str:
        return self.message

    def problems(self):
        return self.details


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
    if isinstance(exc, DomainError):
        headers = dict(exc.headers) if isinstance(exc, ApiError) else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(int(exc.retry_after) + 1)
        return exc.status, error_body(exc.status, exc.summary(), exc.problems(), exc.error), headers
    log.exception("unhandled error in an API handler", exc_info=exc)
    return 500, error_body(500, "internal error; see the log"), {}
