"""Property-based: no request makes the API answer 500 (issue 3).

The real ``burrow`` process is started, the admin signs in, and ``/openapi.json`` is fetched.
For EVERY operation in it, hypothesis generates requests from the document itself: bodies
from the requestBody schema (valid ones, documented examples, and deliberately broken ones:
wrong types, missing or unknown fields, junk bytes, other JSON, wrong content type, deep
nesting, lone surrogates, huge numbers, an oversized body), path parameters (ints, huge
numbers, strings, unicode, traversal strings) and query parameters (schema values and junk,
invalid durations and times among them), sent with the admin's token, another user's, a
garbage one or none, each from a loopback source address rotated over 127.0.0.10-250 so the
per-IP rate limits and lockouts of one request do not decide the next (429 is a fine answer).

Every answer must be < 500 (503 from a part the fuzz itself switched off, such as the cache,
is accepted), and every 4xx (and that 503) must carry the one error shape
``{"error", "code", "message", "timestamp"}`` with ``code`` equal to the status. At the end
the process is alive, /healthz answers 200 and its log has no "unhandled error".

The schemas are turned into strategies by ``strategy_for`` below (a small converter for the
JSON-Schema subset the API's generator emits): hypothesis-jsonschema 0.23.1, the current
release, fails with this hypothesis version ("'many' object has no attribute 'more'").

Bounds: BURROW_FUZZ_EXAMPLES examples per operation (default 25) within BURROW_FUZZ_BUDGET
seconds overall (default 40), but at least 20 operations, those past the budget with 3
examples each (so a loaded machine still fuzzes that many); each request has a 10 s socket
timeout. The seed is random per run and printed on failure; BURROW_FUZZ_SEED=<n> replays a run.

Things the fuzz must not break for itself: the admin account it uses is never the target of
PUT/DELETE /api/users/{id} (a victim user is substituted), and logins never use its name; the
routes that end or lock a session (logout, own password, own 2FA) run with other accounts.
"""

from __future__ import annotations

import http.client
import ipaddress
import itertools
import json
import os
import random
import re
import time
import urllib.parse
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.support.api_client import admin_token, authed
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

SEED = int(os.environ.get("BURROW_FUZZ_SEED") or random.SystemRandom().randrange(2 ** 32))
MAX_EXAMPLES = int(os.environ.get("BURROW_FUZZ_EXAMPLES", "25"))
BUDGET = float(os.environ.get("BURROW_FUZZ_BUDGET", "40"))
MIN_OPS, MIN_EXAMPLES = 20, 3  # operations fuzzed even past the budget, with this many examples
REQUEST_TIMEOUT = 10.0
SOURCES = [f"127.0.0.{i}" for i in range(10, 251)]
USER_PW = "Fuzz-account-pass-77"
ERROR_KEYS = {"error", "code", "message", "timestamp"}
# Routes that end or lock the caller's own session: run with throwaway accounts.
SESSION_ENDING = {("POST", "/api/auth/logout")}
OWN_ACCOUNT = {("POST", "/api/auth/password"), ("POST", "/api/auth/2fa/enrol"),
               ("POST", "/api/auth/2fa/confirm"), ("POST", "/api/auth/2fa/disable")}

# Values a real client sends, so that some requests get past validation to the handlers.
PLAUSIBLE = {
    "since": ["1h", "24h", "7d", "90m", "2025-11-22T10:00:00Z", "1700000000"],
    "until": ["1m", "2030-01-01T00:00:00Z"], "step": ["1m", "5m", "1h", "1d"],
    "client": ["127.0.0.1", "192.168.1.5", "::1"], "domain": ["example.com", "ads.example"],
    "type": ["auth.", "auth.login", "config.changed"], "format": ["csv", "json"],
}

# Routes allowed to answer errors outside the one shape (none now; keep the mechanism for a
# known gap with its own strict-xfail test).
SHAPE_GAPS: set = set()

INVALID_TIMES = ["", " ", "-1h", "1x", "h", "1", "0", "0m", "-0", "1.5h", "1e309", "nan", "inf",
                 "-inf", "999999999999999999999d", "9" * 64, "1h1h", "PT1H", "P1D", "24 h",
                 "2025-13-45T99:99:99Z", "2025-11-22T10:00:00", "2025-11-22T10:00:00+99:00",
                 "0000-00-00T00:00:00Z", "9999-12-31T23:59:59Z", "-2025-01-01T00:00:00Z",
                 "1700000000", "-1700000000", "1e20", "17000000000000000000000", "\u0661h",
                 "\uff11h", "1\u0000h", "%", "'; DROP TABLE events; --", "*", "true", "null"]
