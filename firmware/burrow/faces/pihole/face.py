"""The Pi-hole v6 face: Pi-hole FTL's REST API (``/api/...``) over Burrow's services.

For Home Assistant's Pi-hole integration, Homepage's widget, nebula-sync and other v6 clients.
Each shape follows FTL's OpenAPI specification (``src/api/docs/content/specs/*.yaml``); what
Burrow does for each endpoint, and what it does not have, is in docs/compat.md ("Pi-hole v6
face"). Handlers are thin, as on the main API: validate, call a service, serialize; the stores
announce their own changes.

Who may do what: a session made with the password of any enabled admin can do everything; one
made with a Burrow API token as Pi-hole's "app password" has the token's scope: a read token
reads and switches blocking, an admin token also changes the configuration and imports.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from microdot import Response

from ...api.backup import read_upload
from ...api.errors import ApiError
from ...api.origin import Site
from ...api.routes import BurrowWeb, client_ip
from ...auth.errors import AuthError, LockedOutError, PasswordBusyError, TotpRequiredError
from ...auth.service import API_TOKEN_PREFIX
from ...storage.events import publish_event
from . import config as pihole_config
from . import legacy, stats, teleporter
from .http import PiholeError, answer, authenticate, bad_request, error_answer, json_body, presented_sid, unauthorized
from .sessions import Session, Sessions, SeatsExceeded

if TYPE_CHECKING:
    from ...services import Services

log = logging.getLogger(__name__)

SESSION_COOKIE = "sid"
MAX_CONFIG_BODY = 4 * 1024 * 1024  # bytes of a PATCH /api/config (10,000 host lines are ~400 KiB)


@dataclass(frozen=True)
class Caller:
    """Who an authenticated request is: its session, the account, and what it may do."""

    session: Session
    username: str
    can_write: bool  # change configuration, import (an admin password or an admin token)


class PiholeFace:
    """The routes on their own :class:`~burrow.api.routes.BurrowWeb` (served by
    :class:`~burrow.faces.pihole.service.PiholeService`)."""

    def __init__(self, s: Services, sessions: Sessions):
        self.s = s
        self.sessions = sessions
        self.web = BurrowWeb()
        # The main API's rules for who may talk to it (docs/security.md): a request must name
        # Burrow (no DNS rebinding: 421), and no other web page may send it anything but a read
        # (403): a page cannot spend the owner's sign-in attempts on the lockout.
        site = Site(s.config, s.board, certificate_names=s.tls.names)

        def screen(req):
            if not site.host_allowed(req):
                return site.refuse_host()
            if req.method not in ("GET", "HEAD") and not site.origin_ok(req):
                return site.refuse_origin()
            return None

        self.web.screen = screen
        self._routes()

    # ---- plumbing ------------------------------------------------------------------------------

    def route(self, method: str, path: str, *, auth: bool = True, write: bool = False):
        """Register ``handler(req, started, caller)`` (``caller`` None when ``auth`` is False).
        ``write``: only callers that may change configuration (not read-scoped app passwords)."""
        def decorate(handler):
            async def run(req, **params):
                started = time.perf_counter()
                try:
                    caller = self._caller(req) if auth else None
                    if write and caller is not None and not caller.can_write:
                        raise PiholeError(403, "forbidden", "This app password is read-only",
                                          "use the password of an admin or an admin API token")
                    return await handler(req, started, caller, **params)
                except PiholeError as e:
                    return error_answer(e, started)
                except Exception:
                    log.exception("Pi-hole face: %s %s failed", req.method, req.path)
                    return error_answer(PiholeError(500, "internal_error", "Internal server error"), started)

            run.__name__ = f"pihole_{handler.__name__}"
            self.web.route(path, methods=[method])(run)
            return handler

        return decorate

    def _caller(self, req) -> Caller:
        session = authenticate(req, self.sessions)
        auth = self.s.auth
        user = auth.get_user(session.user_id)
        if user is None or user["disabled"]:
            self.sessions.end(session.sid)
            raise unauthorized()
        if session.token_id is None:
            if user["role"] != "admin":  # demoted since: Pi-hole's password is an admin's
                self.sessions.end(session.sid)
                raise unauthorized()
            return Caller(session, user["username"], True)
        token = next((t for t in auth.list_api_tokens(user["id"]) if t["id"] == session.token_id), None)
        if token is None:  # revoked since
            self.sessions.end(session.sid)
            raise unauthorized()
        return Caller(session, user["username"], token["scope"] == "admin" and user["role"] == "admin")

    def _totp_on(self) -> bool:
        """Whether the sign-in asks for a code: an enabled admin has 2FA."""
        return any(u["totp_enabled"] for u in self.s.auth.list_users() if u["role"] == "admin" and not u["disabled"])

    def audit(self, req, caller: Caller | None, type_: str, summary: str, **data: Any) -> None:
        publish_event(self.s.events, type_, actor=f"{caller.username} (Pi-hole API)" if caller else None,
                      client_ip=client_ip(req), summary=summary, **data)

    # ---- routes --------------------------------------------------------------------------------

    def _routes(self) -> None:
        s = self.s

        @self.web.errorhandler(404)
        async def not_found(req):
            return error_answer(PiholeError(404, "not_found", "Not found", req.path), time.perf_counter())

        @self.web.errorhandler(405)
        async def not_allowed(req):
            return error_answer(PiholeError(405, "method_not_allowed", "Method not allowed", req.path),
                                time.perf_counter())

        # -- authentication (api/auth.yaml) --

        def session_body(session: Session | None, message: str | None, *, sid: str | None = None) -> dict:
            now = time.time()
            return {"session": {
                "valid": session is not None, "totp": self._totp_on(),
                "sid": sid if session is not None else None,
                "csrf": session.csrf if session is not None else None,
                "validity": session.validity(now) if session is not None else -1,
                "message": message}}

        @self.route("GET", "/api/auth", auth=False)
        async def auth_status(req, started, _caller):
            sid, _ = presented_sid(req)
            try:
                caller = self._caller(req)
            except PiholeError:
                return answer(session_body(None, "no SID provided" if not sid else "invalid SID"), started, 401)
            return answer(session_body(caller.session, None, sid=caller.session.sid), started)

        @self.route("POST", "/api/auth", auth=False)
        async def login(req, started, _caller):
            body = json_body(req)
            if not isinstance(body, dict):
                raise bad_request("No valid JSON payload found")
            if "password" not in body:
                raise bad_request("No password found in JSON payload")
            password = body["password"]
            if not isinstance(password, str):
                raise bad_request("Field password has to be of type 'string'")
            ip = client_ip(req)
            token_id = None
            try:
                if password.startswith(API_TOKEN_PREFIX):
                    principal = await self._app_password(password, ip)
                    user_id, scope, token_id = principal.user_id, principal.scope, principal.token_id
                    message = "app-password correct"
                else:
                    user = await s.auth.check_admin_password_async(password, body.get("totp"), ip)
                    user_id, scope, message = user["id"], "admin", "password correct"
            except TotpRequiredError:
                raise bad_request("No 2FA token found in JSON payload") from None
            except LockedOutError as e:
                raise PiholeError(429, "rate_limiting", "Rate-limiting login attempts",
                                  headers={"Retry-After": str(max(1, int(e.retry_after)))}) from None
            except PasswordBusyError:
                raise PiholeError(429, "rate_limiting", "Too many password checks at once, try again shortly",
                                  headers={"Retry-After": "1"}) from None
            except AuthError as e:
                if "2FA" in str(e):
                    raise PiholeError(401, "unauthorized", "Invalid 2FA token") from None
                return answer(session_body(None, "password incorrect"), started, 401)
            try:
                session = self.sessions.create(user_id=user_id, scope=scope, token_id=token_id, client_ip=ip,
                                               user_agent=req.headers.get("User-Agent"))
            except SeatsExceeded:
                raise PiholeError(429, "api_seats_exceeded", "API seats exceeded",
                                  "increase webserver.api.max_sessions") from None
            cookie = (f"{SESSION_COOKIE}={session.sid}; SameSite=Strict; Path=/; "
                      f"Max-Age={self.sessions.timeout}; HttpOnly")
            return answer(session_body(session, message, sid=session.sid), started,
                          headers={"Set-Cookie": cookie})

        @self.route("DELETE", "/api/auth")
        async def logout(req, started, caller):
            self.sessions.end(caller.session.sid)
            return Response("", 204, {"Set-Cookie": f"{SESSION_COOKIE}=deleted; SameSite=Strict; Path=/; "
                                                    "Max-Age=-1; HttpOnly"})

        # -- statistics (api/stats.yaml, history.yaml, padd.yaml) --

        @self.route("GET", "/api/stats/summary")
        async def summary(req, started, caller):
            return answer(await stats.summary(s), started)

        @self.route("GET", "/api/stats/top_domains")
        async def top_domains(req, started, caller):
            return answer(await stats.top_domains(s, stats.flag(req, "blocked"), stats.count(req, 10)), started)

        @self.route("GET", "/api/stats/top_clients")
        async def top_clients(req, started, caller):
            return answer(await stats.top_clients(s, stats.flag(req, "blocked"), stats.count(req, 10)), started)

        @self.route("GET", "/api/stats/upstreams")
        async def upstreams(req, started, caller):
            return answer(await stats.upstreams(s), started)

        @self.route("GET", "/api/stats/query_types")
        async def query_types(req, started, caller):
            return answer({"types": await stats.query_types(s)}, started)

        @self.route("GET", "/api/stats/recent_blocked")
        async def recent_blocked(req, started, caller):
            return answer({"blocked": await stats.recent_blocked(s, stats.count(req, 1))}, started)

        @self.route("GET", "/api/history")
        async def history(req, started, caller):
            return answer({"history": stats.history(s)}, started)

        @self.route("GET", "/api/padd")
        async def padd(req, started, caller):
            return answer(await stats.padd(s, blocking_state(s)), started)

        # -- information (api/info.yaml) --

        @self.route("GET", "/api/info/version")
        async def version(req, started, caller):
            return answer({"version": stats.versions(s.version)}, started)

        @self.route("GET", "/api/info/ftl")
        async def ftl(req, started, caller):
            return answer({"ftl": await stats.ftl_info(s)}, started)

        # -- blocking (api/dns.yaml) --

        @self.route("GET", "/api/dns/blocking")
        async def get_blocking(req, started, caller):
            return answer(blocking_state(s), started)

        @self.route("POST", "/api/dns/blocking")
        async def set_blocking(req, started, caller):
            body = json_body(req)
            if not isinstance(body, dict):
                raise bad_request("No valid JSON payload found")
            blocking = body.get("blocking")
            if not isinstance(blocking, bool):
                raise bad_request('No "blocking" boolean in body data')
            timer = body.get("timer")
            seconds = None
            if isinstance(timer, (int, float)) and not isinstance(timer, bool):
                if timer > 0:
                    seconds = float(timer)
            elif timer is not None and timer is not True:
                raise bad_request('"timer" has to be a number, null or true')
            before = s.pause.state(None)
            if blocking:
                if seconds is not None:
                    raise bad_request("Burrow cannot turn blocking on for a time and off again by itself",
                                      "send {\"blocking\": true} (no timer), or pause with "
                                      "{\"blocking\": false, \"timer\": seconds}")
                s.pause.resume()
            else:
                try:
                    s.pause.pause(seconds)
                except ValueError as e:
                    raise bad_request(str(e), "a timer of at most 604800 s, or none (until resumed)") from None
            after = s.pause.state(None)
            if before != after:
                self.audit(req, caller, "blocking.resumed" if blocking else "blocking.paused",
                           "blocking resumed" if blocking else
                           f"blocking paused {'for %d s' % seconds if seconds else 'until resumed'}",
                           before=before, after=after, group=None)
            return answer(blocking_state(s), started)

        # -- configuration (api/config.yaml), for two-box sync --

        @self.route("GET", "/api/config")
        async def get_config(req, started, caller):
            return answer({"config": pihole_config.read(s)}, started)

        @self.route("GET", "/api/config/<path:element>")
        async def get_config_element(req, started, caller, element):
            return answer({"config": pihole_config.element(pihole_config.read(s), element)}, started)

        @self.route("PATCH", "/api/config", write=True)
        async def patch_config(req, started, caller):
            body = await self._large_json(req)
            if not isinstance(body, dict) or not isinstance(body.get("config"), dict):
                raise bad_request("No valid JSON payload found", 'send {"config": {...}}')
            changed = pihole_config.patch(s, body["config"])
            if changed:
                self.audit(req, caller, "config.changed", "settings changed through the Pi-hole API: "
                           + ", ".join(changed), changed=changed)
            return answer({"config": pihole_config.read(s)}, started)

        # -- actions (api/action.yaml) --

        @self.route("POST", "/api/action/gravity", write=True)
        async def gravity(req, started, caller):
            report = await stats.update_lists(s)
            self.audit(req, caller, "blocklist.reloaded", report["message"], domains=report["domains"])
            ok = report["status"] == "ok"
            text = (f"  [i] Burrow: {report['message']}\n"
                    f"  [i] Number of gravity domains: {report['domains']}\n"
                    + ("  [✓] Done.\n" if ok else "  [✗] Failed.\n"))
            return Response(text, 200 if ok else 500, {"Content-Type": "text/plain; charset=utf-8",
                                                       "Cache-Control": "no-store"})

        # -- Teleporter (api/teleporter.yaml): the archive out, and in --

        @self.route("GET", "/api/teleporter", write=True)
        async def get_teleporter(req, started, caller):
            name, data = teleporter.export(s)
            return Response(data, 200, {"Content-Type": "application/zip", "Cache-Control": "no-store",
                                        "Content-Disposition": f'attachment; filename="{name}"'})

        @self.route("POST", "/api/teleporter", write=True)
        async def post_teleporter(req, started, caller):
            try:
                body = await read_upload(req, teleporter.MAX_UPLOAD)
            except ApiError as e:
                raise PiholeError(e.status, "bad_request" if e.status < 500 else "internal_error", e.message) from None
            fields = teleporter.multipart_fields(req.headers.get("Content-Type") or "", body)
            result = await teleporter.import_archive(s, fields, actor=f"{caller.username} (Pi-hole API)",
                                                     client_ip=client_ip(req))
            return answer(result, started)

        # -- the v5 API, for dashboards still configured for it --
        legacy.register(self, s)

    async def _large_json(self, req) -> Any:
        """The JSON body of a call that may carry more than the 64 KiB read with the head (a
        config PATCH with many local records): at most MAX_CONFIG_BODY bytes."""
        if (req.content_length or 0) <= len(req.body or b""):  # read with the head already
            return json_body(req)
        try:
            raw = await read_upload(req, MAX_CONFIG_BODY)
        except ApiError as e:
            raise PiholeError(e.status, "bad_request", e.message) from None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None

    async def _app_password(self, password: str, ip: str):
        """A Burrow API token given as Pi-hole's app password: its Principal. A wrong one counts
        toward the sign-in lockout as a wrong password does."""
        auth = self.s.auth
        account = auth.ADMIN_PASSWORD_ACCOUNT
        wait = auth.lockout.retry_after(account, ip)
        if wait > 0:
            raise LockedOutError(wait)
        try:
            principal = auth.authenticate_api_token(password)
        except AuthError:
            auth.lockout.record_failure(account, ip)
            raise
        auth.lockout.record_success(account, ip)
        return principal


def blocking_state(s: Services) -> dict:
    """``{"blocking": "enabled"|"disabled", "timer": seconds left or null}`` (api/dns.yaml)."""
    paused = s.pause.group_paused(None)
    left = s.pause.remaining(None) if paused else None
    return {"blocking": "disabled" if paused else "enabled",
            "timer": None if left is None else round(left, 1)}
