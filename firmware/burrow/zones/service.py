"""Local records and zones as a running service: the answering snapshot and the secondary-zone
refresh schedule.

``ZoneService`` owns what the local stage answers from. The store (``store.py``) is where
records live; ``localdata.py`` turns the store into the immutable snapshot the local stage
answers from, and this module keeps that snapshot in step:

- ``edited()`` after the API wrote through the store's own methods (a local-records edit
  updates only the owners it touched),
- ``changed()`` after anything else (a restore, ``burrow zone import`` + SIGHUP): a full
  rebuild, secondaries in step with the zones,
- and each slave zone gets one refresh task (RFC 1034 §4.3.5, ``axfr.SecondaryZone``),
  supervised: a refresh loop that dies is started again by ``REFRESH_POLICY``.

Whenever answers may have changed it announces ``Change.ZONES`` (burrow/changes.py): the fast
path must not replay an answer decided from the old data. Started after the lists and before the DNS listeners
(see the order in burrow/app.py): the snapshot is built when the service is made, so the
first query is answered from it; ``start()`` begins the refresh schedule.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from ..changes import Announce, Change
from ..lifecycle import Restart, Supervised, Supervisor
from .axfr import AxfrError, SecondaryZone
from .localdata import LocalData
from .store import ZoneStore

log = logging.getLogger(__name__)

# A refresh loop catches its transfer errors itself; one that still dies (its error handling
# failed, e.g. storage refused the failure note) keeps nothing between rounds: start it again,
# and call it a fault after five deaths in ten minutes.
REFRESH_POLICY = Restart(max_restarts=5, window=600.0, backoff=1.0, max_backoff=60.0)
MAX_SLEEP = 3600.0  # seconds a refresh loop sleeps at most before looking at its schedule again


class ZoneService:
    """The local data snapshot and the slave zones' refresh tasks.

    :param store: the durable store (``/api/localrecords``, ``/api/zones``, ``/api/dns-records``).
    :param publish: hands a new snapshot to the local stage (``LocalStage.set_data``).
    :param on_change: told ``Change.ZONES`` after every change of answers (burrow/changes.py).
    :param supervisor: runs the refresh tasks.
    """

    name = "zones"

    def __init__(self, store: ZoneStore, publish: Callable[[LocalData], None], on_change: Announce,
                 supervisor: Supervisor):
        self.store = store
        self._publish = publish
        self._on_change = on_change
        self.supervisor = supervisor
        # origin → (schedule, its supervised refresh task, the primaries it was made for)
        self._secondaries: dict[str, tuple[SecondaryZone, Supervised, tuple]] = {}
        self._running = False
        self.data: LocalData = LocalData()
        self.rebuild()  # local records and zones answer from the first query

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._running = True
        self.sync_secondaries()

    async def stop(self) -> None:
        self._running = False
        entries = list(self._secondaries.values())
        self._secondaries.clear()
        for _sec, task, _primaries in entries:
            task.cancel()
        await asyncio.gather(*(task.wait() for _sec, task, _p in entries))

    def background_tasks(self) -> list[asyncio.Task]:
        return []  # the refresh tasks run under the supervisor

    def snapshot(self) -> dict:
        return {"records": self.data.stats().get("records"),
                "secondaries": {origin: {"serial": sec.serial, "expired": sec.expired()}
                                for origin, (sec, _task, _p) in sorted(self._secondaries.items())}}

    # ---- the snapshot ---------------------------------------------------------------------------

    def rebuild(self) -> None:
        """A full snapshot from the store (covers whatever the store noted as changed)."""
        self.store.take_changes()
        self._set(LocalData.from_store(self.store, expired=self.expired))

    def edited(self) -> None:
        """The store was just written through its own methods (the API). An edit of local
        records only updates the snapshot for the owner names it touched (an edit costs the
        same with 20 records as with 2,000); anything else takes :meth:`changed`'s full path."""
        owners = self.store.take_changes()
        if owners is None:
            self.changed()
            return
        self._set(self.data.with_local(self.store.local_records(owners)))
        self._on_change(Change.ZONES)

    def changed(self) -> None:
        """Local records or zones changed behind the store's back (a restore, the CLI via
        SIGHUP): a new snapshot, secondaries in step with the zones, and no answer decided from
        the old data replayed."""
        self.rebuild()
        self.sync_secondaries()
        self._on_change(Change.ZONES)

    def _set(self, data: LocalData) -> None:
        self.data = data
        self._publish(data)

    # ---- secondary zones ------------------------------------------------------------------------

    def expired(self, origin: str) -> bool:
        """Whether a slave zone's copy is past its EXPIRE (answered SERVFAIL then)."""
        entry = self._secondaries.get(origin)
        return entry is None or entry[0].expired()  # no refresher yet: nothing trustworthy to serve

    def sync_secondaries(self) -> None:
        """One refresh task per slave zone; zones deleted, changed to master or given other
        primaries lose theirs (a new one starts for the new primaries)."""
        if not self._running:
            return  # start() calls this
        wanted = {z["name"]: z for z in self.store.zones() if z["type"] == "slave" and z["primaries"]}
        for origin in list(self._secondaries):
            _sec, task, primaries = self._secondaries[origin]
            zone = wanted.get(origin)
            if zone is None or tuple(zone["primaries"]) != primaries:
                task.cancel()
                self.supervisor.faults.clear(f"task:{_task_name(origin)}")
                del self._secondaries[origin]
        stored = {z.origin: z for z in self.store.snapshot()}
        for origin, zone in wanted.items():
            if origin in self._secondaries:
                continue
            sec = SecondaryZone(origin, zone["primaries"])
            have = stored.get(origin)
            if have is not None and have.records and have.last_transfer:
                # the copy on disk keeps its age across a restart: expiry counts from the transfer
                sec.load(have.records, now=time.monotonic() - max(0.0, time.time() - have.last_transfer))
            task = self.supervisor.spawn(_task_name(origin), functools.partial(self._refresh, origin, sec),
                                         REFRESH_POLICY)
            self._secondaries[origin] = (sec, task, tuple(zone["primaries"]))

    async def _refresh(self, origin: str, sec: SecondaryZone) -> None:
        was_expired = sec.expired()
        while True:
            try:
                records = await sec.refresh_once()
            except AxfrError as e:
                log.warning("zone %s: transfer failed: %s", origin, e)
                self.store.transfer_failed(origin, str(e))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bad transfer must not end the schedule
                log.exception("zone %s: refresh failed", origin)
                sec.failed(str(e))
                self.store.transfer_failed(origin, str(e))
            else:
                if records is not None:
                    self.store.store_transfer(origin, records)
                    log.info("zone %s: transferred %d records (serial %s)", origin, len(records), sec.serial)
                    self.rebuild()
                    self._on_change(Change.ZONES)
                else:
                    self.store.transfer_checked(origin)
            if sec.expired() != was_expired:  # expiry changes answers (SERVFAIL): drop replays
                was_expired = sec.expired()
                self.rebuild()
                self._on_change(Change.ZONES)
            await asyncio.sleep(max(1.0, min(sec.seconds_until_check(), MAX_SLEEP)))


def _task_name(origin: str) -> str:
    return f"zone-refresh {origin}"