PATH_STRINGS = ["", "0", "-1", "00", "+5", " 7", "1.5", "1e3", "0x10", "abc", "null", "%00", "%",
                "..", "../", "../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc/passwd",
                "/etc/passwd", "//", "a/b/c", "....//....//etc/passwd", "..\\..\\windows\\win.ini",
                "\u0661\u0662", "\uff11", "\u00e9t\u00e9", "\U0001f600", "a" * 300, "9" * 40,
                str(2 ** 63), str(-(2 ** 63) - 1), str(10 ** 100), "swagger-ui.css", "init.js",
                "swagger-ui-bundle.js", ".git/config", "~root"]
CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "application/xml", "application/json-patch+json", "application/jsonx",
                 "application/json; charset=latin-1", "APPLICATION/JSON", "", "*/*"]


# ---- schemas → strategies ------------------------------------------------------------------------

def inline_refs(node, components: dict, depth: int = 0):
    """The schema with every local $ref replaced by the component it names."""
    if depth > 20:
        return {}
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return inline_refs(components.get(name, {}), components, depth + 1)
        return {k: inline_refs(v, components, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, components, depth + 1) for v in node]
    return node


def _string(schema: dict) -> st.SearchStrategy:
    lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", 80), 300)
    if schema.get("pattern"):
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
    return st.text(min_size=lo, max_size=max(lo, hi))


def _number(schema: dict, integer: bool) -> st.SearchStrategy:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if integer:
        return st.integers(min_value=None if lo is None else int(lo),
                           max_value=None if hi is None else int(hi))
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def strategy_for(schema: dict, depth: int = 0) -> st.SearchStrategy:
    """Values valid for ``schema`` (the subset burrow.api.schema emits: type, enum, bounds,
    lengths, pattern, properties/required/additionalProperties, items/minItems/maxItems)."""
    if depth > 6 or not isinstance(schema, dict):
        return st.none()
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    types = schema.get("type")
    if types is None:
        return json_values()
    if isinstance(types, list):
        return st.one_of(*[strategy_for({**schema, "type": t}, depth) for t in types])
    if types == "string":
        return _string(schema)
    if types == "integer":
        return _number(schema, True)
    if types == "number":
        return _number(schema, False)
    if types == "boolean":
        return st.booleans()
    if types == "null":
        return st.none()
    if types == "array":
        return st.lists(strategy_for(schema.get("items", {}), depth + 1),
                        min_size=schema.get("minItems", 0),
                        max_size=min(schema.get("maxItems", 5), 8))
    if types == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: strategy_for(v, depth + 1) for k, v in props.items() if k in required},
            optional={k: strategy_for(v, depth + 1) for k, v in props.items() if k not in required})
        if schema.get("additionalProperties") is True or isinstance(schema.get("additionalProperties"), dict):
            extra = st.dictionaries(st.text(max_size=10), json_values(), max_size=3)
            return st.tuples(extra, fixed).map(lambda t: {**t[0], **t[1]})
        return fixed
    return st.none()


