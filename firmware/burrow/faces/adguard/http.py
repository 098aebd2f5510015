"""How the AdGuard Home face speaks HTTP: Basic auth, AdGuard's answers, and the route decorator.

AdGuard Home (openapi/openapi.yaml, internal/home/authhttp.go) answers a request without valid
credentials with a bare 401 — no body, and no ``WWW-Authenticate`` — and its errors as plain
text with the status; an action that worked answers 200 with an empty body. This face does the
same. Never sending a Basic challenge matters beyond likeness: a browser only remembers Basic
credentials for a site after a challenge, so it never attaches them to a request another web
page makes (no CSRF through Basic auth); the session cookie is not accepted here at all, and a
write still passes the listener's Origin check (docs/security.md, "The AdGuard Home face").
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import ujson
from microdot import Response

from ...api.errors import ApiError
from ...auth.errors import PasswordBusyError
from ...errors import DomainError

if TYPE_CHECKING:
    from ...api.routes import Api
    from ...auth import AuthService

log = logging.getLogger(__name__)

PREFIX = "/control"
MAX_CREDENTIAL = 4096 + 256  # bytes of the base64 user:password (an API token is at most 4096)


class Refused(DomainError):
    """What the face refuses, with its status: answered as AdGuard answers errors, the status
    and the message as plain text (the one map below, in :meth:`Control.route`)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def text(status: int, message: str = "", headers: dict | None = None) -> Response:
    return Response(message.encode(), status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


def json(payload: Any) -> Response:
    return Response(ujson.dumps(payload, ensure_ascii=False, escape_forward_slashes=False), 200,
                    {"Content-Type": "application/json"})


def body_of(req) -> dict:
    """The JSON object a request carries; Refused(400) for anything else."""
    try:
        data = ujson.loads(req.body or b"")
    except ValueError:
        raise Refused(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, "the body must be a JSON object")
    return data


def field(body: dict, name: str, kind: type, required: bool = True, default: Any = None) -> Any:
    """``body[name]`` of type ``kind`` (bool is not an int here); Refused(400) naming it."""
    if name not in body:
        if required:
            raise Refused(400, f"{name}: required")
        return default
    value = body[name]
    if (kind is int and (isinstance(value, bool) or not isinstance(value, int))) \
            or (kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)))) \
            or (kind not in (int, float) and not isinstance(value, kind)):
        wanted = "a boolean" if kind is bool else "a number" if kind in (int, float) else "a " + kind.__name__
        raise Refused(400, f"{name}: must be {wanted}")
    return value


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(name, password) of an ``Authorization: Basic`` header; None for none or a malformed one."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token or len(token) > MAX_CREDENTIAL:
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    name, colon, password = decoded.partition(":")
    return (name, password) if colon else None


Handler = Callable[..., Awaitable[Any]]


class Control:
    """Declares the face's routes on the main listener's Api (``Api.face``), each behind the
    listener's checks (Host, Origin on writes, the per-address limiter) and Basic auth: a Burrow
    user's name and password, or any name and an API token as the password. Reads take any
    principal; writes an admin (an admin-scoped token), else 403. A handler returns a dict or list
    (sent as JSON), None (200, empty), or a Response; it raises Refused for AdGuard's errors."""

    def __init__(self, api: Api, auth: AuthService):
        self.api = api
        self.auth = auth
        self.paths: list[tuple[str, str]] = []  # (method, path) served: docs and tests read it

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        full = PREFIX + path

        def decorate(handler: Handler) -> Handler:
            write = method != "GET"

            async def endpoint(req, **params):
                try:
                    req.g.client_ip = self.api.face_checks(req)
                    principal = await self._principal(req)
                    if principal is None:
                        return text(401)
                    if write and (not principal.can_write or principal.read_only):
                        return text(403, "this needs an admin account (or an admin-scoped API token)")
                    req.g.principal = principal
                    result = await handler(req, **params)
                except ApiError as exc:  # the listener's own refusals (Origin, rate limit)
                    return text(exc.status, exc.message, exc.headers)
                except DomainError as exc:  # ours (Refused), a store's: bad input, a conflict, a missing item
                    return text(exc.status, str(exc))
                except Exception:
                    log.exception("AdGuard Home face: %s %s failed", method, full)
                    return text(500, "internal error; see Burrow's log")
                if isinstance(result, Response):
                    return result
                if result is None:
                    return text(200)
                return json(result)

            endpoint.__name__ = f"adguard_{method.lower()}_{path.strip('/').replace('/', '_')}"
            self.api.face(method, full, endpoint)
            self.paths.append((method, full))
            return handler

        return decorate

    async def _principal(self, req):
        """Who sent the request's Basic credentials; None when there are none or they fail
        (AdGuard answers both with a bare 401). The lockout counts failures as logins'."""
        credentials = basic_credentials(req.headers.get("Authorization"))
        if credentials is None:
            return None
        name, password = credentials
        try:
            return await self.auth.basic_principal_async(name, password, client_ip=req.g.client_ip)
        except PasswordBusyError:  # nothing was checked: not a failure of the credentials
            raise Refused(429, "busy checking passwords; try again shortly") from None
        except DomainError:  # wrong, disabled, locked out: AdGuard answers them all alike
            return None
