"""/api/auth, /api/users and /api/tokens through the real route wrapper and a REAL AuthService.

The fake app holds only what these routes use: an AuthService on a SettingsDB in tmp_path
(with a hand-moved clock, so TOTP steps and lockout windows are exact), a recording EventBus,
the config and the access list. Nothing in auth is mocked.
"""

from __future__ import annotations

import asyncio

import pyotp
import pytest
from microdot.test_client import TestClient

from burrow.api import auth_api, users_api
from burrow.api.auth_api import REFRESH_COOKIE, REFRESH_HINT_COOKIE
from burrow.api.origin import Site
from burrow.api.routes import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, Api, WebSettings
from burrow.auth import AuthService
from burrow.dns.access import AccessControl
from burrow.storage.settings import SettingsDB
from burrow.telemetry.events import EventBus

ADMIN_PW = "correct horse battery"
VIEWER_PW = "Viewer-pass-2024"
NEW_PW = "battery staple horse 9"
START = 1_700_000_000.0
SECRET_WORDS = ("password", "secret", "hash", "token", "totp", "code")


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class RecordingBus(EventBus):
    """The real bus, remembering what was published on "events"."""

    def __init__(self):
        super().__init__()
        self.audit_log: list[dict] = []

    def publish(self, topic, payload):
        if topic == "events":
            self.audit_log.append(payload)
        return super().publish(topic, payload)

    def types(self):
        return [e["type"] for e in self.audit_log]

    def last(self, type_):
        return [e for e in self.audit_log if e["type"] == type_][-1]


class FakeApp:
    version = "test"

    def __init__(self, tmp_path, networks=("127.0.0.0/8", "::1/128")):
        self.clock = Clock()
        self.settings = SettingsDB(tmp_path / "settings.db")
        self.auth = AuthService(self.settings, tmp_path, clock=self.clock)
        self.events = RecordingBus()
        self.auth.set_event_sink(lambda event: self.events.publish("events", event))
        self.config = {"access.allowed_networks": list(networks)}
        self.acl = AccessControl(list(networks))


def build_api(app, settings=None, **limits):
    api = Api(app.auth, Site(app.config), settings=settings or WebSettings(),
              **({"auth_burst": 1000, "auth_rps": 1000.0, "burst": 1000, "rps": 1000.0} | limits))
    auth_api.register(api, auth=app.auth, events=app.events, acl=app.acl)
    users_api.register(api, auth=app.auth, events=app.events)
    return api


class Http:
    """A TestClient (it keeps cookies, like a browser) with a synchronous call."""

    def __init__(self, api):
        self.client = TestClient(api.web)

    def __call__(self, method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return asyncio.run(self.client.request(method, path, headers=h, body=body))


@pytest.fixture
def app(tmp_path):
    a = FakeApp(tmp_path)
    yield a
    a.settings.close()


@pytest.fixture
def http(app):
    return Http(build_api(app))


def setup_admin(http, username="admin", password=ADMIN_PW):
    res = http("POST", "/api/auth/setup", {"username": username, "password": password})
    assert res.status_code == 201, res.text
    return res.json


def login(http, username="admin", password=ADMIN_PW, **extra):
    res = http("POST", "/api/auth/login", {"username": username, "password": password, **extra})
    assert res.status_code == 200, res.text
    return res.json


@pytest.fixture
def admin_token(http):
    setup_admin(http)
    return login(http)["access_token"]


@pytest.fixture
def viewer_token(http, admin_token):
    res = http("POST", "/api/users", {"username": "vera", "password": VIEWER_PW, "role": "viewer"},
               token=admin_token)
    assert res.status_code == 201, res.text
    return login(http, "vera", VIEWER_PW)["access_token"]


def assert_error(res, status, error=None, field=None):
    assert res.status_code == status, res.text
    body = res.json
    assert body["code"] == status and body["message"] and body["timestamp"]
    if error is not None:
        assert body["error"] == error, body
    if field is not None:
        assert field in [d["field"] for d in body.get("details") or []], body
    return body


def assert_no_secrets(event, *secrets):
    """No password or token value anywhere in the event, no secret-looking key in its data."""
    text = repr(event)
    for value in (ADMIN_PW, VIEWER_PW, NEW_PW, "brw_", *secrets):
        assert value not in text, (value, event)

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)
    for key in keys(event.get("data") or {}):
        assert not any(w in key.lower() for w in SECRET_WORDS), (key, event)


