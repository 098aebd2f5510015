"""Composition root: builds every subsystem from the config, starts and stops them in order.

The DNS chain is built as dns/chain.py declares it, from the state its stages share.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from pathlib import Path

from . import __version__, systemd
from .config import Config, data_dir
from .config.schema import parse_hostport
from .dns import chain
from .dns.fastpath import FastPath
from .dns.server import DnsServer
from .dns.shared import Shared
from .dns.stages.cache import CacheStage
from .dns.stages.conditional import ConditionalStage
from .dns.stages.filter import FilterStage
from .dns.stages.forward import ForwardStage
from .dns.stages.guard import GuardStage
from .dns.stages.local import LocalStage
from .dns.stages.policy import PolicyStage
from .dns.stages.private import PrivateStage
from .storage.querylog import QueryLogDB
from .storage.settings import SettingsDB
from .telemetry.events import EventBus
from .telemetry.recorder import Recorder

log = logging.getLogger(__name__)

GC_GEN0_THRESHOLD = 10_000  # allocations between young collections (CPython's default is 700)


class App:
    """The running appliance. ``await app.start()``, then ``await app.stop()``."""

    def __init__(self, config: Config):
        from . import runtime_config
        from .logfile import LOGGING_KEYS, apply_logging
        self.base_config = config  # file + environment, before the API's saved overrides
        # Settings changed through the API were saved as overrides: they win over the file.
        config = runtime_config.load_overrides(config, data_dir(config) / "settings.db")
        if any(config.source(k) == "runtime" for k in LOGGING_KEYS):
            apply_logging(config)
        self.config = config
        self.started_mono = time.monotonic()
        self.version = __version__
        self.ready = False
        self.data_dir = data_dir(config)
        self.settings: SettingsDB | None = None
        self.auth = None  # AuthService once storage is open
        self.pause = None  # BlockingPause once storage is open
        self.lists = None  # filtering.manager.ListManager: downloads, compiles, swaps the index
        self.groups = None  # filtering.groups.Groups: client groups, once storage is open
        self.zones = None  # zones.store.ZoneStore: local records and zones (/api/localrecords, /api/zones)
        self._secondaries: dict = {}  # origin → (zones.axfr.SecondaryZone, refresh task) for slave zones
        self.forwarding = None  # forwarding.ForwardRules: conditional forwarding (/api/conditionalforwarding)
        self.rpz = None  # filtering.rpz.HandZones: rules of RPZ zones made by hand
        self.threats = None  # filtering.threats.ThreatReporter: security events for threat-feed hits
        self.list_store = None
        self._pause_timer = None
        self.eventlog = None  # audit and system events, stored in the settings DB
        self.querylog: QueryLogDB | None = None
        self.recorder: Recorder | None = None
        self.events = EventBus()
        self.api_server = None
        self.exit_code = 0
        self._wipe_on_stop = False  # set by factory_reset()
        self.appliance = None
        self.fault: str | None = None  # needs a person (status LED, /api/system, /readyz): set by start
        self._watchdog = None
        self._stopping = asyncio.Event()
        self._build_dns()

    # ---- construction -------------------------------------------------------------------------

    def _build_dns(self) -> None:
        # The state several stages share first (blocking settings, upstream routes; the stores
        # join in start), then the chain as dns/chain.py declares it, each stage from its options.
        self.shared = Shared.from_config(self.config)
        self.chain = chain.build(self.config, self.shared)
        of = self.chain.of
        self.guard, self.local, self.conditional, self.private = (
            of(GuardStage), of(LocalStage), of(ConditionalStage), of(PrivateStage))
        self.policy, self.filter, self.cache_stage, self.forward = (
            of(PolicyStage), of(FilterStage), of(CacheStage), of(ForwardStage))
        self.acl = self.guard.acl  # the server's fast path checks the same access list
        self.cache = self.cache_stage.cache
        self.upstreams = self.shared.routes.default
        self.fastpath = FastPath()
        self.dns: DnsServer | None = None

    @property
    def limiter(self):
        """The guard's rate limiter (None while rate limiting is off); the server's fast path
        consults the same one (runtime_config hands it over after a change)."""
        return self.guard.limiter

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings = SettingsDB(self.data_dir / "settings.db")
        from .storage.events import EventLog
        self.eventlog = EventLog(self.settings)
        await self.eventlog.start(self.events)
        self._repair_stored_state()  # before anything below reads a stored row
        from .filtering.pause import BlockingPause
        self.pause = self.shared.pause = BlockingPause(self.settings, on_change=self.answers_changed)
        from .filtering.userlists import UserList
        self.shared.allow_list = UserList(self.settings, "filtering.whitelist")
        self.shared.deny_list = UserList(self.settings, "filtering.denylist")
        self.policy.load(self.settings.get("policies", []))  # ordered rule dicts (/api/policies)
        from .filtering.groups import Groups
        self.groups = self.shared.groups = Groups(self.settings)
        from .zones.store import ZoneStore
        self.zones = ZoneStore(self.settings)
        self._rebuild_local()  # local records and zones answer from the first query
        from .forwarding import ForwardRules
        self.forwarding = self.conditional.rules = ForwardRules(self.settings, self.upstreams.settings)
        from .filtering.threats import ThreatReporter
        self.threats = ThreatReporter(lambda event: self.events.publish("events", event))
        self.filter.on_threat = self.threats
        self._arm_pause_expiry()  # a pause from before a restart still ends on time
        from .auth import AuthService
        self.auth = AuthService(self.settings, self.data_dir)
        self.auth.set_event_sink(lambda event: self.events.publish("events", event))
        self.querylog = QueryLogDB(self.data_dir / "querylog.db", ram_dir=cfg["storage.query_log_ram_dir"])
        self.recorder = Recorder(self.querylog, flush_interval=cfg["storage.query_log_flush_interval"],
                                 retention_days=cfg["storage.query_log_retention_days"],
                                 max_bytes=cfg["storage.query_log_max_bytes"], bus=self.events,
                                 persist_interval=cfg["storage.query_log_persist_interval"])
        await self.recorder.start()
        from .board.appliance import Appliance  # lazily: hardware seams are not needed for DNS
        self.appliance = Appliance(self)
        await self.appliance.start()  # LEDs show "booting" while the rest starts
        await self._start_lists()  # the last good index answers before any download
        self.dns = DnsServer(self.chain, self.fastpath, self.acl, self.limiter, self.recorder.ring,
                             decision_trace=cfg["server.decision_trace"],
                             tcp_idle_timeout=cfg["server.tcp_idle_timeout"],
                             max_tcp_connections=cfg["server.max_tcp_connections"],
                             max_tcp_per_client=cfg["server.max_tcp_per_client"],
                             tcp_message_timeout=cfg["server.tcp_message_timeout"],
                             loop_ports=self.upstreams.local_ports, view_of=self._view_of)
        listen = [parse_hostport(a, 53) for a in cfg["server.listen_address"]]
        await self.dns.start(listen)
        self._check_static_loop()
        self._tasks = []
        if self.dns.wildcard_ports and self.appliance is not None \
                and self.appliance.local_addresses() is not None:
            self.dns.set_local_addresses(self.appliance.local_addresses())
            self._tasks.append(asyncio.ensure_future(self._follow_addresses()))
        from .api import create_api  # imported late: the web layer is not needed to answer DNS
        self.api = create_api(self)
        self.api.web.limit(cfg["server.http_max_connections"], cfg["server.http_max_connections_per_client"],
                           cfg["server.http_request_deadline"])
        host, port = parse_hostport(cfg["server.web_ui_address"], 8080)
        self.api_server = await self.api.web.start_server(host, port, start_serving=False)
        await self.api_server.start_serving()
        self.web_port = self.api_server.sockets[0].getsockname()[1]
        log.info("admin page and API on http://%s:%d/", host if ":" not in host else f"[{host}]", self.web_port)
        self._tasks.append(asyncio.ensure_future(self._housekeeping()))
        self._sync_secondaries()
        # Start-up objects live forever: keep them out of every future collection. And collect
        # the young generation less often: each query makes a few short-lived tuples, and at
        # the default threshold (700) a busy resolver spends a few percent in the collector.
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        self.ready = True
        if self.appliance is not None:
            self.appliance.refresh()  # leave "booting" on the LEDs and in the API at once
        log.info("Burrow %s ready", __version__)
        systemd.ready(f"answering DNS on {len(listen)} address(es)")
        self._watchdog = systemd.Watchdog()  # pings from the loop: a hung loop gets restarted
        self._watchdog.start()

    def _repair_stored_state(self) -> None:
        """Burrow never refuses to start over bad stored state: a row (or one entry of a row's
        JSON value) the API would refuse — from a hand edit, an old restore, a bug — is moved to
        the quarantine table, logged as an event and shown as a fault; DNS starts with the rest
        (burrow/state_check.py)."""
        from . import state_check
        from .storage.events import publish_event
        try:
            moved, reported = state_check.repair(self.settings, state_check.context_of(self))
        except Exception as e:  # the check itself must not be what stops the start
            log.exception("checking the stored settings failed")
            self.fault = f"the stored settings could not be checked ({type(e).__name__})"
            return
        for problem in reported[:state_check.MAX_REPORTED]:
            log.warning("stored settings: %s (left in place)", problem)
        for problem, qid in moved[:state_check.MAX_REPORTED]:
            log.error("stored settings: %s: moved to quarantine #%d", problem, qid)
            publish_event(self.events, "settings.quarantined", actor="system", severity="error",
                          summary=f"{problem}; moved aside to quarantine #{qid}", table=problem.table,
                          row=problem.row, field=problem.field, quarantine_id=qid)
        if moved:
            first = str(moved[0][0])
            self.fault = (f"{len(moved)} invalid stored setting(s) moved to quarantine at start "
                          f"(first: {first[:160]}{'…' if len(first) > 160 else ''})")

    def _check_static_loop(self) -> None:
        """An upstream that is one of our own listeners would forward to ourselves forever."""
        ours = set(self.dns.addresses)
        for server in self.upstreams.servers:
            if (server.host, server.port) in ours or (
                    server.port in {p for _, p in ours}
                    and any(h in ("0.0.0.0", "::") for h, _ in ours)):
                server.loop_detected = True
                log.error("upstream %s is Burrow itself: not used (forwarding loop)", server.label)

    async def _start_lists(self) -> None:
        from .filtering import download
        from .filtering.manager import ListManager
        from .filtering.sources import ListStore
        lists_dir = self.data_dir / "lists"
        lists_dir.mkdir(exist_ok=True)
        local_dirs = [str(lists_dir), *self.config["filtering.local_list_dirs"]]
        self.list_store = ListStore(self.settings, local_dirs)
        self.lists = ListManager(self.list_store, self.data_dir / "lists-cache", self.data_dir / "blocklist.index",
                                 resolve=download.upstream_resolver(self.upstreams), on_swap=self._swap_index,
                                 on_event=lambda event: self.events.publish("lists", event), local_dirs=local_dirs)
        from .filtering.rpz import HandZones
        self.rpz = HandZones(self.settings, str(lists_dir))  # RPZ zones made by hand (/api/rpz)
        self.rpz.sync(row["id"] for row in self.list_store.list() if row["format"] == "rpz")
        self.filter.list_groups = self._list_groups
        await self.lists.start()

    def _list_groups(self) -> dict[int, list]:
        """Index list id → the groups the list applies to (empty: every group)."""
        return {row["id"] - 1: row["groups"] for row in self.list_store.list()}

    def _view_of(self, ip: str) -> str:
        return self.groups.view_of(ip) if self.groups is not None else "default"

    def _swap_index(self, index) -> None:
        """A new compiled index is live: decisions made under the old one must not be replayed."""
        self.filter.set_index(index)
        if self.dns is not None:
            self.dns.invalidate()

    # ---- local data and secondary zones -------------------------------------------------------

    def _rebuild_local(self) -> None:
        from .zones.localdata import LocalData
        self.zones.take_changes()  # this full build covers whatever the store noted
        self.local.set_data(LocalData.from_store(self.zones, expired=self._zone_expired))

    def local_edited(self) -> None:
        """The zone store was just written through its own methods (the API). An edit of local
        records only updates the snapshot for the owner names it touched (an edit costs the
        same with 20 records as with 2,000); anything else takes local_changed's full path."""
        owners = self.zones.take_changes()
        if owners is None:
            self.local_changed()
            return
        self.local.set_data(self.local.data.with_local(self.zones.local_records(owners)))
        if self.dns is not None:
            self.dns.invalidate()

    def local_changed(self) -> None:
        """Local records or zones changed (API, CLI via SIGHUP, a transfer): new snapshot, secondaries
        in step with the zones, and no answer decided from the old data replayed."""
        self._rebuild_local()
        self._sync_secondaries()
        if self.dns is not None:
            self.dns.invalidate()

    def _zone_expired(self, origin: str) -> bool:
        entry = self._secondaries.get(origin)
        return entry is None or entry[0].expired()  # no refresher yet: nothing trustworthy to serve

    def _sync_secondaries(self) -> None:
        """One refresh task per slave zone; zones deleted, changed to master or given other
        primaries lose theirs (a new one starts for the new primaries)."""
        if self.zones is None or self.dns is None:
            return  # start() calls this once the resolver runs
        from .zones.axfr import SecondaryZone
        wanted = {z["name"]: z for z in self.zones.zones() if z["type"] == "slave" and z["primaries"]}
        for origin in list(self._secondaries):
            _sec, task, primaries = self._secondaries[origin]
            zone = wanted.get(origin)
            if zone is None or tuple(zone["primaries"]) != primaries:
                task.cancel()
                del self._secondaries[origin]
        stored = {z.origin: z for z in self.zones.snapshot()}
        for origin, zone in wanted.items():
            if origin in self._secondaries:
                continue
            sec = SecondaryZone(origin, zone["primaries"])
            have = stored.get(origin)
            if have is not None and have.records and have.last_transfer:
                # the copy on disk keeps its age across a restart: expiry counts from the transfer
                sec.load(have.records, now=time.monotonic() - max(0.0, time.time() - have.last_transfer))
            task = asyncio.ensure_future(self._refresh_secondary(origin, sec))
            self._secondaries[origin] = (sec, task, tuple(zone["primaries"]))

    async def _refresh_secondary(self, origin: str, sec) -> None:
        from .zones.axfr import AxfrError
        was_expired = sec.expired()
        while True:
            try:
                records = await sec.refresh_once()
            except AxfrError as e:
                log.warning("zone %s: transfer failed: %s", origin, e)
                self.zones.transfer_failed(origin, str(e))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bad transfer must not end the schedule
                log.exception("zone %s: refresh failed", origin)
                sec.failed(str(e))
                self.zones.transfer_failed(origin, str(e))
            else:
                if records is not None:
                    self.zones.store_transfer(origin, records)
                    log.info("zone %s: transferred %d records (serial %s)", origin, len(records), sec.serial)
                    self._rebuild_local()
                    if self.dns is not None:
                        self.dns.invalidate()
                else:
                    self.zones.transfer_checked(origin)
            if sec.expired() != was_expired:  # expiry changes answers (SERVFAIL): drop replays
                was_expired = sec.expired()
                self._rebuild_local()
                if self.dns is not None:
                    self.dns.invalidate()
            await asyncio.sleep(max(1.0, min(sec.seconds_until_check(), 3600.0)))

    def answers_changed(self) -> None:
        """Something that shapes answers changed: drop fast-path answers decided before it."""
        self.filter.forget_views()
        if self.dns is not None:
            self.dns.invalidate()
        if self.appliance is not None:
            self.appliance.refresh()
        self._arm_pause_expiry()

    def _arm_pause_expiry(self) -> None:
        """A timed pause ends by itself: answers must change at that moment, not at the next edit."""
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        remaining = self.pause.next_expiry() if self.pause is not None else None
        if remaining is not None:
            self._pause_timer = asyncio.get_running_loop().call_later(remaining + 0.05, self.answers_changed)

    def reload_settings(self) -> None:
        """Re-read everything kept in the settings DB (after a backup restore): the API's config
        overrides, the allow/deny lists and the pause, and apply them live."""
        from . import runtime_config
        from .filtering.groups import Groups
        from .filtering.pause import BlockingPause
        from .filtering.userlists import UserList
        runtime_config.apply(self, runtime_config.load_overrides(self.base_config, self.settings))
        self.shared.allow_list = UserList(self.settings, "filtering.whitelist")
        self.shared.deny_list = UserList(self.settings, "filtering.denylist")
        self.pause = self.shared.pause = BlockingPause(self.settings, on_change=self.answers_changed)
        self.policy.load(self.settings.get("policies", []))
        self.groups = self.shared.groups = Groups(self.settings)
        self.forwarding.reload()
        if self.rpz is not None:  # hand-made RPZ zones' files follow their restored rules
            self.rpz.sync(row["id"] for row in self.list_store.list() if row["format"] == "rpz")
            self.lists.wake()
        self.local_changed()
        self.answers_changed()

    # The button and the status lights use these (board/appliance.py).
    def blocking_paused(self) -> bool:
        return self.pause is not None and self.pause.paused()

    def pause_remaining(self) -> float | None:
        return self.pause.remaining() if self.pause is not None else None

    def toggle_pause(self, seconds: float) -> None:
        now_paused = self.pause.toggle(seconds)
        self.events.publish("events", {"type": "blocking.paused" if now_paused else "blocking.resumed",
                                       "actor": "button", "summary": "button press"})

    async def _follow_addresses(self) -> None:
        """Keep per-address UDP sockets in step with the network (see DnsServer)."""
        subscription = self.events.subscribe("network", maxsize=8)
        try:
            async for _event in subscription:
                ips = self.appliance.local_addresses()
                if ips is not None:
                    self.dns.set_local_addresses(ips)
        finally:
            self.events.unsubscribe(subscription)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config["rate_limit.cleanup_interval"])  # may change live
            if self.limiter is not None:
                self.limiter.sweep(time.monotonic())

    async def stop(self) -> None:
        self.ready = False
        for t in getattr(self, "_tasks", []):
            t.cancel()
        for _sec, task, _primaries in self._secondaries.values():
            task.cancel()
        if self.dns is not None:
            await self.dns.stop()
        if self.api_server is not None:
            self.api_server.close()
        if self.auth is not None:
            self.auth.close()  # the password workers: no check starts after the API is closed
        if self.lists is not None:
            await self.lists.stop()
        if self.recorder is not None:
            await self.recorder.stop()
        if self.eventlog is not None:
            await self.eventlog.stop()
        if self.settings is not None:
            self.settings.close()
        if self.appliance is not None:
            await self.appliance.stop()
        if self._watchdog is not None:
            await self._watchdog.stop()
        if self._wipe_on_stop:
            self._wipe_data()
        log.info("Burrow stopped")

    # Files a factory reset removes: everything Burrow writes, nothing else in the folder.
    WIPE_PATTERNS = ("settings.db", "settings.db-wal", "settings.db-shm", "settings.db-journal",
                     "querylog*.db", "querylog*.db-*", "jwt.key", "lists/rpz-*.zone")

    def factory_reset(self) -> None:
        """Wipe settings, users, keys and the query log, then restart (exit code 75).

        The first-run setup appears again. Called by the button's confirmed 15-second hold.
        """
        log.warning("factory reset: wiping %s and restarting", self.data_dir)
        self.events.publish("events", {"type": "system.factory_reset", "severity": "warning",
                                       "summary": "factory reset requested"})
        self._wipe_on_stop = True
        self.request_stop(systemd.RESTART_EXIT_CODE)

    def _wipe_data(self) -> None:
        dirs = {self.data_dir}
        ram_dir = self.config["storage.query_log_ram_dir"]
        if ram_dir:
            dirs.add(Path(ram_dir))
        for folder in dirs:
            for pattern in self.WIPE_PATTERNS:
                for path in folder.glob(pattern):
                    try:
                        path.unlink()
                    except OSError as e:
                        log.error("factory reset: cannot remove %s: %s", path, e)
        log.warning("factory reset done")

    def request_stop(self, exit_code: int = 0) -> None:
        """Stop as on SIGTERM, then exit with ``exit_code`` (75: systemd restarts us)."""
        self.exit_code = exit_code
        self._stopping.set()

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        # `burrow zone import` edits the settings DB from a shell and sends SIGHUP: re-read local data.
        loop.add_signal_handler(signal.SIGHUP, self._reload_zones)
        pid_file = self.data_dir / "burrow.pid"
        pid_file.write_text(f"{os.getpid()}\n")
        try:
            await self._stopping.wait()
            log.info("stopping on signal")
            systemd.stopping()
            await self.stop()
        finally:
            try:
                pid_file.unlink()
            except OSError:
                pass

    def _reload_zones(self) -> None:
        log.info("SIGHUP: reloading local records and zones")
        try:
            self.local_changed()
        except Exception:
            log.exception("reloading local data failed; the previous data keeps answering")

    # ---- state for the API --------------------------------------------------------------------

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_mono

    def readiness(self) -> tuple[bool, dict]:
        """(ready, checks) for /readyz: storage, upstreams, blocklist."""
        checks = {}
        storage_ok = self.settings is not None and self.recorder is not None \
            and not self.recorder.last_flush_error
        checks["storage"] = "ok" if storage_ok else "degraded"
        healthy = self.upstreams.healthy_count
        checks["upstreams"] = "ok" if healthy == len(self.upstreams.servers) else (
            "degraded" if healthy else "unavailable")
        checks["blocklist"] = "ok" if self.filter.index is not None else "not_configured"
        checks["policy_engine"] = "ok" if self.policy.engine.rules else "not_configured"
        checks["settings"] = "fault" if self.fault else "ok"  # see app.fault; DNS works, still ready
        ready = self.ready and storage_ok and healthy > 0
        return ready, checks

    def purge_cache(self) -> int:
        n = self.cache_stage.purge()
        self.dns.invalidate()
        return n
