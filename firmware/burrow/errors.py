"""The base of every domain error: what went wrong, which field, and the HTTP status it means.

A store or service refuses a request by raising a subclass of ``DomainError``; the API maps
every one of them by class (``api/errors.from_exception``), so a handler never converts a
domain error by hand and nothing compares class names. The class carries:

- ``status``: the HTTP status the refusal means (400 invalid, 404 not found, 409 conflict, ...);
- ``error``: a short machine-readable code where one is answered today (None: the status's
  reason phrase, e.g. "Bad Request");
- ``field``: the request field at fault as a path (``upstreams[2].address``, ``cache.max_ttl``),
  or None; a class with several problems at once overrides ``problems()``;
- ``retry_after``: seconds until trying again makes sense (lockouts), or None.

This module is in the foundation layer and imports nothing, so every package may raise them.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the domain refuses. Not raised itself: raise a subclass that says what it means."""

    status: int = 400
    error: str | None = None
    field: str | None = None
    retry_after: int | None = None

    def __str__(self) -> str:
        # Exception's, also for subclasses of KeyError (whose own str() quotes the message).
        return Exception.__str__(self)

    def summary(self) -> str:
        """The message the API answers."""
        return str(self)

    def problems(self) -> list[dict[str, Any]] | None:
        """The API's ``details``: the field at fault with the message, or None."""
        return [{"field": self.field, "message": str(self)}] if self.field else None


class Invalid(DomainError):
    """Bad input (400)."""

    status = 400


class Unauthorized(DomainError):
    """Credentials missing, wrong, expired or revoked (401)."""

    status = 401


class Forbidden(DomainError):
    """The caller is known but not allowed to do this (403)."""

    status = 403


class NotFound(DomainError):
    """No such thing (404)."""

    status = 404


class Conflict(DomainError):
    """The request contradicts the current state: a name taken, a last admin (409)."""

    status = 409


class TooManyRequests(DomainError):
    """Refused for now; ``retry_after`` says when to try again (429)."""

    status = 429
