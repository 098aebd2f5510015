"""Slots shared fairly among clients: upstream queries in flight, DNS-over-TCP connections.

A global cap alone lets a few clients take every slot (eight LAN clients asking names that
never resolve held every upstream slot; one client dribbling bytes held every TCP slot).
Two rules keep a share for everybody else:

- a client never holds more than ``per_client`` slots (a named, configurable cap);
- a client holding some slots may take another only while it holds less than
  total / (clients holding slots + 1): one share is always kept for a newcomer. A client
  holding none gets a slot whenever one is free.

Slots are given back as queries end (or connections close), so within one timeout the
greedy clients are down to their share and a newcomer finds a free slot, until there are
about as many greedy clients as slots. (Simply refusing a client holding h slots when no
more than h are free lets ten or so greedy clients fill the pool.)

The table only has clients that hold a slot, so it never grows past the cap it shares.
"""

from __future__ import annotations


class FairShare:
    __slots__ = ("used", "held", "refused")

    def __init__(self) -> None:
        self.used = 0
        self.held: dict[str, int] = {}  # client → slots it holds (only clients holding some)
        self.refused = 0

    def acquire(self, client: str | None, total: int, per_client: int) -> bool:
        """Take a slot for ``client`` out of ``total``; False (and counted) if it may not.
        ``client`` None (Burrow itself) is held to ``total`` only."""
        if client is None:
            if self.used >= total:
                self.refused += 1
                return False
            self.used += 1
            return True
        held = self.held.get(client, 0)
        if self.used >= total or held >= per_client or (
                held and (held + 1) * (len(self.held) + 1) > total):
            self.refused += 1
            return False
        self.held[client] = held + 1
        self.used += 1
        return True

    def release(self, client: str | None) -> None:
        if client is None:
            self.used -= 1
            return
        held = self.held.get(client, 0)
        if held <= 1:
            self.held.pop(client, None)
        else:
            self.held[client] = held - 1
        if held:
            self.used -= 1


def per_client_cap(total: int, share: float) -> int:
    """Slots one client may hold: ``share`` of ``total``, at least one."""
    return max(1, int(total * share))
