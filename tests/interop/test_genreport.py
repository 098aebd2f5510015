"""ISC's DNS compliance test (genreport) grades Burrow as a recursive server.

genreport sends fixed questions about one zone — plain, with every header flag, with EDNS
versions, options and flags, over TCP, with an unknown opcode, and (``-t``) every common type —
and grades each reply against the RFCs. ``-R`` grades it as a recursive server (RD set on every
question, RD must be echoed, AA must not be set). Every test of ``-R -f``, ``-R -c`` and ``-R -t``
must be "ok".

genreport is not packaged by Debian: it is built from ISC's public DNS-Compliance-Testing
source, and taken from $GENREPORT or PATH. Without it the module skips.

Burrow here is a fresh process (empty cache, so the grade does not depend on what other tests
asked before it) forwarding to the lab's validating Unbound (tests/interop/lab.py), and the zone
graded is a signed, multi-label zone of the lab, so the DNSSEC tests (do, docd, edns@512,
ednstcp) see real signatures.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import dns.message
import dns.query
import dns.rcode
import pytest

from tests.support.burrow_proc import BurrowProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(600)]

ZONE = "nsec3.test."  # signed with NSEC3 in the lab; two labels (a single label is domain-needed)
RUN_TIMEOUT = 120.0  # seconds for one genreport run (each takes a few seconds on loopback)

# genreport's switch → the test groups it runs (as `genreport -L` names them)
MODES = {"-f": {"EDNS", "FULL"}, "-c": {"EDNS", "COMM"}, "-t": {"TYPE"}}


@pytest.fixture(scope="module")
def genreport() -> str:
    path = os.environ.get("GENREPORT") or shutil.which("genreport")
    if not path:
        pytest.skip("genreport not found: build it from ISC's public DNS-Compliance-Testing source, "
                    "then set $GENREPORT to the binary or put it on PATH")
    if not os.access(path, os.X_OK):
        pytest.fail(f"$GENREPORT={path} is not an executable file")
    return path


@pytest.fixture(scope="module")
def catalogue(genreport) -> tuple[dict[str, str], dict[str, str]]:
    """(test → group, test → dig command that reproduces it), from genreport itself."""
    groups = {}
    for line in _run(genreport, ["-L"]).splitlines():
        parts = line.split()
        if len(parts) == 2:
            groups[parts[0]] = parts[1]
    digs = {}
    for line in _run(genreport, ["-D"]).splitlines():
        name, _, command = line.partition(" ")
        # "### dig ... ###" marks a test dig cannot reproduce exactly (it cannot set RA or TC)
        digs[name] = command.strip().strip("'").strip("# ").replace("<zone>", ZONE)
    return groups, digs


@pytest.fixture(scope="module")
def graded_burrow(genreport, request, tmp_path_factory):
    # the lab is asked for only once genreport is known to exist (no lab just to skip)
    lab = request.getfixturevalue("lab")
    upstream = f"127.0.0.1:{lab.unbound_port}"
    with BurrowProcess(tmp_path_factory.mktemp("genreport-burrow"), [upstream], {
        "logging": {"level": "info"},
        "rate_limit": {"enabled": False},  # genreport sends its questions in one burst
        "local": {"rebind_protection": True},  # Burrow's default; BurrowProcess turns it off
    }) as burrow:
        # the graded zone must resolve at the upstream, or every test fails for the lab's sake
        reply = dns.query.udp(dns.message.make_query(ZONE, "SOA"), "127.0.0.1",
                              port=lab.unbound_port, timeout=5)
        assert reply.rcode() == dns.rcode.NOERROR and reply.answer, \
            f"lab upstream does not serve {ZONE}:\n{reply}"
        yield burrow


def _run(genreport: str, args: list[str], stdin: str = "") -> str:
    done = subprocess.run([genreport, *args], input=stdin, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert done.returncode == 0, f"genreport {' '.join(args)} exited {done.returncode}:\n" \
                                 f"{done.stdout}{done.stderr}"
    return done.stdout


def grade(genreport: str, mode: str, port: int) -> tuple[str, dict[str, str]]:
    """genreport's line for ZONE at 127.0.0.1:port, and its results as {test: "tag,tag"}.
    Input lines are "zone server-name address"; the server name only labels the output."""
    out = _run(genreport, ["-R", mode, "-P", str(port)], f"{ZONE} burrow 127.0.0.1\n")
    lines = [line for line in out.splitlines() if line.startswith(f"{ZONE} @127.0.0.1 ")]
    assert len(lines) == 1, f"expected one report line for {ZONE}, got:\n{out}"
    line = lines[0]
    results = dict(item.partition("=")[::2] for item in line.partition("):")[2].split())
    return line, results


@pytest.mark.parametrize("mode", sorted(MODES))
def test_genreport_all_ok(genreport, catalogue, graded_burrow, mode):
    groups, digs = catalogue
    line, results = grade(genreport, mode, graded_burrow.dns_port)
    print(f"genreport -R {mode}: {line}")

    # every test of the mode's groups was run and reported (a missing one is not a pass)
    expected = {name for name, group in groups.items() if group in MODES[mode]}
    assert expected, f"genreport -L lists no test of {MODES[mode]}"
    missing = expected - results.keys()
    assert not missing, f"genreport -R {mode} did not report {sorted(missing)}:\n{line}"

    # a result is "ok" optionally followed by notes (",nsid", ",cookie", ",yes"); anything
    # else first is the defect (e.g. "ra,cd": RA and CD set in the reply to an unknown opcode)
    bad = {name: tags for name, tags in results.items() if tags.split(",")[0] != "ok"}
    assert not bad, (f"genreport -R {mode} against Burrow is not all ok:\n{line}\n\nnot ok:\n"
                     + "\n".join(f"  {name}={tags}    reproduce: {digs.get(name, '?')} "
                                 f"@127.0.0.1 -p {graded_burrow.dns_port}"
                                 for name, tags in sorted(bad.items())))

    # "signed" sums up the "do" test; ",yes" means its reply carried RRSIGs. The zone is signed,
    # so a DO=1 client that gets none has lost the signatures on the way (RFC 4035 §3.2.1).
    if "signed" in results:
        assert results["signed"].endswith(",yes"), \
            f"genreport -R {mode}: a DO=1 SOA query of the signed {ZONE} got no RRSIG:\n{line}"
