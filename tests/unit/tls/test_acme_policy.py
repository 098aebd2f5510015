"""The renewal policy (when to renew, how long to wait after a failure) and the Renewer that
applies it, on a fake clock; the names an issuer accepts."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from burrow.tls.acme import (MAX_WAIT_S, RETRY_BASE_S, RETRY_CAP_S, RETRY_JITTER, AcmeFailure, AcmeIssuer, CertInfo,
                             Http01Tokens, Renewer, check_names, renewal_due, retry_delay)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
DAY = dt.timedelta(days=1)


@pytest.mark.parametrize("days, due_day", [
    (90, 60),  # Let's Encrypt's lifetime: two thirds = 30 days ahead
    (365, 365 * 2 / 3),  # a year: two thirds comes before 30 days ahead
    (60, 30),  # 30 days ahead is earlier than two thirds (day 40) and still past half
    (45, 30),  # 30 days ahead would be day 15, before half: two thirds
    (6, 4),  # a short-lived certificate: two thirds
])
def test_renewal_is_due_at_two_thirds_or_thirty_days_ahead(days, due_day):
    assert renewal_due(T0, T0 + days * DAY) == T0 + due_day * DAY


def test_retry_delay_doubles_to_the_cap_with_jitter_below_the_step():
    low = [retry_delay(n, rng=lambda: 0.0) for n in range(1, 12)]
    assert low[:4] == [RETRY_BASE_S, 2 * RETRY_BASE_S, 4 * RETRY_BASE_S, 8 * RETRY_BASE_S]
    assert max(low) == RETRY_CAP_S and low[-1] == RETRY_CAP_S
    assert all(a <= b for a, b in zip(low, low[1:]))
    assert retry_delay(1, rng=lambda: 1.0) == RETRY_BASE_S * (1 - RETRY_JITTER)
    assert retry_delay(10_000, rng=lambda: 0.5) == RETRY_CAP_S * (1 - RETRY_JITTER / 2)  # no overflow
    assert retry_delay(0, rng=lambda: 0.0) == RETRY_BASE_S


class Clock:
    def __init__(self):
        self.now = T0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)
        await asyncio.sleep(0)


class ScriptedIssuer:
    """Issues 90-day certificates dated by the fake clock, or fails as scripted."""

    names = ["burrow.test"]

    def __init__(self, clock: Clock, fail: list[bool]):
        self.clock = clock
        self.fail = fail
        self.info: CertInfo | None = None
        self.attempts: list[dt.datetime] = []

    def current(self) -> CertInfo | None:
        return self.info

    async def issue(self) -> CertInfo:
        self.attempts.append(self.clock.now)
        if self.fail and self.fail.pop(0):
            raise AcmeFailure("challenge", "burrow.test: 404")
        self.info = CertInfo(("burrow.test",), self.clock.now, self.clock.now + 90 * DAY, f"{len(self.attempts):x}")
        return self.info


def run(renewer: Renewer, clock: Clock, until: dt.datetime) -> None:
    async def main():
        while clock.now < until:
            await clock.sleep(await renewer.step())
    asyncio.run(main())


def test_renewer_issues_at_once_then_renews_on_schedule():
    clock = Clock()
    issuer = ScriptedIssuer(clock, fail=[])
    issued = []
    renewer = Renewer(issuer, on_failure=pytest.fail, on_issued=issued.append, now=lambda: clock.now,
                      sleep=clock.sleep)
    run(renewer, clock, T0 + 200 * DAY)
    assert issuer.attempts == [T0, T0 + 60 * DAY, T0 + 120 * DAY, T0 + 180 * DAY]
    assert [i.serial for i in issued] == ["1", "2", "3", "4"]
    assert max(clock.slept) == MAX_WAIT_S, "a long wait re-reads the clock every hour"


def test_renewer_backs_off_on_failure_and_resets_after_a_success():
    clock = Clock()
    issuer = ScriptedIssuer(clock, fail=[True, True, True, False, True, False])
    failures = []
    renewer = Renewer(issuer, on_failure=lambda e, n, d: failures.append((e.step, n, d)), now=lambda: clock.now,
                      sleep=clock.sleep, rng=lambda: 0.0)
    run(renewer, clock, T0 + 61 * DAY)
    gaps = [(b - a).total_seconds() for a, b in zip(issuer.attempts, issuer.attempts[1:])]
    assert gaps[:3] == [RETRY_BASE_S, 2 * RETRY_BASE_S, 4 * RETRY_BASE_S]
    assert failures[:3] == [("challenge", 1, RETRY_BASE_S), ("challenge", 2, 2 * RETRY_BASE_S),
                            ("challenge", 3, 4 * RETRY_BASE_S)]
    # success (attempt 4), then the renewal 60 days later fails once: the count starts again at 1
    assert failures[3] == ("challenge", 1, RETRY_BASE_S)
    assert issuer.attempts[4] == issuer.attempts[3] + 60 * DAY
    assert renewer.failures == 0 and renewer.retry_at is None and len(issuer.attempts) == 6


def test_a_failing_callback_or_an_unexpected_error_does_not_stop_renewals():
    clock = Clock()

    class Broken(ScriptedIssuer):
        async def issue(self):
            self.attempts.append(clock.now)
            raise KeyError("bug")

    def on_failure(error, attempt, delay):
        seen.append(error)
        raise RuntimeError("the event bus is down")

    seen: list[AcmeFailure] = []
    issuer = Broken(clock, fail=[])
    renewer = Renewer(issuer, on_failure=on_failure, now=lambda: clock.now, sleep=clock.sleep, rng=lambda: 0.0)
    run(renewer, clock, T0 + dt.timedelta(seconds=3 * RETRY_BASE_S + 1))
    assert len(issuer.attempts) == 3
    assert all(e.step == "internal" and "bug" in str(e) for e in seen)


def test_a_certificate_for_other_names_is_replaced_at_once():
    clock = Clock()
    issuer = ScriptedIssuer(clock, fail=[])
    issuer.info = CertInfo(("old.burrow.test",), T0, T0 + 90 * DAY, "99")
    renewer = Renewer(issuer, on_failure=pytest.fail, now=lambda: clock.now, sleep=clock.sleep)
    assert asyncio.run(renewer.step()) == 0.0 and issuer.attempts == [T0]


@pytest.mark.parametrize("names, challenge, problem", [
    ([], "http-01", "at least one"),
    (["burrow.test", "BURROW.test."], "http-01", "listed twice"),
    (["*.burrow.test"], "http-01", "needs the dns-01"),
    (["bad..name"], "http-01", "'bad..name'"),
    (["localhost"], "http-01", "needs a dot"),
    (["a.b.c"] * 101, "http-01", "at most 100"),
    (["burrow.test"], "tls-alpn-01", "challenge must be"),
])
def test_bad_names_are_refused_naming_the_field(names, challenge, problem):
    with pytest.raises(ValueError, match="names|challenge") as e:
        check_names(names, challenge)
    assert problem in str(e.value)


def test_names_are_normalised():
    assert check_names(["Burrow.TEST.", "*.Burrow.test", "bücher.example"], "dns-01") == [
        "burrow.test", "*.burrow.test", "xn--bcher-kva.example"]


def test_an_issuer_needs_the_means_of_its_challenge(tmp_path):
    paths = dict(account_key_path=tmp_path / "a", cert_path=tmp_path / "c", key_path=tmp_path / "k")
    with pytest.raises(ValueError, match="http-01 needs"):
        AcmeIssuer(directory_url="https://ca.example/dir", names=["burrow.test"], **paths)
    with pytest.raises(ValueError, match="dns-01 needs"):
        AcmeIssuer(directory_url="https://ca.example/dir", names=["burrow.test"], challenge="dns-01", **paths)
    with pytest.raises(ValueError, match="directory_url"):
        AcmeIssuer(directory_url="ftp://ca.example/dir", names=["burrow.test"], http01=Http01Tokens(), **paths)
    with pytest.raises(ValueError, match="email"):
        AcmeIssuer(directory_url="https://ca.example/dir", names=["burrow.test"], http01=Http01Tokens(),
                   email="not an address", **paths)
