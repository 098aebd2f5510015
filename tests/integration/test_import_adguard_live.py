"""POST /api/import/adguard against the real ``burrow`` process, with an AdGuardHome.yaml the
test writes in AdGuard Home's documented layout (schema 34: rewrites and blocking options under
``filtering``, clients under ``clients.persistent``).

A dry run answers the plan and changes nothing (the DNS answers and the API's state are as
before); the real import makes dnspython's answers blocked, allowed and rewritten as the file
says; the same file again changes nothing; a broken or hostile file is refused with a clear
error naming the key path, and changes nothing either. (`up` and `srv`: the module's test
upstream and Burrow forwarding to it, tests/integration/conftest.py.)
"""

from __future__ import annotations

import http.client
import itertools
import json
import subprocess
import sys

import dns.rcode
import dns.rdatatype
import pytest

from tests.support.api_client import admin_token
from tests.support.timing import wait_for
from tests.support.upstream import address_for
from tests.support.upstream_client import REPO_ROOT

ERROR_KEYS = {"error", "code", "message", "timestamp"}
_calls = itertools.count()


def source() -> str:
    """A loopback source address per call: the API's per-address request limit is not what
    these tests are about (they make many reads to compare the state)."""
    n = next(_calls)
    return f"127.0.{10 + n // 250 % 200}.{n % 250 + 1}"


def adguard_yaml(upstream: str) -> str:
    return f"""\
http:
  address: 0.0.0.0:3000
users:
  - name: admin
    password: $2y$10$notarealhashnotarealhashnotarealhashnotarealhash
dns:
  bind_hosts: [0.0.0.0]
  port: 53
  ratelimit: 0
  upstream_dns:
    - {upstream}
    - quic://dns.adguard-dns.com
  bootstrap_dns: []
filtering:
  protection_enabled: true
  filtering_enabled: true
  blocking_mode: nxdomain
  blocked_response_ttl: 42
  rewrites:
    - domain: nas.lan
      answer: 192.168.1.5
      enabled: true
    - domain: files.lan
      answer: nas.lan
      enabled: true
    - domain: '*.dev.lan'
      answer: 192.168.1.9
      enabled: true
  blocked_services:
    schedule:
      time_zone: Local
    ids: [tiktok]
filters: []
whitelist_filters: []
user_rules:
  - '! my own rules'
  - '||ads.example^'
  - '@@||ok.ads.example^'
  - '/^track[0-9]+\\./'
  - '0.0.0.0 hosts-style.example'
  - '||kids.example^$client=tablet'
clients:
  persistent:
    - name: Tablet
      ids: [127.0.0.77, aa:bb:cc:dd:ee:ff]
      tags: [device_tablet]
      use_global_settings: true
      use_global_blocked_services: true
schema_version: 34
"""


@pytest.fixture(scope="module")
def token(srv):
    return admin_token(srv)