def set_cookies(res) -> list[str]:
    value = res.headers.get("Set-Cookie", [])
    return value if isinstance(value, list) else [value]


# ---- setup ----------------------------------------------------------------------------------------

def test_setup_creates_the_first_admin_once(app, http):
    user = setup_admin(http)
    assert user["username"] == "admin" and user["role"] == "admin" and user["id"] >= 1
    assert "password" not in repr(user).lower()
    event = app.events.last("auth.setup")
    assert event["actor"] == "admin" and event["client_ip"] == "127.0.0.1"
    assert_no_secrets(event)
    res = http("POST", "/api/auth/setup", {"username": "eve", "password": "another long passphrase"})
    assert_error(res, 409, "conflict")
    assert [u["username"] for u in app.auth.list_users()] == ["admin"]


def test_setup_validates_and_names_the_field(http):
    assert_error(http("POST", "/api/auth/setup", {"password": ADMIN_PW}), 400, field="username")
    assert_error(http("POST", "/api/auth/setup", {"username": "admin", "password": "short"}),
                 400, "weak_password", field="password")
    assert_error(http("POST", "/api/auth/setup", {"username": "ad min", "password": ADMIN_PW}),
                 400, field="username")
    assert_error(http("POST", "/api/auth/setup", {"username": "admin", "password": ADMIN_PW,
                                                  "role": "x"}), 400, field="role")
    res = http("POST", "/api/auth/setup", body=b"not json", headers={"Content-Type": "text/plain"})
    assert_error(res, 415)


def test_setup_from_outside_the_allowed_networks_is_refused(tmp_path):
    app = FakeApp(tmp_path, networks=["192.168.0.0/16"])  # the test client is 127.0.0.1
    http = Http(build_api(app))
    res = http("POST", "/api/auth/setup", {"username": "admin", "password": ADMIN_PW})
    assert_error(res, 403, "forbidden")
    assert not app.auth.has_users()
    app.settings.close()


# ---- login, lockout, refresh, logout ---------------------------------------------------------------

def test_login_answers_the_documented_pair(app, http):
    setup_admin(http)
    res = http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert res.status_code == 200
    assert set(res.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert res.json["token_type"] == "bearer" and res.json["expires_in"] == 900
    assert res.headers.get("Cache-Control") == "no-store"
    assert "Set-Cookie" not in res.headers
    me = http("GET", "/api/auth/me", token=res.json["access_token"]).json
    assert me["username"] == "admin" and me["via"] == "jwt" and me["scope"] == "admin"
    assert me["can_write"] is True and me["token_id"] is None


def test_wrong_password_and_unknown_user_look_the_same(http):
    setup_admin(http)
    a = assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": "wrong one!!"}),
                     401, "unauthorized")
    b = assert_error(http("POST", "/api/auth/login", {"username": "nobody", "password": "wrong one!!"}),
                     401, "unauthorized")
    assert a["message"] == b["message"]
    assert_error(http("POST", "/api/auth/login", {"username": "admin"}), 400, field="password")


def test_lockout_after_five_failures_refuses_even_the_right_password(app, http):
    setup_admin(http)
    for _ in range(5):
        assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": "nope nope 1"}), 401)
    res = http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert_error(res, 429, "locked_out")
    assert 0 < int(res.headers["Retry-After"]) <= 15 * 60 + 1
    assert {"auth.login_failed", "auth.locked_out", "auth.login_refused"} <= set(app.events.types())
    app.clock.advance(15 * 60 + 1)
    login(http)


