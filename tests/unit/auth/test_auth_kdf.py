"""The password pool (issue 20 item 2): scrypt off the event loop, bounded, excess refused
with 429 "busy" at once. A fake slow hasher held by a threading.Event stands in for scrypt,
so "slow" is a state the test controls, not a speed it hopes for."""

from __future__ import annotations

import asyncio
import threading

import pytest

from burrow.auth import PasswordBusyError
from burrow.auth import service as service_mod
from burrow.auth.kdf import PasswordPool

from tests.support.timing import DEADLINE_S, until

from tests.unit.api.test_api_auth import FakeApp, Http, build_api, setup_admin

DEADLINE = DEADLINE_S


class Gate:
    """A stand-in for scrypt that blocks until opened, and says which thread ran it."""

    def __init__(self):
        self.opened = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, value=None, *_):
        self.threads.append(threading.current_thread())
        if not self.opened.wait(DEADLINE):
            raise TimeoutError("the test never opened the gate")
        return value


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_jobs_run_off_the_loop_and_excess_is_refused_at_once():
    pool = PasswordPool(workers=1, max_waiting=2, max_per_client=10)
    gate = Gate()

    async def scenario():
        jobs = [asyncio.ensure_future(pool.run(gate, n, client=f"10.0.0.{n}")) for n in range(3)]
        await until(lambda: pool.pending == 3, what="three jobs admitted")
        with pytest.raises(PasswordBusyError) as caught:
            await pool.run(gate, 99, client="10.0.0.99")
        assert caught.value.status == 429 and caught.value.error == "busy"
        assert caught.value.retry_after >= 1
        gate.opened.set()
        return await asyncio.gather(*jobs)

    try:
        assert run(scenario()) == [0, 1, 2]
        assert pool.refused == 1 and pool.pending == 0
        assert gate.threads and threading.main_thread() not in gate.threads
    finally:
        pool.close()


def test_one_client_holds_at_most_its_share():
    pool = PasswordPool(workers=1, max_waiting=8, max_per_client=2)
    gate = Gate()

    async def scenario():
        mine = [asyncio.ensure_future(pool.run(gate, n, client="2001:db8::1")) for n in range(2)]
        await until(lambda: pool.pending == 2, what="two jobs admitted")
        with pytest.raises(PasswordBusyError):  # the same /64 is the same client
            await pool.run(gate, 3, client="2001:db8::2")
        other = asyncio.ensure_future(pool.run(gate, 4, client="192.168.1.9"))
        await until(lambda: pool.pending == 3, what="another client admitted")
        gate.opened.set()
        return await asyncio.gather(*mine, other)

    try:
        assert run(scenario()) == [0, 1, 4]
    finally:
        pool.close()


def test_a_job_keeps_its_slot_until_it_really_ends_even_if_its_caller_leaves():
    pool = PasswordPool(workers=1, max_waiting=0, max_per_client=1)
    gate = Gate()

    async def scenario():
        job = asyncio.ensure_future(pool.run(gate, 1, client="10.0.0.1"))
        await until(lambda: gate.threads, what="the job started")
        job.cancel()  # the client hung up; scrypt in the thread cannot be stopped
        with pytest.raises(asyncio.CancelledError):
            await job
        assert pool.pending == 1
        with pytest.raises(PasswordBusyError):
            await pool.run(gate, 2, client="10.0.0.2")
        gate.opened.set()
        await until(lambda: pool.pending == 0, what="the slot freed")
        return await pool.run(gate, 3, client="10.0.0.2")

    try:
        assert run(scenario()) == 3
    finally:
        pool.close()


def test_the_inline_twin_refuses_to_run_on_an_event_loop():
    calls = []

    async def on_loop():
        PasswordPool.call(calls.append, 1)

    with pytest.raises(RuntimeError, match="event loop"):
        run(on_loop())
    assert calls == []
    PasswordPool.call(calls.append, 2)  # no loop here: the CLI's case
    assert calls == [2]


def test_a_busy_refusal_is_not_counted_as_a_failed_login(auth, admin, monkeypatch):
    gate = Gate()
    auth.service.kdf = pool = PasswordPool(workers=1, max_waiting=0, max_per_client=1)

    async def scenario():
        blocker = asyncio.ensure_future(pool.run(gate, client="10.0.0.7"))
        await until(lambda: pool.pending == 1, what="the pool is full")
        for _ in range(10):
            with pytest.raises(PasswordBusyError):
                await auth.service.login_async("alice", "wrong password!", None, "10.0.0.1")
        gate.opened.set()
        await blocker

    try:
        run(scenario())
    finally:
        pool.close()
    assert auth.service.lockout.retry_after("alice", "10.0.0.1") == 0
    assert "auth.login_failed" not in auth.types()


def test_the_api_answers_busy_with_429_retry_after_and_the_error_shape(tmp_path, monkeypatch):
    """Through the real route wrapper: with the password pool full (a fake slow hasher
    holding it), a login is refused at once with 429 "busy" and Retry-After."""
    app = FakeApp(tmp_path)
    http = Http(build_api(app))
    setup_admin(http)
    gate = Gate()
    monkeypatch.setattr(service_mod.AuthService, "_check_password",
                        staticmethod(lambda stored, password: gate((False, None))))
    app.auth.kdf = pool = PasswordPool(workers=1, max_waiting=1, max_per_client=5)

    async def scenario():
        body = {"username": "admin", "password": "wrong password 1"}
        slow = [asyncio.ensure_future(http.client.request("POST", "/api/auth/login", body=body))
                for _ in range(2)]
        await until(lambda: pool.pending == 2, what="two logins waiting on the hasher")
        refused = await http.client.request("POST", "/api/auth/login", body=body)
        gate.opened.set()
        return refused, await asyncio.gather(*slow)

    try:
        refused, slow = run(scenario())
    finally:
        pool.close()
        app.settings.close()
    assert refused.status_code == 429, refused.text
    assert refused.json["error"] == "busy" and refused.json["code"] == 429
    assert refused.json["message"] and refused.json["timestamp"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert [r.status_code for r in slow] == [401, 401]  # checked (and wrong), not refused