def post(srv, token, body: bytes, *, dry_run: bool, kind: str = "adguard"):
    conn = http.client.HTTPConnection("127.0.0.1", srv.web_port, timeout=60, source_address=(source(), 0))
    try:
        conn.request("POST", f"/api/import/{kind}?dry_run={str(dry_run).lower()}", body=body,
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def get(srv, token, path):
    status, body = srv.http("GET", path, headers={"Authorization": f"Bearer {token}"}, source=source())
    assert status == 200, (status, body)
    return body


def state(srv, token) -> dict:
    """Everything an AdGuard import may touch, as the API answers it."""
    return {path: get(srv, token, path) for path in (
        "/api/config", "/api/lists", "/api/whitelist", "/api/denylist", "/api/groups", "/api/clients",
        "/api/localrecords", "/api/conditionalforwarding")}


def a_of(answer) -> list[str]:
    return sorted(rr.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset)


def resolved_upstream(srv, name: str) -> bool:
    answer = srv.query(name)
    return answer.rcode() == dns.rcode.NOERROR and a_of(answer) == [address_for(name)]


def steps_by(plan) -> dict[tuple[str, str], dict]:
    return {(s["area"], s["key"]): s for s in plan["steps"]}


def test_dry_run_then_import_then_again(srv, up, token):
    text = adguard_yaml(up.address).encode()
    for name in ("ads.example", "sub.ads.example", "track7.example", "hosts-style.example"):
        assert resolved_upstream(srv, name), name
    assert srv.query("nas.lan").rcode() != dns.rcode.NOERROR or not a_of(srv.query("nas.lan"))
    before = state(srv, token)

    status, plan = post(srv, token, text, dry_run=True)
    assert status == 200, plan
    assert plan["dry_run"] is True and plan["applied"] is False and plan["source"] == "adguard"
    steps = steps_by(plan)
    assert steps[("deny", "ads.example")]["action"] == "create"
    assert steps[("deny", "*.ads.example")]["action"] == "create"
    assert steps[("allow", "ok.ads.example")]["action"] == "create"
    assert steps[("record", "nas.lan A")]["action"] == "create"
    assert steps[("client", "127.0.0.77")]["action"] == "create"
    assert steps[("client", "aa:bb:cc:dd:ee:ff")]["action"] == "skipped"
    assert steps[("setting", "filtering.blocking_mode")]["action"] == "change"
    skipped = {s["key"]: s["why"] for s in plan["steps"] if s["action"] == "skipped"}
    assert any("tiktok" in k for k in skipped) and any("quic://" in k for k in skipped)
    assert all(skipped.values()), "every skipped step says why"
    assert plan["counts"]["create"] >= 6 and plan["counts"]["skipped"] >= 4
    # the dry run changed nothing: the API's state and the DNS answers are as before
    assert state(srv, token) == before
    assert resolved_upstream(srv, "ads.example")

    status, done = post(srv, token, text, dry_run=False)
    assert status == 200, done
    assert done["applied"] is True and done["dry_run"] is False
    assert steps_by(done)[("deny", "ads.example")]["action"] == "create"

    # what the file says, in real DNS answers (the stores announce their changes; wait for them)
    wait_for(lambda: srv.query("ads.example").rcode() == dns.rcode.NXDOMAIN, what="ads.example blocked")
    assert srv.query("sub.ads.example").rcode() == dns.rcode.NXDOMAIN
    assert srv.query("track7.example").rcode() == dns.rcode.NXDOMAIN
    assert srv.query("hosts-style.example").rcode() == dns.rcode.NXDOMAIN
    assert resolved_upstream(srv, "ok.ads.example")  # the @@ rule allows it
    assert resolved_upstream(srv, "kids.example")  # a $client= rule is not imported
    wait_for(lambda: a_of(srv.query("nas.lan")) == ["192.168.1.5"], what="nas.lan rewritten")
    files = srv.query("files.lan")
    assert any(rrset.rdtype == dns.rdatatype.CNAME for rrset in files.answer)
    assert a_of(files) == ["192.168.1.5"]
    assert a_of(srv.query("build.dev.lan")) == ["192.168.1.9"]
    config = get(srv, token, "/api/config")
    assert config["filtering"]["blocking_mode"] == "nxdomain" and config["filtering"]["blocked_ttl"] == 42
    assert config["rate_limit"]["enabled"] is False
    assert config["upstream_dns_servers"] == [up.address]  # the same upstream: unchanged
    events = get(srv, token, "/api/events?type=import.applied")
    assert [e["data"]["source"] for e in events["events"]] == ["adguard"], events  # one audit event
    after = state(srv, token)

    # the same file again changes nothing
    status, again = post(srv, token, text, dry_run=False)
    assert status == 200, again
    assert again["counts"]["create"] == 0 and again["counts"]["change"] == 0, again
    assert state(srv, token) == after


@pytest.mark.parametrize("body, status, words", [
    (b"schema_version: 34\nfilters: [\n", 400, "not valid YAML"),
    (b"schema_version: 34\nclients:\n  persistent:\n    - name: x\n      ids: 10.0.0.1\n", 400,
     "clients.persistent[0].ids"),
    (b"schema_version: 9\n", 400, "schema_version"),
    (b"dns: {}\n", 400, "schema_version"),
    (b"schema_version: 34\na: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n", 400, "alias"),
    (b"schema_version: 34\nx: !!python/object/apply:os.system ['true']\n", 400, "not valid YAML"),
    (b"\x00\xff\xfe" * 10, 400, "UTF-8"),
])
def test_a_broken_or_hostile_file_is_refused_and_changes_nothing(srv, token, body, status, words):
    before = state(srv, token)
    for dry_run in (True, False):
        got, answer = post(srv, token, body, dry_run=dry_run)
        assert got == status, answer
        assert ERROR_KEYS <= set(answer) and words in answer["message"], answer
        assert answer["message"].startswith("AdGuardHome.yaml")
    assert state(srv, token) == before


def test_a_file_past_the_bound_is_refused(srv, token):
    before = state(srv, token)
    got, answer = post(srv, token, b"schema_version: 34\n" + b"#" * (5 * 1024 * 1024), dry_run=False)
    assert got == 413, answer
    assert state(srv, token) == before


def test_the_command_line_imports_an_adguard_file(srv, up, token, tmp_path):
    path = tmp_path / "AdGuardHome.yaml"
    path.write_text("schema_version: 34\nuser_rules:\n  - '||cli-adguard.example^'\n"
                    "filtering:\n  rewrites:\n    - {domain: cli.lan, answer: 192.168.7.8, enabled: true}\n")
    command = [sys.executable, "-m", "burrow", "import", "--config", str(srv.config_path), "adguard", str(path)]
    dry = subprocess.run(command + ["--dry-run"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing changed" in dry.stdout and "cli-adguard.example" in dry.stdout
    assert resolved_upstream(srv, "cli-adguard.example")

    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: not resolved_upstream(srv, "cli-adguard.example"), what="the running Burrow re-read the deny list")
    wait_for(lambda: a_of(srv.query("cli.lan")) == ["192.168.7.8"], what="the running Burrow re-read the records")

    before = state(srv, token)
    path.write_text("schema_version: 34\nfilters:\n  - name: no url\n")
    refused = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stdout
    assert "AdGuardHome.yaml filters[0].url" in refused.stderr and "nothing was imported" in refused.stderr
    assert state(srv, token) == before