def test_auth_routes_have_the_stricter_rate_limit(app):
    http = Http(build_api(app, auth_burst=3, auth_rps=0.001))
    statuses = [http("POST", "/api/auth/login", {"username": "x", "password": "y"}).status_code
                for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
    assert http("GET", "/api/auth/me").status_code == 401  # other routes use the general limit


def test_refresh_rotates_and_reuse_revokes_the_family(app, http):
    setup_admin(http)
    first = login(http)
    res = http("POST", "/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert res.status_code == 200, res.text
    second = res.json
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert http("GET", "/api/auth/me", token=second["access_token"]).status_code == 200
    # The spent token again: refused, and the whole family with it.
    assert_error(http("POST", "/api/auth/refresh", {"refresh_token": first["refresh_token"]}), 401)
    assert_error(http("POST", "/api/auth/refresh", {"refresh_token": second["refresh_token"]}), 401)
    assert_error(http("GET", "/api/auth/me", token=second["access_token"]), 401)
    assert "auth.refresh_reuse" in app.events.types()
    assert_error(http("POST", "/api/auth/refresh", {}), 400, field="refresh_token")


def test_logout_revokes_the_session_only(http):
    setup_admin(http)
    one, two = login(http), login(http)
    res = http("POST", "/api/auth/logout", token=one["access_token"])
    assert res.status_code == 200 and res.json["status"] == "ok"
    assert_error(http("GET", "/api/auth/me", token=one["access_token"]), 401)
    assert_error(http("POST", "/api/auth/refresh", {"refresh_token": one["refresh_token"]}), 401)
    assert http("GET", "/api/auth/me", token=two["access_token"]).status_code == 200
    assert_error(http("POST", "/api/auth/logout"), 401)


def test_forged_tokens_are_refused(http, admin_token):
    import jwt
    claims = jwt.decode(admin_token, options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    other_key = jwt.encode(claims, b"k" * 32, algorithm="HS256")
    for token in (unsigned, other_key, admin_token[:-3] + "abc", "brw_not-a-token"):
        assert_error(http("GET", "/api/auth/me", token=token), 401)


# ---- own password and 2FA -------------------------------------------------------------------------

def test_change_password(app, http, admin_token):
    res = http("POST", "/api/auth/password", {"current_password": "not it at all", "new_password": NEW_PW},
               token=admin_token)
    assert_error(res, 400, field="current_password")
    res = http("POST", "/api/auth/password", {"current_password": ADMIN_PW, "new_password": "short"},
               token=admin_token)
    assert_error(res, 400, "weak_password", field="new_password")
    res = http("POST", "/api/auth/password", {"current_password": ADMIN_PW, "new_password": NEW_PW},
               token=admin_token)
    assert res.status_code == 200, res.text
    assert_error(http("GET", "/api/auth/me", token=admin_token), 401)  # every session ends
    assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW}), 401)
    login(http, password=NEW_PW)
    event = app.events.last("user.password_changed")
    assert event["actor"] == "admin"
    assert_no_secrets(event)


def test_totp_enrol_confirm_login_replay_recovery_disable(app, http, admin_token):
    res = http("POST", "/api/auth/2fa/enrol", token=admin_token)
    assert res.status_code == 200, res.text
    info = res.json
    assert info["provisioning_uri"].startswith("otpauth://totp/") and "<svg" in info["qr_svg"]
    totp = pyotp.TOTP(info["secret"])
    assert_error(http("POST", "/api/auth/2fa/confirm", {"code": "000000" if totp.at(START) != "000000"
                                                         else "111111"}, token=admin_token),
                 400, field="code")
    res = http("POST", "/api/auth/2fa/confirm", {"code": totp.at(app.clock.now)}, token=admin_token)
    assert res.status_code == 200, res.text
    recovery = res.json["recovery_codes"]
    assert len(recovery) == 10 and len(set(recovery)) == 10
    assert "auth.2fa_enabled" in app.events.types()

    res = http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW})
    assert_error(res, 401, "totp_required")
    # The code already used to confirm is spent (same time step): a replay is refused.
    assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW,
                                                  "totp": totp.at(app.clock.now)}), 401, "unauthorized")
    app.clock.advance(30)
    code = totp.at(app.clock.now)
    token = login(http, totp=int(code))["access_token"]  # a number works too
    assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW,
                                                  "totp": code}), 401)
    login(http, totp=recovery[0])
    assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW,
                                                  "totp": recovery[0]}), 401)
    me = http("GET", "/api/auth/me", token=token).json
    assert me["totp_enabled"] is True and me["recovery_codes_left"] == 9

    assert_error(http("POST", "/api/auth/2fa/disable", {"code_or_password": "wrong password!"},
                      token=token), 400, field="code_or_password")
    res = http("POST", "/api/auth/2fa/disable", {"code_or_password": ADMIN_PW}, token=token)
    assert res.status_code == 200, res.text
    login(http)
    assert_error(http("POST", "/api/auth/2fa/disable", {"code_or_password": ADMIN_PW}, token=token),
                 409, "conflict")


