"""The typed container of everything the running appliance is made of.

Built once by the composition root (burrow/app.py ``App.build``). Nothing receives the whole
container except the composition root and the web layer's wiring (burrow/api/__init__.py),
which hands each API module only the services its ``register`` names. A store that announces
its own changes (issue 14, item 2) attaches here as one more field. The web service itself is
not a field: it serves the API made from this container (it would be an upward import).

The service map (who starts in which order, and why) is in docs/architecture.md and in
``App.build``; ``lifecycle.snapshot()`` shows it running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the container names types; importing them all at run time is app.py's job
    from .auth import AuthService
    from .clock import ClockGate
    from .backup import FactoryReset
    from .board.appliance import Appliance
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
    from .resolver import Resolver
    from .runtime_config import LiveConfig
    from .state_check import Context
    from .storage.events import EventLog
    from .storage.health import StorageHealth
    from .storage.settings import SettingsDB
    from .telemetry.events import EventBus
    from .telemetry.recorder import Recorder
    from .tls.service import TlsService
    from .zones.service import ZoneService


@dataclass(eq=False)
class Services:
    """Every service and store of the running appliance, one typed field each."""

    version: str
    data_dir: Path
    config: LiveConfig  # the configuration in force (reads like a Config; update() at runtime)
    events: EventBus
    faults: Faults  # what needs a person (the fault status)
    supervisor: Supervisor  # every long-lived background task
    storage: StorageHealth  # writability of the data folders (a fault when lost)
    settings: SettingsDB
    state: Context  # what the stored-state checks need (restore, start)
    reload_settings: Callable[[], None]  # after a restore: every store re-reads, answers follow
    eventlog: EventLog
    auth: AuthService
    resolver: Resolver  # stages, caches, upstreams, the DNS server
    pause: BlockingPause
    groups: Groups
    allow_list: UserList
    deny_list: UserList
    policies: PolicyStore  # the ordered rules; the policy stage's engine answers from them
    forwarding: ForwardRules
    zones: ZoneService  # local records and zones: the store, the snapshot, secondary refresh
    list_store: ListStore
    lists: ListManager
    rpz: HandZones
    threats: ThreatReporter
    clock: ClockGate  # whether the wall clock is right yet (list downloads wait for it)
    recorder: Recorder  # the query log
    health: Health  # readiness and the status, from what the services publish
    board: Appliance
    reset: FactoryReset
    lifecycle: Lifecycle  # the web service is in it too; it is made from this container (app.py)
    tls: TlsService  # the certificate in force; DNS over TLS and HTTPS listeners