def json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                        st.integers(min_value=2 ** 63, max_value=10 ** 40), st.integers(max_value=-(2 ** 63)),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
                        st.sampled_from(["", " ", "\u0000", "admin", "true", "1", "-1", "1h", "\ud800x",
                                         "a" * 2000, "../../etc/passwd"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
        max_leaves=12)


def _dumps(value) -> bytes:
    # json.dumps escapes lone surrogates (\ud800) instead of failing: the server gets them.
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def broken_object(draw, schema: dict):
    """A schema-shaped object with one thing wrong: a field of another type, a required field
    missing, an unknown field, or a value that is out of range or hostile."""
    props = schema.get("properties", {})
    base = dict(draw(strategy_for(schema))) if schema.get("type") == "object" else {}
    how = draw(st.sampled_from(["wrong_type", "drop_required", "unknown_field", "hostile"]))
    if how == "wrong_type" and props:
        key = draw(st.sampled_from(sorted(props)))
        base[key] = draw(json_values())
    elif how == "drop_required" and schema.get("required"):
        base.pop(draw(st.sampled_from(sorted(schema["required"]))), None)
    elif how == "hostile" and props:
        key = draw(st.sampled_from(sorted(props)))
        base[key] = draw(st.sampled_from([
            10 ** 30, -(10 ** 30), 2 ** 63, -(2 ** 63) - 1, 1e308, -1e308, float("inf"), float("nan"),
            "\ud800", "\udfff\ud800", "\x00" * 8, "x" * 5000, [], {},
            [None] * 50, True, 1.5, "١٢٣", "١٢٣٤٥٦", "１２３４５６", "0x10"]))
    else:
        base[draw(st.text(min_size=1, max_size=20).filter(lambda k: k not in props))] = draw(json_values())
    return base


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@st.composite
def body_for(draw, op: dict):
    """(bytes or None, content type or None, label) for an operation."""
    schema = op.get("_body_schema")
    kinds = ["none", "junk", "json_any", "content_type", "deep"]
    if schema is not None:
        kinds = ["schema"] * 4 + ["example", "broken", "broken"] + kinds + ["big"]
    if op.get("_stream_body"):
        kinds += ["gzip_junk"]
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None, None, kind
    if kind == "schema":
        return _dumps(draw(strategy_for(schema))), "application/json", kind
    if kind == "example":
        examples = schema.get("examples") or [draw(strategy_for(schema))]
        return _dumps(draw(st.sampled_from(examples))), "application/json", kind
    if kind == "broken":
        return _dumps(draw(broken_object(schema))), "application/json", kind
    if kind == "junk":
        return draw(st.binary(min_size=1, max_size=300)), draw(st.sampled_from(
            ["application/json", "application/octet-stream", "application/gzip"])), kind
    if kind == "json_any":
        return _dumps(draw(json_values())), "application/json", kind
    if kind == "content_type":
        value = draw(strategy_for(schema)) if schema else draw(json_values())
        return _dumps(value), draw(st.sampled_from(CONTENT_TYPES)), kind
    if kind == "deep":
        return deep(draw(st.sampled_from([5, 500, 1025, 5000, 50_000]))), "application/json", kind
    if kind == "big":
        return b'{"x": "' + b"a" * (70 * 1024) + b'"}', "application/json", kind
    # gzip_junk: a gzip header and then garbage, for archive uploads
    return b"\x1f\x8b\x08\x00" + draw(st.binary(max_size=200)), "application/gzip", kind


def _query_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@st.composite
def query_for(draw, params: list[dict]) -> list[tuple[str, str]]:
    out = []
    for p in params:
        if not draw(st.booleans()):
            continue
        schema = p.get("schema", {})
        choice = draw(st.sampled_from(["schema", "schema", "plausible", "plausible", "junk", "time", "empty"]))
        if choice == "plausible" and p["name"] in PLAUSIBLE:
            value = draw(st.sampled_from(PLAUSIBLE[p["name"]]))
        elif choice in ("schema", "plausible"):
            value = _query_value(draw(strategy_for(schema)))
        elif choice == "junk":
            value = draw(st.text(max_size=80))
        elif choice == "time":
            value = draw(st.sampled_from(INVALID_TIMES))
        else:
            value = ""
        out.append((p["name"], value))
    if draw(st.integers(0, 5)) == 0:
        out.append((draw(st.text(min_size=1, max_size=10)), draw(st.text(max_size=10))))
    if out and draw(st.integers(0, 5)) == 0:
        out.append(out[0])  # a repeated parameter
    return out


def _quote(value: str, safe: str) -> str:
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe=safe)


@st.composite
def path_value(draw, schema: dict) -> str:
    if schema.get("type") == "integer":
        raw = draw(st.one_of(st.integers(-5, 50).map(str), st.integers().map(str),
                             st.integers(min_value=2 ** 63, max_value=10 ** 60).map(str),
                             st.sampled_from(PATH_STRINGS), st.text(min_size=1, max_size=20)))
    else:
        raw = draw(st.one_of(st.sampled_from(PATH_STRINGS), st.text(min_size=1, max_size=40)))
    return _quote(raw, draw(st.sampled_from(["", "/", "/%"])))


# ---- the HTTP side -------------------------------------------------------------------------------