def test_api_tokens_cannot_change_password_or_2fa_or_log_out(http, admin_token):
    token = http("POST", "/api/tokens", {"name": "script", "scope": "admin"}, token=admin_token).json["token"]
    assert_error(http("POST", "/api/auth/2fa/enrol", token=token), 403, "forbidden")
    assert_error(http("POST", "/api/auth/password", {"current_password": ADMIN_PW, "new_password": NEW_PW},
                      token=token), 403)
    assert_error(http("POST", "/api/auth/logout", token=token), 400, "not_a_session")
    me = http("GET", "/api/auth/me", token=token).json
    assert me["via"] == "token" and me["scope"] == "admin" and isinstance(me["token_id"], int)


# ---- cookies and CSRF -----------------------------------------------------------------------------

def test_cookie_login_sets_httponly_samesite_cookies_and_csrf_is_enforced(app, http):
    setup_admin(http)
    res = http("POST", "/api/auth/login?cookie=true", {"username": "admin", "password": ADMIN_PW})
    assert res.status_code == 200, res.text
    assert set(res.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    cookies = {c.split("=", 1)[0]: c for c in set_cookies(res)}
    session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
    assert session.startswith(f"{SESSION_COOKIE}={res.json['access_token']};")
    for c in (session, csrf):
        assert "SameSite=Strict" in c and "Path=/" in c and "Secure" not in c
    assert "HttpOnly" in session and "HttpOnly" not in csrf
    csrf_value = csrf.split(";")[0].split("=", 1)[1]
    assert len(csrf_value) >= 32

    # The TestClient keeps the cookies like a browser; no Authorization header from here on.
    me = http("GET", "/api/auth/me")
    assert me.status_code == 200 and me.json["via"] == "cookie"
    assert "Access-Control-Allow-Origin" not in me.headers  # never CORS '*' with a cookie
    body = {"name": "from-the-page", "scope": "read"}
    assert_error(http("POST", "/api/tokens", body), 403, "csrf_failed")
    assert_error(http("POST", "/api/tokens", body, headers={CSRF_HEADER: "guess"}), 403, "csrf_failed")
    res = http("POST", "/api/tokens", body, headers={CSRF_HEADER: csrf_value})
    assert res.status_code == 201, res.text

    assert_error(http("POST", "/api/auth/logout"), 403, "csrf_failed")
    res = http("POST", "/api/auth/logout", headers={CSRF_HEADER: csrf_value})
    assert res.status_code == 200
    cleared = {c.split("=", 1)[0]: c for c in set_cookies(res)}
    assert "Max-Age=0" in cleared[SESSION_COOKIE] and "Max-Age=0" in cleared[CSRF_COOKIE]
    assert http("GET", "/api/auth/me").status_code == 401


@pytest.mark.parametrize("tls", [False, True])
def test_secure_cookies_follow_the_typed_tls_setting_and_plain_http_never_gets_hsts(tmp_path, tls):
    """While HTTPS serves (WebSettings.tls), cookies are Secure; HSTS goes only on answers sent
    over HTTPS (tests/integration/test_encrypted_dns.py), never on these plain-HTTP ones."""
    app = FakeApp(tmp_path)
    http = Http(build_api(app, WebSettings(tls=tls, hsts=True)))
    res = http("POST", "/api/auth/setup", {"username": "admin", "password": ADMIN_PW})
    assert res.status_code == 201
    assert "Strict-Transport-Security" not in res.headers
    res = http("POST", "/api/auth/login?cookie=1", {"username": "admin", "password": ADMIN_PW})
    assert len(set_cookies(res)) == 4
    assert all(("; Secure" in c) is tls for c in set_cookies(res))
    csrf = {c.split("=", 1)[0]: c for c in set_cookies(res)}[CSRF_COOKIE].split(";")[0].split("=", 1)[1]
    cleared = http("POST", "/api/auth/logout", headers={CSRF_HEADER: csrf})
    assert cleared.status_code == 200 and all(("; Secure" in c) is tls for c in set_cookies(cleared))
    app.settings.close()


def test_the_app_serves_plain_http_until_the_tls_service_opens_https(tmp_path):
    """The composition root starts with plain HTTP; the TLS service's HTTPS listener turns it
    on (App._https_changed), and off again when it closes."""
    from burrow import config as config_mod
    from burrow.app import App
    cfg = config_mod.load(None, environ={}).with_overrides({"storage.data_dir": str(tmp_path)})
    app = App(cfg)
    assert app.web_settings == WebSettings(tls=False)
    app._https_changed(8443, True)
    assert app.web_settings == WebSettings(tls=True, hsts=True, https_port=8443)
    app._https_changed(None, True)
    assert app.web_settings == WebSettings(tls=False)


def test_a_cookie_session_renews_from_its_refresh_cookie_without_the_password(app, http):
    setup_admin(http)
    res = http("POST", "/api/auth/login?cookie=true", {"username": "admin", "password": ADMIN_PW})
    cookies = {c.split("=", 1)[0]: c for c in set_cookies(res)}
    refresh, hint = cookies[REFRESH_COOKIE], cookies[REFRESH_HINT_COOKIE]
    assert refresh.startswith(f"{REFRESH_COOKIE}={res.json['refresh_token']};")
    assert "HttpOnly" in refresh and "Path=/api/auth/refresh;" in refresh and "SameSite=Strict" in refresh
    assert f"Max-Age={app.auth.refresh_ttl}" in refresh
    assert hint.startswith(f"{REFRESH_HINT_COOKIE}=1;") and "HttpOnly" not in hint  # no secret in it

    # {} and the cookie: a new pair, new cookies; the old refresh token is spent.
    renewed = http("POST", "/api/auth/refresh?cookie=true", {})
    assert renewed.status_code == 200, renewed.text
    new = {c.split("=", 1)[0]: c for c in set_cookies(renewed)}
    assert new[REFRESH_COOKIE].startswith(f"{REFRESH_COOKIE}={renewed.json['refresh_token']};")
    assert renewed.json["refresh_token"] != res.json["refresh_token"]
    assert http("GET", "/api/auth/me").json["via"] == "cookie"

    # A body token still wins over the cookie (seed shape); the spent one is refused.
    assert_error(http("POST", "/api/auth/refresh", {"refresh_token": res.json["refresh_token"]}), 401)


def test_a_spent_refresh_cookie_is_refused_and_dropped(app, http):
    setup_admin(http)
    res = http("POST", "/api/auth/login?cookie=true", {"username": "admin", "password": ADMIN_PW})
    spent = res.json["refresh_token"]
    assert http("POST", "/api/auth/refresh", {"refresh_token": spent}).status_code == 200
    # The browser still holds the spent token in its cookie.
    refused = http("POST", "/api/auth/refresh?cookie=true", {})
    assert_error(refused, 401, "unauthorized")
    cleared = {c.split("=", 1)[0]: c for c in set_cookies(refused)}
    for name in (SESSION_COOKIE, CSRF_COOKIE, REFRESH_COOKIE, REFRESH_HINT_COOKIE):
        assert "Max-Age=0" in cleared[name], name


def test_refresh_with_neither_token_nor_cookie_is_400_naming_the_field(app, http):
    setup_admin(http)
    assert_error(http("POST", "/api/auth/refresh", {}), 400, field="refresh_token")


# ---- users ----------------------------------------------------------------------------------------

def test_users_crud_with_audit_events(app, http, admin_token):
    res = http("POST", "/api/users", {"username": "vera", "password": VIEWER_PW, "role": "viewer"},
               token=admin_token)
    assert res.status_code == 201, res.text
    vera = res.json
    assert vera["role"] == "viewer" and "password" not in repr(vera).lower()
    event = app.events.last("user.created")
    assert event["actor"] == "admin" and event["data"]["after"]["username"] == "vera"
    assert_no_secrets(event)

    listed = http("GET", "/api/users", token=admin_token).json
    assert listed["total"] == 2 and [u["username"] for u in listed["users"]] == ["admin", "vera"]
    assert http("GET", f"/api/users/{vera['id']}", token=admin_token).json == vera
    assert_error(http("GET", "/api/users/999", token=admin_token), 404)

    res = http("PUT", f"/api/users/{vera['id']}", {"role": "admin", "password": NEW_PW}, token=admin_token)
    assert res.status_code == 200 and res.json["role"] == "admin"
    event = app.events.last("user.updated")
    assert event["data"]["before"]["role"] == "viewer" and event["data"]["after"]["role"] == "admin"
    assert event["data"]["changed"] == ["password", "role"]
    assert_no_secrets(event)
    login(http, "vera", NEW_PW)

    res = http("DELETE", f"/api/users/{vera['id']}", token=admin_token)
    assert res.status_code == 200 and res.json == {"status": "deleted", "id": vera["id"]}
    assert app.events.last("user.deleted")["data"]["before"]["username"] == "vera"
    assert_error(http("DELETE", f"/api/users/{vera['id']}", token=admin_token), 404)


def test_user_validation_and_conflicts(app, http, admin_token):
    admin_id = app.auth.get_user("admin")["id"]
    assert_error(http("POST", "/api/users", {"username": "vera", "password": VIEWER_PW, "role": "root"},
                      token=admin_token), 400, field="role")
    assert_error(http("POST", "/api/users", {"username": "vera", "password": "weak"}, token=admin_token),
                 400, "weak_password", field="password")
    assert_error(http("POST", "/api/users", {"username": "vera", "password": VIEWER_PW, "extra": 1},
                      token=admin_token), 400, field="extra")
    res = http("POST", "/api/users", {"username": "vera", "password": VIEWER_PW}, token=admin_token)
    assert res.status_code == 201 and res.json["role"] == "viewer"  # the default role
    assert_error(http("POST", "/api/users", {"username": "VERA", "password": VIEWER_PW},
                      token=admin_token), 409, "conflict")
    assert_error(http("PUT", f"/api/users/{admin_id}", {}, token=admin_token), 400)
    assert_error(http("PUT", f"/api/users/{admin_id}", {"disabled": "maybe"}, token=admin_token),
                 400, field="disabled")
    assert_error(http("PUT", f"/api/users/{admin_id}", {"role": "viewer"}, token=admin_token), 409)
    assert_error(http("DELETE", f"/api/users/{admin_id}", token=admin_token), 409)
    assert_error(http("PUT", "/api/users/999", {"role": "viewer"}, token=admin_token), 404)


def test_disabling_a_user_ends_their_sessions(app, http, viewer_token, admin_token):
    vera = app.auth.get_user("vera")
    res = http("PUT", f"/api/users/{vera['id']}", {"disabled": True}, token=admin_token)
    assert res.status_code == 200 and res.json["disabled"] is True
    assert_error(http("GET", "/api/auth/me", token=viewer_token), 401)
    assert_error(http("POST", "/api/auth/login", {"username": "vera", "password": VIEWER_PW}), 401)


def test_viewer_cannot_manage_users(http, viewer_token):
    for method, path, body in (("GET", "/api/users", None), ("GET", "/api/users/1", None),
                               ("POST", "/api/users", {"username": "x1", "password": VIEWER_PW}),
                               ("PUT", "/api/users/1", {"role": "viewer"}),
                               ("DELETE", "/api/users/1", None)):
        assert_error(http(method, path, body, token=viewer_token), 403, "forbidden")
    me = http("GET", "/api/auth/me", token=viewer_token).json
    assert me["role"] == "viewer" and me["can_write"] is False and me["scope"] == "read"


# ---- API tokens -----------------------------------------------------------------------------------

def test_tokens_lifecycle(app, http, admin_token, viewer_token):
    res = http("POST", "/api/tokens", {"name": "grafana", "scope": "read"}, token=viewer_token)
    assert res.status_code == 201, res.text
    created = res.json
    assert created["token"].startswith("brw_") and created["scope"] == "read"
    assert res.headers.get("Cache-Control") == "no-store"
    event = app.events.last("token.created")
    assert event["actor"] == "vera" and event["data"]["after"]["name"] == "grafana"
    assert_no_secrets(event)

    # The token works, read-only; its secret is never listed.
    me = http("GET", "/api/auth/me", token=created["token"]).json
    assert me["via"] == "token" and me["username"] == "vera" and me["can_write"] is False
    own = http("GET", "/api/tokens", token=viewer_token).json["tokens"]
    assert [t["name"] for t in own] == ["grafana"] and "token" not in own[0]
    assert created["token"] not in repr(own)

    assert_error(http("POST", "/api/tokens", {"name": "grafana"}, token=viewer_token), 409)
    assert_error(http("POST", "/api/tokens", {"name": "x", "scope": "root"}, token=viewer_token),
                 400, field="scope")
    assert_error(http("POST", "/api/tokens", {"scope": "read"}, token=viewer_token), 400, field="name")
    assert_error(http("POST", "/api/tokens", {"name": "ha", "scope": "admin"}, token=viewer_token),
                 403, "forbidden")
    assert_error(http("GET", "/api/tokens?all=true", token=viewer_token), 403)

    admins = http("POST", "/api/tokens", {"name": "ha", "scope": "admin"}, token=admin_token).json
    assert admins["scope"] == "admin"
    assert [t["name"] for t in http("GET", "/api/tokens", token=admin_token).json["tokens"]] == ["ha"]
    everyone = http("GET", "/api/tokens?all=true", token=admin_token).json["tokens"]
    assert {t["name"] for t in everyone} == {"grafana", "ha"}

    # A viewer cannot touch someone else's token; an admin can revoke anyone's.
    assert_error(http("DELETE", f"/api/tokens/{admins['id']}", token=viewer_token), 404)
    res = http("DELETE", f"/api/tokens/{created['id']}", token=admin_token)
    assert res.status_code == 200 and res.json == {"status": "revoked", "id": created["id"]}
    assert_error(http("GET", "/api/auth/me", token=created["token"]), 401)
    event = app.events.last("token.revoked")
    assert event["actor"] == "admin" and event["data"]["before"]["name"] == "grafana"
    assert_no_secrets(event)
    res = http("DELETE", f"/api/tokens/{admins['id']}", token=admin_token)
    assert res.status_code == 200
    assert_error(http("DELETE", f"/api/tokens/{admins['id']}", token=admin_token), 404)


def test_read_scoped_token_cannot_mint_an_admin_token_or_write(http, admin_token):
    read = http("POST", "/api/tokens", {"name": "ro", "scope": "read"}, token=admin_token).json["token"]
    assert_error(http("POST", "/api/tokens", {"name": "escalate", "scope": "admin"}, token=read),
                 403, "forbidden")
    assert_error(http("GET", "/api/users", token=read), 403)
    assert_error(http("POST", "/api/users", {"username": "x1", "password": VIEWER_PW}, token=read), 403)
    # A read token reads only, its own account included: no token minting (issue 20, item 7).
    assert_error(http("POST", "/api/tokens", {"name": "ro2", "scope": "read"}, token=read), 403,
                 "forbidden")


def test_every_route_here_is_documented_with_valid_examples(app):
    from burrow.api.schema import _MISSING, Obj
    api = build_api(app)
    assert {(r.method, r.path) for r in api.routes} >= {
        ("POST", "/api/auth/setup"), ("POST", "/api/auth/login"), ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"), ("GET", "/api/auth/me"), ("POST", "/api/auth/password"),
        ("POST", "/api/auth/2fa/enrol"), ("POST", "/api/auth/2fa/confirm"),
        ("POST", "/api/auth/2fa/disable"), ("GET", "/api/users"), ("POST", "/api/users"),
        ("GET", "/api/users/<int:user_id>"), ("PUT", "/api/users/<int:user_id>"),
        ("DELETE", "/api/users/<int:user_id>"), ("GET", "/api/tokens"), ("POST", "/api/tokens"),
        ("DELETE", "/api/tokens/<int:token_id>")}
    for route in api.routes:
        for schema in [route.body, *route.responses.values()]:
            if isinstance(schema, Obj):
                assert schema.example is not _MISSING, (route.path, schema.name)
                schema.validate(schema.example)
    roles = {(r.method, r.path): r.role for r in api.routes}
    assert all(role == "admin" for (m, p), role in roles.items() if p.startswith("/api/users"))
    assert {roles[("POST", p)] for p in ("/api/auth/setup", "/api/auth/login", "/api/auth/refresh")} == {"public"}


# ---- "stay signed in on this device" ------------------------------------------------------------

def _cookie_map(res) -> dict[str, str]:
    return {c.split("=", 1)[0]: c for c in set_cookies(res)}


def test_remember_false_gives_browser_session_cookies_and_a_short_server_session(app, http):
    setup_admin(http)
    short = app.auth.session_ttl(False)
    assert short == 12 * 3600 < app.auth.refresh_ttl  # bounded by the server's maximum either way
    res = http("POST", "/api/auth/login?cookie=true", {"username": "admin", "password": ADMIN_PW,
                                                        "remember": False})
    assert res.status_code == 200, res.text
    cookies = _cookie_map(res)
    assert len(cookies) == 4 and all("Max-Age" not in c and "Expires" not in c for c in cookies.values())
    # Renewal keeps the session short and its cookies session-only.
    app.clock.advance(short - 60)
    renewed = http("POST", "/api/auth/refresh?cookie=true", {})
    assert renewed.status_code == 200, renewed.text
    assert all("Max-Age" not in c for c in _cookie_map(renewed).values())
    # Unused for longer than the short lifetime: the session is over on the server too.
    app.clock.advance(short + 1)
    assert_error(http("POST", "/api/auth/refresh", {"refresh_token": renewed.json["refresh_token"]}), 401)


def test_remember_true_keeps_the_session_for_the_server_maximum(app, http):
    setup_admin(http)
    res = http("POST", "/api/auth/login?cookie=true", {"username": "admin", "password": ADMIN_PW,
                                                        "remember": True})
    cookies = _cookie_map(res)
    assert f"Max-Age={app.auth.refresh_ttl}" in cookies[REFRESH_COOKIE]
    assert f"Max-Age={app.auth.refresh_ttl}" in cookies[REFRESH_HINT_COOKIE]
    assert f"Max-Age={res.json['expires_in']}" in cookies[SESSION_COOKIE]
    # Past the short lifetime it still renews; past the server's maximum it does not.
    app.clock.advance(app.auth.session_ttl(False) + 3600)
    renewed = http("POST", "/api/auth/refresh?cookie=true", {})
    assert renewed.status_code == 200 and f"Max-Age={app.auth.refresh_ttl}" in _cookie_map(renewed)[REFRESH_COOKIE]
    app.clock.advance(app.auth.refresh_ttl + 1)
    assert_error(http("POST", "/api/auth/refresh", {"refresh_token": renewed.json["refresh_token"]}), 401)


def test_remember_must_be_a_boolean(http):
    setup_admin(http)
    assert_error(http("POST", "/api/auth/login", {"username": "admin", "password": ADMIN_PW,
                                                  "remember": "yes"}), 400, field="remember")


# ---- the pending enrolment's QR code as an image --------------------------------------------------

def test_pending_2fa_qr_is_an_svg_image_until_confirmed(app, http, admin_token):
    assert_error(http("GET", "/api/auth/2fa/qr.svg", token=admin_token), 409, "conflict")
    info = http("POST", "/api/auth/2fa/enrol", token=admin_token).json
    res = http("GET", "/api/auth/2fa/qr.svg", token=admin_token)
    assert res.status_code == 200 and res.headers["Content-Type"].startswith("image/svg+xml")
    assert res.headers["Cache-Control"] == "no-store" and res.text == info["qr_svg"]
    assert http("GET", "/api/auth/2fa/qr.svg").status_code == 401
    totp = pyotp.TOTP(info["secret"])
    assert http("POST", "/api/auth/2fa/confirm", {"code": totp.at(app.clock.now)}, token=admin_token).status_code == 200
    assert_error(http("GET", "/api/auth/2fa/qr.svg", token=admin_token), 409, "conflict")
