"""What a store announces after a change that can alter an answer.

Every store whose content shapes DNS answers (the allow and deny lists, groups and clients,
the list store and the compiled index, hand-made RPZ zones, forwarding rules, local data and
zones, the pause, policies, the runtime settings) is handed an :data:`Announce` callback and
calls it with a :class:`Change` once the change is committed — and after a reload (a restore
replaced its rows) too. Nothing else decides that answers changed: an HTTP handler only calls
the store. The composition root (burrow/app.py) wires one subscriber that decides what each
change needs (drop the fast path's answers, recompute the views' list masks, ...).
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class Change(enum.Enum):
    """What changed. The subscriber, not the store, knows what each one needs."""

    USER_LIST = "user_list"      # the allow list or the deny list
    GROUPS = "groups"            # groups or clients: which groups each client is in
    LISTS = "lists"              # the list store: a list added, changed, removed, (en|dis)abled, its groups
    LIST_INDEX = "list_index"    # a newly compiled list index is live
    RPZ = "rpz"                  # a hand-made RPZ zone's rules
    FORWARDING = "forwarding"    # conditional forwarding rules
    ZONES = "zones"              # local records and zones
    PAUSE = "pause"              # a pause, a resume, a timed pause's end
    POLICIES = "policies"
    CONFIG = "config"            # runtime settings


Announce = Callable[[Change], None]


def ignore(change: Change) -> None:
    """The announcer of a store nothing listens to (a command-line tool, a unit test)."""


class Changes:
    """The one place stores announce to, with at most one subscriber.

    Stores are built before what the subscriber needs (the DNS core) exists, so they are handed
    :meth:`announce` first and the composition root subscribes once everything is built; an
    announcement before that has nobody to tell (nothing answers yet).
    """

    def __init__(self) -> None:
        self._subscriber: Announce = ignore

    def subscribe(self, subscriber: Announce) -> None:
        self._subscriber = subscriber

    def announce(self, change: Change) -> None:
        self._subscriber(change)
