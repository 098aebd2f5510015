"""Schemathesis against the real ``burrow`` process: the OpenAPI document must match the server
(issue 20, item 11).

The served ``/openapi.json`` is loaded into Schemathesis (PyPI; docs/dependencies.md) and, as
admin, viewer and anonymous in turn, every operation gets a few generated requests (valid ones
from the schemas, and invalid ones), each answer checked by Schemathesis's conformance checks:

- ``not_a_server_error``: no 5xx, except one the operation documents (503 for a part that is
  switched off, such as the cache after a PUT /api/config/cache here);
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the Content-Type is one the operation documents;
- ``response_schema_conformance``: the body matches the documented schema;
- ``response_headers_conformance``: documented headers are present and valid;
- ``negative_data_rejection``: a request the schema forbids is refused (4xx), so the document
  is never stricter than the server;
- ``positive_data_acceptance``: a request the schema allows is accepted, so the server is never
  stricter than the document. Accepted means 2xx, or what Schemathesis's defaults count as an
  answer to valid data: 401/403 (a role without the right), 404 (an id or name that does not
  exist), 409 (a duplicate), 429 (the rate limit), a documented 5xx (see above). Addresses,
  networks, domain names, ids, durations, times, enums and "one of these fields" are declared
  in the schemas (api/schema.py), and the same declarations validate the requests.

  A 400 to a valid request fails the test unless each field it names was refused on meaning,
  which no JSON Schema states: MEANING below lists exactly those (field, message) pairs —
  groups that must exist, password strength (weak_password), Unicode's printable set (token
  names), a refresh token that may come as a cookie instead, a calendar date that exists, a
  time in the past / within the kept window / after ``since``, a magnitude against another
  field (min_ttl ≤ max_ttl, step against since, a timeout's range), a network's host bits, the
  languages inside a field (a policy expression, a regular expression, a record's RDATA, zone
  file text), what a zone's or rule's current state allows (one SOA, CNAME alone, primaries on
  a slave, a PUT leaving a forwarding rule no condition), and an international name the IDNA
  codec refuses. A 413/414/431 (body, request line or headers over the size limits) is a limit
  on size, not on content, and is not counted either way.

The server itself also checks every answer against the document (Api._check_documented logs
"undocumented status"); the log must have no such line and no unhandled error at the end.

Bounds: EXAMPLES generated requests per operation and mode (default 2) and a budget of
BURROW_SCHEMATHESIS_BUDGET seconds per role (default 18, so ≤ 60 s for the three), but at least
MIN_OPS operations per role however slow the machine (their number is not asserted); operations
run in a random order per run (the seed is printed on failure; BURROW_SCHEMATHESIS_SEED=<n>
replays it), so when a slow machine runs out of budget, other runs cover the rest. Requests
rotate over loopback source addresses, so the per-address API rate limit does not answer
everything (429 is documented everywhere and accepted). The hand-made fuzzer
(test_api_fuzz.py) stays: it sends what no schema describes (junk bytes, deep nesting).

Operations that would end the session the role's requests use (logout, own password and 2FA,
changing or deleting users) or replace the database (restore) are left out for the signed-in
roles; anonymous callers get every operation.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time

import pytest
import requests  # comes with schemathesis
import schemathesis  # the test extra (pyproject.toml); not skipped when missing: install it
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from requests.adapters import HTTPAdapter
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi import checks as openapi_checks

from tests.support.api_client import admin_token, user_token
from tests.support.burrow_proc import BurrowProcess
from tests.support.upstream_client import TestUpstream

SEED = int(os.environ.get("BURROW_SCHEMATHESIS_SEED") or random.SystemRandom().randrange(2 ** 32))
EXAMPLES = int(os.environ.get("BURROW_SCHEMATHESIS_EXAMPLES", "2"))
BUDGET = float(os.environ.get("BURROW_SCHEMATHESIS_BUDGET", "18"))
REQUEST_TIMEOUT = 30.0  # bounds a success: a loaded machine answers a login (scrypt) slowly
MIN_OPS = 20  # operations tested per role even past the budget
SOURCES = [f"127.0.0.{i}" for i in range(10, 251)]
VIEWER_PW = "Viewer-pass-2024"
CHECKS = [not_a_server_error, openapi_checks.status_code_conformance,
          openapi_checks.content_type_conformance, openapi_checks.response_schema_conformance,
          openapi_checks.response_headers_conformance, openapi_checks.negative_data_rejection,
          openapi_checks.positive_data_acceptance]
REFUSED_UNREAD = {413, 414, 431}  # body, request line or headers over the limit (api/routes.py)
# What a signed-in role must not call on itself here (it would sign itself out or lock itself out).
SESSION_ENDING = {"POST /api/auth/logout", "POST /api/auth/password", "POST /api/auth/2fa/enrol",
                  "POST /api/auth/2fa/confirm", "POST /api/auth/2fa/disable", "POST /api/backup/restore",
                  "PUT /api/users/{user_id}", "DELETE /api/users/{user_id}",
                  # would open HTTPS (plain HTTP then redirects) or DoT on the addresses it was given:
                  # tests/integration/test_encrypted_dns.py covers it
                  "PUT /api/config/tls"}
# Bodies no schema states (a Pi-hole Teleporter zip, an AdGuardHome.yaml): every body drawn at
# random is refused on its content; tests/integration/test_import_live.py covers them.
CONTENT_ONLY = {"POST /api/import/pihole", "POST /api/import/adguard"}


@schemathesis.serializer("application/dns-message")
def dns_message_body(ctx, value) -> bytes:
    """POST /dns-query's body is a DNS message, documented as binary: sent as the bytes drawn
    (schemathesis has serializers for JSON, forms and octet-stream only)."""
    if isinstance(value, bytes):
        return value
    data = getattr(value, "data", None)  # schemathesis' Binary wrapper
    return data if isinstance(data, bytes) else str(value).encode(errors="ignore")


# A 400 to a request the schema allows fails unless every field it names was refused on its
# meaning, which no JSON Schema can state: these (field, message) pairs, nothing else.
MEANING = [
    (r"groups", r"no group named .*"),  # groups that exist
    (r"password|new_password", r"(a )?password .*"),  # strength (error weak_password)
    (r"name", r"must be 1-64 printable characters"),  # API token names: Unicode's printable set
    (r"refresh_token", r"required"),  # in the body, or else the burrow_refresh cookie
    (r"since|until", r"must be in the past|at most .* back|'.*' is not an RFC 3339 timestamp"
                     r"|'.*' is not a date and time that exists"),  # 09-31: no pattern knows the calendar
    (r"until", r"must be after since"),
    (r"step", r"at least 1m|too small for since.*|gives more than .* points.*|must be a duration of at least 1m.*"),
    (r"timeout", r"Timeout must be between 100ms and 30s"),  # a Go duration's magnitude
    (r"[a-z_]+", r"must not exceed .*"),  # one setting bounded by another (min_ttl ≤ max_ttl)
    (r"client", r".* has host bits set\)"),  # a network's own address (192.168.1.0/24, not .1/24)
    (r"logic", r".*"),  # a policy expression, which must compile
    (r"action_data", r".*"),  # what the policy's action takes (addresses, upstreams)
    (r"domain", r"not a valid regular expression.*"),  # an allow/deny entry with regex syntax
    # a forwarding rule's domain pattern whose IDNA form has an empty or hyphen-edged label
    # ("…" maps to "...", an "xn--" label): IDNA, which no pattern states
    (r"domains\[[0-9]+\]", r"invalid domain pattern .*: label .*"),
    # an encrypted upstream's host (tls://host, https://host/path) and #name must be a host name
    # (or, the host, an address): a name of digits only, its length and IDNA, which the URL
    # pattern does not state; the #name is never an address
    (r"(upstreams|upstream_dns_servers)(\[[0-9]+\])?",
     r"(invalid upstream: |item [0-9]+: )?((host|server name) .* is not a valid (address or )?host name"
     r"|#.* must be a host name \(the certificate's name\), not an address)"),
    (r"value", r".*"),  # a DNS record's data in zone-file form, per type
    (r"zone", r"line [0-9]+: .*"),  # a zone file's records
    (r"ips(\[[0-9]+\])?|target", r"(A|AAAA|CNAME) records require .*|an? (A|AAAA|CNAME) record takes .*"
                                   r"|.* is not an IPv[46] address .*"),  # what each record type takes
    (r"type", r"zone .* needs exactly one SOA record at its apex|.* already has a CNAME.*|.* has a CNAME, so .*"),
    (r"primaries", r"only slave zones have primaries"),  # a PUT on a zone that stays a master
    # what the record's zone allows: no "@" in the local zone (it has no origin), a slave's records
    # come from its primaries, a record stays in its zone, the one SOA stays one
    (r"name", r"label '@' in '@': .*|a domain name is required"),
    (r"zone", r"a slave zone's records come from its primaries.*|a record cannot move to another zone.*"),
    (r"type", r"the SOA record stays an SOA record.*|a zone has exactly one SOA.*"),
    (r"priority", r"priority applies to MX and SRV records"),
    (r"domains", r"At least one matching condition required.*"),  # a PUT leaving a rule none
    # DNS over HTTPS: the DNS message inside dns= or the body (a query, at least a header), one of
    # dns= and name= given, a type number in range
    (r"dns|body|name", r"the DNS message (is shorter than a header|was not answered .*)"),
    (r"dns", r"give dns= \(RFC 8484\) or name= \(the JSON form\)|is not base64url"),  # a length base64 lacks
    (r"type", r"must be 1-65535"),
]
# An international name the IDNA codec refuses, or makes too long (a label over 63, a name over
# 253): counted only for a request that carries non-ASCII text.
# IDNA's mapping can also turn a character into ASCII a label may not hold (NFKC makes U+00B4 a
# space and a combining accent, U+2488 "1."): the encoded name is then refused like any other.
IDNA = (r".*(idna' codec failed|IDN name cannot be encoded|not a valid international name|bad label '.*'"
        r"|longer than (63|253) (characters|octets)|name too long).*"
        r"|label 'xn--[^']*' in '.*': only letters, digits, '-' and '_' are allowed"
        # NFKC makes U+2488 "1.": the mapped dot ends a label early
        r"|empty label in '.*'|not a valid name \(labels of 1-63 bytes, IDNA\)")


def refused_on_meaning(response, case) -> bool:
    try:
        details = response.json().get("details") or []
    except ValueError:
        return False
    international = not json.dumps([case.body if isinstance(case.body, (dict, list, str)) else None,
                                    case.query, case.path_parameters], ensure_ascii=False).isascii()
    meanings = MEANING + [(r".*", IDNA)] * international
    return bool(details) and all(
        isinstance(d, dict) and any(re.fullmatch(f, str(d.get("field"))) and re.fullmatch(m, str(d.get("message")))
                                    for f, m in meanings) for d in details)


class FromAddress(HTTPAdapter):
    """requests from one loopback source address."""

    def __init__(self, source: str, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kw)


def sessions():
    out = []
    for source in SOURCES:
        s = requests.Session()
        s.mount("http://", FromAddress(source))
        out.append(s)
    return itertools.cycle(out)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with TestUpstream() as up, BurrowProcess(tmp_path_factory.mktemp("schemathesis"), [up.address]) as b:
        yield b


@pytest.fixture(scope="module")
def tokens(srv):
    admin = admin_token(srv)
    return {"admin": admin, "viewer": user_token(srv, admin, "vera", VIEWER_PW), "anonymous": None}


@pytest.fixture(scope="module")
def schema(srv):
    status, doc = srv.http("GET", "/openapi.json")
    assert status == 200
    return schemathesis.openapi.from_dict(doc)


def failure_text(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return " | ".join(lines[:8])[:600]


@pytest.mark.timeout(600)  # the budget, then MIN_OPS on a loaded machine
@pytest.mark.parametrize("role", ["admin", "viewer", "anonymous"])
def test_the_server_answers_as_its_openapi_document_says(srv, tokens, schema, role):
    headers = {"Authorization": f"Bearer {tokens[role]}"} if tokens[role] else {}
    base_url = f"http://127.0.0.1:{srv.web_port}"
    rotation = sessions()
    operations = [op.ok() for op in schema.get_all_operations()]
    random.Random(SEED).shuffle(operations)
    failures: dict[str, str] = {}
    sent = tested = 0
    deadline = time.monotonic() + BUDGET
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if operation.path.startswith("/ws/") or (tokens[role] and label in SESSION_ENDING | CONTENT_ONLY):
            continue  # WebSocket upgrades: test_api_realtime.py
        if time.monotonic() > deadline and tested >= MIN_OPS:
            break  # a slow machine still tests MIN_OPS operations: how many fit is not asserted
        tested += 1
        documented = set(operation.responses.status_codes)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @seed(SEED)
            @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
            @given(case=operation.as_strategy(generation_mode=mode))
            def one(case):
                nonlocal sent
                sent += 1
                response = case.call(base_url=base_url, session=next(rotation), headers=headers,
                                     timeout=REQUEST_TIMEOUT)
                checks = CHECKS
                if response.status_code >= 500 and str(response.status_code) in documented:  # noqa: B023 - called within this iteration
                    # e.g. 503 from POST /api/cache/purge once a PUT here turned caching off
                    checks = [c for c in CHECKS if c is not not_a_server_error]
                elif response.status_code in REFUSED_UNREAD:
                    # refused before the request was read, for its size: neither an answer to its
                    # content nor one of the statuses negative_data_rejection knows
                    checks = [c for c in CHECKS if c not in (openapi_checks.negative_data_rejection,
                                                             openapi_checks.positive_data_acceptance)]
                elif (response.status_code == 400 and mode == GenerationMode.POSITIVE  # noqa: B023 - called within this iteration
                      and refused_on_meaning(response, case)):
                    checks = [c for c in CHECKS if c is not openapi_checks.positive_data_acceptance]
                case.validate_response(response, checks=checks)

            try:
                one()
            except Unsatisfiable:  # nothing to vary (no parameters): no invalid request exists
                pass
            except (Exception, BaseExceptionGroup) as exc:  # Schemathesis raises a FailureGroup
                failures.setdefault(label, failure_text(exc))
    log = srv.output()
    undocumented = sorted({line.split("undocumented status: ", 1)[1] for line in log.splitlines()
                           if "undocumented status: " in line})
    assert srv.proc.poll() is None, "burrow exited"
    assert not failures and not undocumented, (
        f"seed {SEED} (BURROW_SCHEMATHESIS_SEED={SEED} replays it), {role}: "
        f"{len(failures)} of {tested} operations failed:\n"
        + "\n".join(f"{k}: {v}" for k, v in sorted(failures.items()))
        + "\nthe server logged: " + "; ".join(undocumented))
    assert "unhandled error" not in log
    assert tested >= min(MIN_OPS, len(operations)), (tested, sent)


def test_a_method_a_path_does_not_take_gets_405_with_allow(srv, schema):
    """RFC 9110 §15.5.6: every 405 carries ``Allow``, listing what the path takes (the
    document's methods, HEAD with GET, OPTIONS)."""
    session = sessions()
    checked = 0
    for path, item in schema.raw_schema["paths"].items():
        declared = {m.upper() for m in item if m in ("get", "put", "post", "delete", "patch")}
        concrete = path
        for name in {p["name"] for op in item.values() for p in op.get("parameters", []) if p["in"] == "path"}:
            concrete = concrete.replace("{" + name + "}", "1")
        for method in ("PATCH", "PUT", "DELETE", "POST"):
            if method in declared:
                continue
            response = next(session).request(method, f"http://127.0.0.1:{srv.web_port}{concrete}",
                                             timeout=REQUEST_TIMEOUT)
            if response.status_code != 405:  # another route's pattern takes it (then 401/404...)
                continue
            checked += 1
            allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
            expected = declared | ({"HEAD"} if "GET" in declared else set()) | {"OPTIONS"}
            assert allow >= declared and allow <= expected | declared, (method, path, allow, declared)
            assert response.json()["code"] == 405
            break
    assert checked >= 20