class Sender:
    """Raw HTTP/1.1 requests from rotating loopback source addresses; (status, headers, body)."""

    def __init__(self, srv):
        self.srv = srv
        self._sources = itertools.cycle(SOURCES)

    def source(self) -> str:
        return next(self._sources)

    def send(self, method: str, target: str, body: bytes | None = None, ctype: str | None = None,
             headers: dict | None = None, source: str | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.web_port, timeout=REQUEST_TIMEOUT,
                                          source_address=(source or self.source(), 0))
        try:
            hdrs = dict(headers or {})
            if ctype is not None:
                hdrs["Content-Type"] = ctype
            conn.putrequest(method, target, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                try:
                    conn.sock.sendall(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered (413) before reading it all; read the answer
            try:
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError):
                return None, None, b""  # closed without an answer (see check_answer)
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()


def malformed_target(target: str) -> bool:
    """True when the request target is not UTF-8 once percent-decoded: the server drops such
    a request without an answer (BurrowWeb._handle), which is fine; for anything else, a
    connection closed without an answer is a failure like a 500."""
    try:
        urllib.parse.unquote_to_bytes(target).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def check_answer(status: int | None, raw: bytes, what: str, target: str = "",
                 shape: bool = True) -> None:
    if status is None:
        assert malformed_target(target), f"{what} → connection closed without an answer"
        return
    if not shape:  # a known gap (see SHAPE_GAPS): only the status counts
        assert status < 500, f"{what} → {status}: {raw[:500]!r}"
        return
    # 503 is a deliberate answer when a part is switched off (POST /api/cache/purge after a
    # fuzzed PUT /api/config/cache turned caching off); any other 5xx is a failure.
    assert status < 500 or status == 503, f"{what} → {status}: {raw[:500]!r}"
    if 400 <= status < 600:
        try:
            body = json.loads(raw)
        except ValueError:
            raise AssertionError(f"{what} → {status} with a non-JSON body: {raw[:300]!r}") from None
        assert isinstance(body, dict) and ERROR_KEYS <= set(body), f"{what} → {status}: {body!r}"
        assert body["code"] == status, f"{what} → {status} but code {body['code']!r}"
        assert isinstance(body["message"], str) and isinstance(body["error"], str), f"{what}: {body!r}"


# ---- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("fuzz"), [up.address]) as b:
        b.test_upstream = up.address
        yield b


class Accounts:
    """The admin the fuzz signs in as, plus accounts it may damage."""

    def __init__(self, srv):
        self.srv = srv
        self.admin = admin_token(srv)
        status, me = authed(srv, self.admin, "GET", "/api/auth/me")
        assert status == 200, me
        self.admin_id = me["id"]
        self.protected_names = {"admin"}
        self.own = self._user("fuzz-own", "admin")  # own password / 2FA routes
        self.victims = [self._user(f"fuzz-victim{i}", "viewer")["id"] for i in range(3)]
        self.protected_ids = {self.admin_id, self.own["id"]}
        self._user("fuzz-out", "viewer")  # signs in afresh for every logout
        self._sources = (f"127.0.1.{i}" for i in itertools.cycle(range(1, 251)))
        self.own_token = self.login("fuzz-own")
        assert self.own_token

    def _user(self, name: str, role: str) -> dict:
        status, body = authed(self.srv, self.admin, "POST", "/api/users",
                              {"username": name, "password": USER_PW, "role": role})
        assert status == 201, body
        self.protected_names.add(name)
        return body

    def login(self, name: str) -> str | None:
        """A new session of ``name``, signed in from the next 127.0.1.x address (the auth
        rate limit is per address)."""
        status, body = self.srv.http("POST", "/api/auth/login", {"username": name, "password": USER_PW},
                                     source=next(self._sources))
        return body["access_token"] if status == 200 else None

    def throwaway_session(self) -> str | None:
        """A fresh session, for logout (which ends the session it is called with)."""
        return self.login("fuzz-out")


@pytest.fixture(scope="module")
def accounts(srv):
    return Accounts(srv)


@pytest.fixture(scope="module")
def openapi(srv):
    status, doc = srv.http("GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    return doc


def operations(doc: dict) -> list[dict]:
    components = doc.get("components", {}).get("schemas", {})
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
            ops.append({
                "method": method.upper(), "path": path, "id": op.get("operationId"),
                "role": op.get("x-role"),
                "params": [inline_refs(p, components) for p in op.get("parameters", [])],
                "_body_schema": inline_refs(body["schema"], components) if body else None,
                "_stream_body": path == "/api/backup/restore",
                "_no_body_fuzz": path.startswith("/ws/") or path.startswith("/docs")
                or path in ("/redoc", "/openapi.json"),
            })
    return ops


def _safe_user_target(accounts: Accounts, op: dict, value: str) -> str:
    """Never aim PUT/DELETE /api/users/{id} at the accounts the fuzz itself relies on."""
    if op["method"] not in ("PUT", "DELETE") or not op["path"].startswith("/api/users/"):
        return value
    try:
        target = int(urllib.parse.unquote(value).strip())
    except ValueError:
        return value
    if target in accounts.protected_ids:
        return str(accounts.victims[target % len(accounts.victims)])
    return value


def _safe_body(accounts: Accounts, srv, op: dict, body: bytes | None) -> bytes | None:
    if body is None or op["_body_schema"] is None:
        return body
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(value, dict):
        return body
    changed = False
    # Failed logins count against the account: keep away from the fuzz's own accounts.
    if op["path"] in ("/api/auth/login", "/api/auth/setup") and isinstance(value.get("username"), str) \
            and value["username"].strip().casefold() in {n.casefold() for n in accounts.protected_names}:
        value["username"] = "not-" + value["username"]
        changed = True
    # Loopback only: a valid upstream that is not on loopback becomes the test upstream.
    if op["path"] == "/api/config/upstreams" and isinstance(value.get("upstream_dns_servers"), list):
        fixed = []
        for item in value["upstream_dns_servers"]:
            host = item.rsplit(":", 1)[0].strip("[]") if isinstance(item, str) else ""
            try:
                if not ipaddress.ip_address(host).is_loopback:
                    item = srv.test_upstream
                    changed = True
            except ValueError:
                pass
            fixed.append(item)
        value["upstream_dns_servers"] = fixed
    return _dumps(value) if changed else body


def make_fuzz(op: dict, srv, accounts: Accounts, sender: Sender, counts: dict, examples: int = MAX_EXAMPLES):
    """The hypothesis test for one operation (a closure: @given takes no default arguments)."""
    key = (op["method"], op["path"])
    path_params = [p for p in op["params"] if p["in"] == "path"]
    query_params = [p for p in op["params"] if p["in"] == "query"]

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[Phase.explicit, Phase.generate], print_blob=True,
              suppress_health_check=list(HealthCheck))
    @seed(SEED)
    @given(data=st.data())
    def fuzz(data):
        # No deadline check in here: an example that stopped drawing when the budget ran out
        # would differ from its own replay, and hypothesis reports that as a flaky strategy.
        # The caller checks the budget between operations.
        path = op["path"]
        for p in path_params:
            value = _safe_user_target(accounts, op, data.draw(path_value(p.get("schema", {}))))
            path = path.replace("{" + p["name"] + "}", value)
        query = data.draw(query_for(query_params))
        target = path + ("?" + urllib.parse.urlencode(query, encoding="utf-8", errors="surrogatepass")
                         if query else "")
        body, ctype = None, None
        if not op["_no_body_fuzz"]:
            body, ctype, _ = data.draw(body_for(op))
            body = _safe_body(accounts, srv, op, body)
        who = data.draw(st.sampled_from(["user", "user", "user", "none", "garbage"]))
        headers = {}
        if who == "user":
            if key in SESSION_ENDING:
                token = accounts.throwaway_session()
            elif key in OWN_ACCOUNT:
                token = accounts.own_token
            else:
                token = accounts.admin
            if token:
                headers["Authorization"] = f"Bearer {token}"
        elif who == "garbage":
            headers["Authorization"] = data.draw(st.sampled_from([
                "Bearer", "Bearer ", "Bearer x.y.z", "Basic YWRtaW46YWRtaW4=", "Bearer brw_nope",
                "Bearer " + "a" * 5000, "bearer eyJhbGciOiJub25lIn0.e30.", "Token abc"]))
        what = f"{op['method']} {target[:300]} body={(body or b'')[:120]!r} ctype={ctype!r} auth={who}"
        status, _, raw = sender.send(op["method"], target, body, ctype, headers)
        counts.setdefault(op["id"], {}).setdefault(status, 0)
        counts[op["id"]][status] += 1
        check_answer(status, raw, what, target, shape=key not in SHAPE_GAPS)

    return fuzz


# ---- the tests -----------------------------------------------------------------------------------

@pytest.mark.timeout(600)  # the budget, the operation running when it ends, and MIN_OPS on a loaded machine
def test_no_request_makes_the_api_answer_500(srv, accounts, openapi):
    ops = operations(openapi)
    assert len(ops) >= 40, "the OpenAPI document lists too few operations"
    # A random order per seed: when a loaded machine spends the budget early, other runs reach
    # the operations this one did not (a fixed order always left the same tail unfuzzed).
    random.Random(SEED).shuffle(ops)
    sender = Sender(srv)
    deadline = time.monotonic() + BUDGET
    failures: list[str] = []
    counts: dict[str, int] = {}

    for done, op in enumerate(ops):
        examples = MAX_EXAMPLES
        if time.monotonic() > deadline:
            if done >= MIN_OPS:
                break
            examples = MIN_EXAMPLES  # a slow machine still reaches MIN_OPS operations, with fewer examples
        fuzz = make_fuzz(op, srv, accounts, sender, counts, examples)
        try:
            fuzz()
        except Exception as exc:  # collect and go on: one report for every operation
            failures.append(f"{op['method']} {op['path']}: {type(exc).__name__}: {exc}")

    note = f"(seed {SEED}: rerun with BURROW_FUZZ_SEED={SEED})"
    print(f"fuzz {note}; answers per operation:")
    for op_id, by_status in sorted(counts.items()):
        print(f"  {op_id}: {dict(sorted(by_status.items(), key=lambda kv: str(kv[0])))}")
    assert not failures, f"{len(failures)} operation(s) failed {note}:\n" + "\n\n".join(failures)
    fuzzed = {op["id"] for op in ops if counts.get(op["id"])}
    # The budget may end a slow run early (how many operations fit in it depends on the
    # machine's load, so no share of them is required), but never before MIN_OPS had their turn
    # (past the budget with fewer examples, so this holds however slow the machine is).
    assert len(fuzzed) >= min(MIN_OPS, len(ops)), f"only {len(fuzzed)} of {len(ops)} operations ran {note}"
    assert_still_healthy(srv, accounts)


def test_wrong_methods_and_unknown_paths_get_the_error_shape(srv, accounts, openapi):
    sender = Sender(srv)
    auth = {"Authorization": f"Bearer {accounts.admin}"}
    for path, item in openapi["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "999999", path)
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            if method.lower() in item:
                continue
            status, _, raw = sender.send(method, concrete, b"{}", "application/json", auth)
            check_answer(status, raw, f"{method} {concrete}")
            assert status in (404, 405, 429), (method, concrete, status)
    for target in ("/nope", "/api/nope", "/api/users/abc", "/api/%ff%fe", "/api/users/1/../../healthz",
                   "/" + "a" * 4000, "/api/stats?since=%ff", "/api/queries?limit=1&limit=%00"):
        status, _, raw = sender.send("GET", target, headers=auth)
        check_answer(status, raw, f"GET {target[:80]}", target)
    assert_still_healthy(srv, accounts)


def assert_still_healthy(srv, accounts) -> None:
    assert srv.proc.poll() is None, f"burrow exited:\n{srv.output()}"
    status, body = srv.http("GET", "/healthz")
    assert status == 200, body
    assert authed(srv, accounts.admin, "GET", "/api/auth/me")[0] == 200, "the admin session was lost"
    log = Path(srv.log.name).read_text(errors="replace")
    # A 500 logs "unhandled error in an API handler"; a streamed answer that fails after its
    # 200 went out (or a crash in the server loop) logs a bare traceback.
    for marker in ("unhandled error in an API handler", "Traceback (most recent call last)"):
        if marker in log:
            at = log.index(marker)
            raise AssertionError(f"the burrow log has {marker!r}:\n{log[max(0, at - 1500):at + 3000]}")


def test_docs_asset_404_has_the_error_shape(srv):
    status, _, raw = Sender(srv).send("GET", "/docs/assets/no-such-file.css")
    assert status == 404
    check_answer(status, raw, "GET /docs/assets/no-such-file.css")


def test_docs_asset_long_name_is_a_404(srv):
    status, _, raw = Sender(srv).send("GET", "/docs/assets/" + "a" * 300)
    assert status == 404, raw[:300]
