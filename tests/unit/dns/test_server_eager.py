"""DnsServer.run_eagerly: a slow-path coroutine runs at once and gets a Task only if it waits."""

import asyncio
import collections

import pytest

from burrow.config.schema import DEFAULT_ALLOWED_NETWORKS
from burrow.dns.access import AccessControl
from burrow.dns.fastpath import FastPath
from burrow.dns.server import DnsServer
from tests.support.timing import until


def server():
    return DnsServer(None, FastPath(), AccessControl(DEFAULT_ALLOWED_NETWORKS), None,
                     collections.deque(maxlen=10))


def test_a_coroutine_that_never_waits_finishes_inside_the_call_without_a_task():
    async def main():
        s = server()
        done = []

        async def work():
            done.append(asyncio.current_task())

        s.run_eagerly(work())
        # Finished before run_eagerly returned, in the caller's own task; no task made for it.
        assert done == [asyncio.current_task()]
        assert not s._tasks

    asyncio.run(main())


def test_in_a_reader_callback_it_runs_without_a_current_task():
    async def main():
        s = server()
        seen = []
        loop = asyncio.get_running_loop()

        async def work():
            seen.append(asyncio.current_task())

        fired = loop.create_future()
        loop.call_soon(lambda: (s.run_eagerly(work()), fired.set_result(None)))
        await fired
        return seen, s._tasks

    seen, tasks = asyncio.run(main())
    assert seen == [None] and not tasks


def test_a_wait_hands_the_rest_to_a_task_with_the_future_result():
    async def main():
        s = server()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        got = []

        async def work():
            got.append("before")
            got.append(await fut)
            await asyncio.sleep(0)  # a bare yield is handled too
            got.append("after")

        s.run_eagerly(work())
        assert got == ["before"] and len(s._tasks) == 1
        for _ in range(3):  # let the task take the future over and wait on it
            await asyncio.sleep(0)
        assert got == ["before"]
        fut.set_result(42)
        await until(lambda: len(got) == 3 and not s._tasks, what="the coroutine to finish")
        return got, s._tasks

    got, tasks = asyncio.run(main())
    assert got == ["before", 42, "after"] and not tasks


def test_an_exception_of_the_awaited_future_is_raised_inside_the_coroutine():
    async def main():
        s = server()
        fut = asyncio.get_running_loop().create_future()
        got = []

        async def work():
            try:
                await fut
            except ValueError as e:
                got.append(str(e))

        s.run_eagerly(work())
        await asyncio.sleep(0)
        fut.set_exception(ValueError("upstream gone"))
        await until(lambda: got, what="the coroutine to see the exception")
        return got

    assert asyncio.run(main()) == ["upstream gone"]


@pytest.mark.parametrize("steps_before_stop", [0, 3], ids=["before-its-task-starts", "while-its-task-waits"])
def test_stopping_the_server_cancels_a_waiting_coroutine_inside_it(steps_before_stop):
    async def main():
        s = server()
        fut = asyncio.get_running_loop().create_future()
        got = []

        async def work():
            try:
                await fut
            except asyncio.CancelledError:
                got.append("cancelled")
                raise

        s.run_eagerly(work())
        for _ in range(steps_before_stop):  # let the task take its first step and wait on fut
            await asyncio.sleep(0)
        await s.stop()
        await until(lambda: got and not s._tasks, what="the coroutine to be cancelled")
        return got, fut.cancelled(), s._tasks

    got, cancelled, tasks = asyncio.run(main())
    assert got == ["cancelled"] and cancelled and not tasks


def test_a_failure_before_any_wait_is_raised_to_the_caller():
    async def main():
        async def work():
            raise KeyError("boom")

        with pytest.raises(KeyError):
            server().run_eagerly(work())

    asyncio.run(main())

