"""Errors raised by the auth services.

Each class is a ``burrow.errors.DomainError`` carrying ``status`` (the HTTP status the API
answers with) and ``error`` (a short machine-readable code), so the API maps them by class
without importing this module. ``str(exc)`` is the human-readable message and never contains
a secret.
"""

from __future__ import annotations

from .. import errors


class AuthServiceError(errors.DomainError):
    """Base of every auth-service error; not raised itself."""

    status = 500
    error = "internal_error"

    def __init__(self, message: str = ""):
        super().__init__(message or self.default_message)

    default_message = "authentication error"


class AuthError(AuthServiceError, errors.Unauthorized):
    """Credentials are missing parts, wrong, expired or revoked (401).

    The message is deliberately vague ("invalid credentials") where a precise one would tell
    an attacker which part was wrong.
    """

    status = 401
    error = "unauthorized"
    default_message = "invalid credentials"


class TotpRequiredError(AuthError):
    """The password was right but the account has 2FA and no code was given (401,
    ``error`` = "totp_required"): ask for the code and log in again with it."""

    error = "totp_required"
    default_message = "a TOTP code is required"


class ForbiddenError(AuthServiceError, errors.Forbidden):
    """The caller is known but not allowed to do this (403)."""

    status = 403
    error = "forbidden"
    default_message = "not allowed"


class LockedOutError(AuthServiceError, errors.TooManyRequests):
    """Too many failed logins for this account or client address (429).

    ``retry_after`` is the number of seconds until attempts are accepted again (the API sends
    it as Retry-After). Attempts during the lockout are refused even with the right password.
    """

    status = 429
    error = "locked_out"

    def __init__(self, retry_after: float):
        self.retry_after = max(0, int(retry_after + 0.999))
        super().__init__(f"too many failed attempts; try again in {self.retry_after} s")


class PasswordBusyError(AuthServiceError, errors.TooManyRequests):
    """Too many password checks are already running or waiting (429, ``error`` = "busy").

    Refused at once instead of queued without bound (see kdf.py); ``retry_after`` seconds is a
    fair time to try again. Not a failed attempt: nothing was checked, nothing is counted.
    """

    status = 429
    error = "busy"

    def __init__(self, retry_after: float = 1.0):
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__("too many password checks at once; try again in a moment")


class WeakPasswordError(AuthServiceError, errors.Invalid):
    """The new password fails the strength rules (400); the message says which rule."""

    status = 400
    error = "weak_password"
    default_message = "password is too weak"

    def __init__(self, reason: str = ""):
        self.reason = reason or self.default_message
        self.field = "password"
        super().__init__(self.reason)


class ConflictError(AuthServiceError, errors.Conflict):
    """The request contradicts the current state (409): name taken, last admin, setup done."""

    status = 409
    error = "conflict"
    default_message = "conflict"


class NotFoundError(AuthServiceError, errors.NotFound):
    """No such user or token (404)."""

    status = 404
    error = "not_found"
    default_message = "not found"


class InvalidInputError(AuthServiceError, errors.Invalid):
    """A field has an invalid value (400). ``field`` names it, ``str(exc)`` says why."""

    status = 400
    error = "invalid_input"

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)
