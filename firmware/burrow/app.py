"""Composition root: builds every service from the config, starts them in one declared order
and stops them in the reverse order.

``App.build()`` makes the typed container (burrow/services.py) and hands each consumer only
the services it uses; ``start()`` runs the :class:`~burrow.lifecycle.Lifecycle` over
``START_ORDER``; ``stop()`` runs it backwards. Nothing else wires components together.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from pathlib import Path

from . import __version__, runtime_config, state_check, systemd
from .api import create_api
from .faces import adguard as adguard_face
from .api.routes import WebSettings
from .api.server import WebService
from .auth import AuthService
from .backup import FactoryReset
from .board.appliance import Appliance, ButtonActions
from .changes import Change, Changes
from .clock import ClockGate
from .config import Config, data_dir
from .faces import pihole
from .filtering import download
from .filtering.groups import Groups
from .filtering.manager import ListManager
from .filtering.pause import BlockingPause
from .filtering.rpz import HandZones
from .filtering.sources import ListStore
from .filtering.threats import ThreatReporter
from .filtering.userlists import UserList
from .forwarding import ForwardRules
from .health import Health
from .lifecycle import Faults, Lifecycle, Supervisor
from .policy.store import PolicyStore
from .logfile import LOGGING_KEYS, apply_logging
from .resolver import Resolver
from .services import Services
from .storage.events import EventLog, publish_event
from .storage.health import StorageHealth
from .storage.querylog import QueryLogDB
from .storage.settings import SettingsDB
from .tls.service import TlsService
from .telemetry.events import EventBus
from .telemetry.recorder import Recorder
from .zones.service import ZoneService
from .zones.store import ZoneStore

log = logging.getLogger(__name__)

GC_GEN0_THRESHOLD = 10_000  # allocations between young collections (CPython's default is 700)

# The services in the order they start; they stop in the reverse order. Each position, and why.
START_ORDER = (
    ("storage", "everything below reads or writes the settings DB; checked first, so a card that "
                "cannot be written is a fault from the first second; stops last, closing the DB"),
    ("eventlog", "writes the events of the start itself (a quarantine) and of everything after; "
                 "stops after the others have published their last"),
    ("querylog", "row ids reserved and the ring drained before the first answered query; stops "
                 "after DNS, so the last answers are written"),
    ("board", "the LEDs say \"booting\" while the rest starts, and the network snapshot is there "
              "before DNS binds one socket per address"),
    ("clock", "watches for network time before the lists' first download (burrow/clock.py); nothing "
              "else waits for it: DNS answers from the last good index meanwhile"),
    ("lists", "the last good index answers before any download"),
    ("zones", "secondary zones refresh on their own schedule (the snapshot DNS answers from was "
              "built with the service)"),
    ("dns", "listeners open once everything they answer from is in place"),
    ("web", "the admin page and API: they serve what the others built; stop early, so no "
            "change arrives while the rest stops"),
    ("pihole", "Pi-hole's API on its own port (burrow/faces/pihole), for Home Assistant and two-box "
               "sync: after the web, which it resembles; a port it cannot bind is a fault, not a failed start"),
    ("tls", "the certificate, then DNS over TLS and HTTPS (the web's Api over TLS): after the plain "
            "listeners, so a certificate problem never keeps plain DNS from answering; stops first"),
)

# Changes after which the lists each client group uses may differ: each view's list mask is
# recomputed (groups and clients, a list added, removed or given other groups). A new index
# recomputes them itself (FilterStage.set_index). The pause is here as it always was.
VIEWS_CHANGE = frozenset({Change.GROUPS, Change.LISTS, Change.PAUSE})


def answers_changed(change: Change, resolver: Resolver, health: Health) -> None:
    """The one subscriber to what the stores announce (burrow/changes.py), and the one place
    that decides what each change needs. Every change can alter an answer: none decided before
    it is replayed (the fast path's generation moves)."""
    if change in VIEWS_CHANGE:
        resolver.filter.forget_views()
    resolver.invalidate()
    if change is Change.PAUSE:  # a pause, a resume, a timed pause's end: the status shows it
        health.changed()


class App:
    """The running appliance. ``await app.start()``, then ``await app.stop()``.

    ``build()`` (called by ``start()``) opens storage and makes every service without starting
    any; tests use it to get a real container without sockets.
    """

    def __init__(self, config: Config):
        self.base_config = config  # file + environment, before the API's saved overrides
        # Settings changed through the API were saved as overrides: they win over the file.
        config = runtime_config.load_overrides(config, data_dir(config) / "settings.db")
        if any(config.source(k) == "runtime" for k in LOGGING_KEYS):
            apply_logging(config)
        self.config = config
        self.version = __version__
        self.data_dir = data_dir(config)
        self.events = EventBus()
        # What needs a person (status LED, /api/system, /readyz), and the background tasks that
        # report into it when they die.
        self.faults = Faults()
        self.supervisor = Supervisor(self.faults)
        # Plain HTTP (no redirect, no HSTS, no Secure cookies) until the TLS service opens its
        # HTTPS listener and says so (_https_changed; api/routes.py WebSettings).
        self.web_settings = WebSettings(tls=False)
        self.services: Services | None = None
        self.exit_code = 0
        self._watchdog: systemd.Watchdog | None = None
        self._stopping = asyncio.Event()

    # ---- construction -------------------------------------------------------------------------

    def build(self) -> Services:
        """Open storage and make every service (started by :meth:`start`). Idempotent."""
        if self.services is not None:
            return self.services
        cfg, events, faults, supervisor = self.config, self.events, self.faults, self.supervisor
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = SettingsDB(self.data_dir / "settings.db")
        ram_dir = cfg["storage.query_log_ram_dir"]
        folders = [self.data_dir, *([Path(ram_dir)] if ram_dir else [])]
        storage = StorageHealth(folders, faults, supervisor=supervisor, closes=(settings,))
        eventlog = EventLog(settings, on_write=storage.report)
        eventlog.subscribe(events)  # before anything publishes: the start's own events are kept
        state = state_check.context(self.base_config, self.data_dir)
        self._repair_stored_state(settings, state)  # before anything below reads a stored row

        # Stores on the settings DB. Each announces its own changes to ``changes``; the one
        # subscriber (below, once the DNS core exists) decides what each change needs.
        changes = Changes()
        announce = changes.announce
        pause = BlockingPause(settings, on_change=announce)
        allow_list = UserList(settings, "filtering.whitelist", on_change=announce)
        deny_list = UserList(settings, "filtering.denylist", on_change=announce)
        groups = Groups(settings, on_change=announce)
        zone_store = ZoneStore(settings)
        auth = AuthService(settings, self.data_dir)
        def audit(event: dict) -> None:
            events.publish("events", event)

        auth.set_event_sink(audit)
        threats = ThreatReporter(audit)

        # Whether the wall clock is right yet: list downloads and the query log's age pruning
        # wait for it when clock.wait_for_sync is on (the image).
        clock = ClockGate(wait=cfg["clock.wait_for_sync"], sync_file=cfg["clock.sync_file"],
                          sources=cfg["clock.sync_sources"], max_wait=cfg["clock.max_wait_minutes"] * 60.0)

        # The query log and the DNS core.
        recorder = Recorder(QueryLogDB(self.data_dir / "querylog.db", ram_dir=ram_dir),
                            flush_interval=cfg["storage.query_log_flush_interval"],
                            retention_days=cfg["storage.query_log_retention_days"],
                            max_bytes=cfg["storage.query_log_max_bytes"], bus=events,
                            persist_interval=cfg["storage.query_log_persist_interval"],
                            on_write=storage.report)
        recorder.clock_ready = clock.is_open
        resolver = Resolver(cfg, supervisor, recorder.ring, view_of=groups.view_of)
        shared = resolver.shared  # what several stages read: the stores join it here
        shared.pause, shared.allow_list, shared.deny_list, shared.groups = pause, allow_list, deny_list, groups
        filt = resolver.filter
        filt.on_threat = threats
        policies = PolicyStore(settings, resolver.policy, on_change=announce, audit=audit)
        policies.reload()  # ordered rule dicts (/api/policies)
        forwarding = resolver.conditional.rules = ForwardRules(settings, resolver.upstreams.settings,
                                                               on_change=announce)
        zones = ZoneService(zone_store, resolver.local.set_data, announce, supervisor)

        # Filter lists: the store, the manager that downloads, compiles and swaps the index.
        lists_dir = self.data_dir / "lists"
        lists_dir.mkdir(exist_ok=True)
        local_dirs = [str(lists_dir), *cfg["filtering.local_list_dirs"]]
        list_store = ListStore(settings, local_dirs, on_change=announce)
        lists = ListManager(list_store, self.data_dir / "lists-cache", self.data_dir / "blocklist.index",
                            resolve=download.upstream_resolver(resolver.upstreams), on_swap=filt.set_index,
                            on_change=announce, on_event=lambda event: events.publish("lists", event),
                            local_dirs=local_dirs, clock_gate=clock)
        clock.subscribe(lists.wake)  # the deferred downloads start the moment the clock is set
        rpz = HandZones(settings, str(lists_dir), on_change=announce)  # RPZ zones made by hand (/api/rpz)
        rpz.sync(row["id"] for row in list_store.list() if row["format"] == "rpz")
        filt.list_groups = lambda: {row["id"] - 1: row["groups"] for row in list_store.list()}

        # What the status says, the board that shows it, and what its button does.
        live = runtime_config.LiveConfig(self.base_config, cfg, settings, resolver, on_change=announce,
                                         recorder=recorder)
        health = Health(faults, storage, resolver, pause, clock=clock)
        clock.subscribe(health.changed)  # the status (LEDs, the page) stops saying it waits
        changes.subscribe(lambda change: answers_changed(change, resolver, health))
        pause.arm()  # a pause from before a restart still ends on time
        reset = FactoryReset(folders, events.publish, self.request_stop)
        board = Appliance(live, events, health, ButtonActions(
            toggle_pause=lambda seconds: self._toggle_pause(pause, seconds), factory_reset=reset.reset,
            restart=lambda: self.request_stop(systemd.RESTART_EXIT_CODE)), data_dir=self.data_dir)
        recorder.on_blocked = board.activity  # blocked queries flicker the status LED
        resolver.follow_addresses(board.local_addresses, events)
        web = WebService(cfg["server.web_ui_address"], (cfg["server.http_max_connections"],
                         cfg["server.http_max_connections_per_client"], cfg["server.http_request_deadline"],
                         cfg["server.http_keepalive_timeout"]), auth)

        # The certificate and the TLS listeners: DoT on the DNS server, HTTPS on the web service.
        tls = TlsService(live, self.data_dir / "tls", supervisor, faults,
                         listeners={"dot": resolver.server, "https": web}, addresses=board.local_addresses,
                         on_https=self._https_changed, publish=audit, clock=clock)

        pihole_service = pihole.PiholeService(cfg["compat.pihole_address"], web.limits, faults)
        by_name = {s.name: s for s in (storage, eventlog, recorder, board, clock, lists, zones, resolver, web,
                                       pihole_service, tls)}
        lifecycle = Lifecycle([by_name[name] for name, _why in START_ORDER], supervisor)
        lifecycle.subscribe(health.phase_changed)
        services = Services(
            version=self.version, data_dir=self.data_dir, config=live, events=events, faults=faults,
            supervisor=supervisor, storage=storage, settings=settings, state=state,
            reload_settings=self.reload_settings, eventlog=eventlog, auth=auth, resolver=resolver, pause=pause,
            groups=groups, allow_list=allow_list, deny_list=deny_list, policies=policies,
            forwarding=forwarding, zones=zones, list_store=list_store, lists=lists, rpz=rpz, threats=threats,
            clock=clock,
            recorder=recorder, health=health, board=board, reset=reset, lifecycle=lifecycle, tls=tls)
        web.api = create_api(services, web, self.web_settings)  # each API module gets only the services it names
        pihole.attach(pihole_service, services)  # Pi-hole's API over the same services, on its own listener
        # AdGuard Home's API under /control/ on the same listener (faces/adguard; not in Burrow's OpenAPI)
        adguard_face.register(web.api, services, web_port=lambda: web.port or web.configured_port)
        self.services = services
        return services

    def _repair_stored_state(self, settings: SettingsDB, state: state_check.Context) -> None:
        """Burrow never refuses to start over bad stored state: a row (or one entry of a row's
        JSON value) the API would refuse — from a hand edit, an old restore, a bug — is moved to
        the quarantine table, logged as an event and shown as a fault; DNS starts with the rest
        (burrow/state_check.py)."""
        try:
            moved, reported = state_check.repair(settings, state)
        except Exception as e:  # the check itself must not be what stops the start
            log.exception("checking the stored settings failed")
            self.faults.set("settings", f"the stored settings could not be checked ({type(e).__name__})",
                            serving=True)
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
            # DNS answers from the rest: a fault for a person, not a reason to be unready.
            self.faults.set("settings", f"{len(moved)} invalid stored setting(s) moved to quarantine at start "
                                        f"(first: {first[:160]}{'…' if len(first) > 160 else ''})", serving=True)

    def _https_changed(self, port: int | None, hsts: bool) -> None:
        """The TLS service's HTTPS listener opened (its port), moved, or closed (None)."""
        settings = self.web_settings
        settings.tls, settings.https_port, settings.hsts = port is not None, port, hsts and port is not None

    def _toggle_pause(self, pause: BlockingPause, seconds: float) -> None:
        """The button's short press: pause blocking for ``seconds``, or resume."""
        now_paused = pause.toggle(seconds)
        self.events.publish("events", {"type": "blocking.paused" if now_paused else "blocking.resumed",
                                       "actor": "button", "summary": "button press"})

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        services = self.build()
        await services.lifecycle.start()
        # Start-up objects live forever: keep them out of every future collection. And collect
        # the young generation less often: each query makes a few short-lived tuples, and at
        # the default threshold (700) a busy resolver spends a few percent in the collector.
        gc.freeze()
        gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
        log.info("Burrow %s ready", __version__)
        systemd.ready(f"answering DNS on {len(services.resolver.listen)} address(es)")
        self._watchdog = systemd.Watchdog()  # pings from the loop: a hung loop gets restarted
        self._watchdog.start()
        for task in self._watchdog.background_tasks():
            self.supervisor.watch(task.get_name(), task)

    async def stop(self) -> None:
        if self._watchdog is not None:
            await self._watchdog.stop()
        if self.services is not None:
            await self.services.lifecycle.stop()
            self.services.reset.wipe_if_requested()  # a factory reset, once nothing writes
        log.info("Burrow stopped")

    def reload_settings(self) -> None:
        """Re-read everything kept in the settings DB (after a backup restore): the API's config
        overrides, the allow/deny lists, the pause, the policies, the groups, the forwarding
        rules, the hand-made RPZ zones and the local data, and apply them live."""
        s = self.build()
        s.config.reload()
        s.allow_list.reload()
        s.deny_list.reload()
        s.pause.reload()
        s.policies.reload()
        s.groups.reload()
        s.forwarding.reload()
        s.list_store.reload()
        s.rpz.sync(row["id"] for row in s.list_store.list() if row["format"] == "rpz")
        s.lists.wake()  # hand-made RPZ zones' files follow their restored rules
        s.zones.changed()  # each store announced its reload: no answer from before is replayed
        s.tls.changed()  # restored TLS settings: the certificate and listeners follow

    def factory_reset(self) -> None:
        """Wipe settings, users, keys and the query log, then restart (backup.FactoryReset)."""
        self.build().reset.reset()

    def request_stop(self, exit_code: int = 0) -> None:
        """Stop as on SIGTERM, then exit with ``exit_code`` (75: systemd restarts us)."""
        self.exit_code = exit_code
        self._stopping.set()

    async def run_until_signalled(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        # `burrow zone import` and `burrow import` edit the settings DB from a shell and send SIGHUP:
        # re-read every stored setting (local data included), as after a restore.
        loop.add_signal_handler(signal.SIGHUP, self._reload_stored)
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

    def _reload_stored(self) -> None:
        log.info("SIGHUP: reloading the stored settings, local records and zones")
        try:
            self.reload_settings()
        except Exception:
            log.exception("reloading the stored settings failed; what was loaded keeps answering")
