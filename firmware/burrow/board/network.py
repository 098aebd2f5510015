"""Interfaces, addresses and default routes, and a watcher for their changes.

This is how the admin page can say "set your router's DNS to 192.168.1.23"
and how the status knows the link is down::

    from burrow.board import network

    snap = await network.read_snapshot()          # inside the event loop
    snap.primary_v4                               # "192.168.1.23" or None
    snap.as_dict()                                # JSON-able

    watcher = network.NetworkWatcher(on_change)   # on_change(snapshot)
    first = await watcher.start()
    ...
    watcher.close()

The watcher listens to the kernel's rtnetlink link/address/route groups on a
non-blocking socket registered with ``loop.add_reader``; dumps run in a worker thread. It
does not decode the events: any change schedules one fresh dump after a
short debounce, and the callback runs only if the snapshot differs. So a
burst of events (DHCP renew, a cable replug) costs one dump, and a lost
event (socket overrun, ENOBUFS) cannot leave a stale picture.

``netns`` (a name under /var/run/netns) runs everything inside that network
namespace; tests use it. pyroute2 is imported lazily: it costs ~100 ms.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
from dataclasses import asdict, dataclass
from typing import Callable

log = logging.getLogger(__name__)

# rtnetlink multicast groups (linux/rtnetlink.h).
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_IFADDR = 0x100
RTMGRP_IPV6_ROUTE = 0x400
WATCH_GROUPS = (RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE
                | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE)
NETLINK_ROUTE = 0

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
IFF_LOWER_UP = 0x10000
IFA_F_TEMPORARY = 0x01
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}

# A burst of events is drained in one reader callback, but never unboundedly.
MAX_READS_PER_WAKEUP = 64
RECV_SIZE = 65536
_ULA = ipaddress.ip_network("fc00::/7")


@dataclass(frozen=True)
class Address:
    address: str
    prefixlen: int
    family: int  # 4 or 6
    scope: str   # "global", "link", "host", ...
    temporary: bool = False   # IPv6 privacy address: changes, not for DNS
    deprecated: bool = False  # preferred lifetime over
    tentative: bool = False   # IPv6 duplicate address detection not done

    @property
    def cidr(self) -> str:
        return f"{self.address}/{self.prefixlen}"


@dataclass(frozen=True)
class Interface:
    index: int
    name: str
    up: bool          # administratively up (IFF_UP)
    carrier: bool     # link detected (IFF_LOWER_UP)
    loopback: bool
    mac: str | None
    addresses: tuple[Address, ...] = ()


@dataclass(frozen=True)
class DefaultRoute:
    family: int
    gateway: str | None   # None for a device route (point-to-point)
    interface: str | None
    metric: int = 0


@dataclass(frozen=True)
class NetworkSnapshot:
    """The network as the kernel saw it at one moment. Compare with ``==``."""

    interfaces: tuple[Interface, ...] = ()
    default_v4: DefaultRoute | None = None
    default_v6: DefaultRoute | None = None

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)

    def primary_interface(self) -> Interface | None:
        """The interface clients reach us on: the one holding the IPv4
        default route, else the IPv6 one, else the first non-loopback
        interface with carrier and an address."""
        for route in (self.default_v4, self.default_v6):
            if route and route.interface:
                found = self.interface(route.interface)
                if found is not None:
                    return found
        candidates = [i for i in self.interfaces if not i.loopback]
        for iface in candidates:
            if iface.carrier and _usable(iface, 4) + _usable(iface, 6):
                return iface
        return None

    @property
    def primary_v4(self) -> str | None:
        """The IPv4 address to tell the user to use as DNS server."""
        iface = self.primary_interface()
        usable = _usable(iface, 4) if iface else []
        return usable[0].address if usable else None

    @property
    def primary_v6(self) -> str | None:
        """The IPv6 address to offer as DNS server: a stable ULA (fd00::/8)
        first, since ISP prefixes change; then a stable global address."""
        iface = self.primary_interface()
        usable = _usable(iface, 6) if iface else []
        return usable[0].address if usable else None

    @property
    def link_up(self) -> bool:
        """The primary interface (or, without one, any non-loopback
        interface) is up with carrier."""
        iface = self.primary_interface()
        if iface is not None:
            return iface.up and iface.carrier
        return any(i.up and i.carrier for i in self.interfaces if not i.loopback)

    @property
    def has_address(self) -> bool:
        return self.primary_v4 is not None or self.primary_v6 is not None

    def as_dict(self) -> dict:
        """JSON-able form for the API, with the derived fields included."""
        return {
            "interfaces": [
                {**{k: v for k, v in asdict(i).items() if k != "addresses"},
                 "addresses": [{**asdict(a), "cidr": a.cidr} for a in i.addresses]}
                for i in self.interfaces
            ],
            "default_v4": asdict(self.default_v4) if self.default_v4 else None,
            "default_v6": asdict(self.default_v6) if self.default_v6 else None,
            "primary_interface": (p.name if (p := self.primary_interface()) else None),
            "primary_v4": self.primary_v4,
            "primary_v6": self.primary_v6,
            "link_up": self.link_up,
            "has_address": self.has_address,
        }


def _usable(iface: Interface, family: int) -> list[Address]:
    """Addresses fit to hand to clients, best first."""
    found = [a for a in iface.addresses
             if a.family == family and a.scope == "global" and not a.deprecated
             and not a.temporary and not a.tentative]
    if family == 6:
        # ULA (fc00::/7) before global unicast: stays valid when the ISP
        # renumbers the delegated prefix.
        found.sort(key=lambda a: ipaddress.ip_address(a.address) not in _ULA)
    return found


# --- building a snapshot from pyroute2 messages -----------------------------------


def build_snapshot(links, addrs, routes) -> NetworkSnapshot:
    """Assemble a snapshot from rtnetlink dump messages (pyroute2 ``nlmsg``
    objects, or anything with ``.get(key)`` and ``.get_attr(name)``)."""
    by_index: dict[int, list[Address]] = {}
    for msg in addrs:
        family = 4 if msg.get("family") == socket.AF_INET else 6
        flags = msg.get_attr("IFA_FLAGS")
        if flags is None:
            flags = msg.get("flags") or 0
        address = msg.get_attr("IFA_ADDRESS") if family == 6 else (
            msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS"))
        if not address:
            continue
        by_index.setdefault(msg.get("index"), []).append(Address(
            address=address,
            prefixlen=msg.get("prefixlen"),
            family=family,
            scope=SCOPES.get(msg.get("scope"), str(msg.get("scope"))),
            # 0x01 means "secondary" for IPv4 and "temporary" for IPv6.
            temporary=family == 6 and bool(flags & IFA_F_TEMPORARY),
            deprecated=bool(flags & IFA_F_DEPRECATED),
            tentative=bool(flags & IFA_F_TENTATIVE),
        ))
    interfaces = []
    names: dict[int, str] = {}
    for msg in links:
        index = msg.get("index")
        flags = msg.get("flags") or 0
        name = msg.get_attr("IFLA_IFNAME")
        names[index] = name
        mac = msg.get_attr("IFLA_ADDRESS")
        interfaces.append(Interface(
            index=index,
            name=name,
            up=bool(flags & IFF_UP),
            carrier=bool(flags & IFF_LOWER_UP),
            loopback=bool(flags & IFF_LOOPBACK),
            mac=None if (not mac or flags & IFF_LOOPBACK) else mac,
            addresses=tuple(sorted(by_index.get(index, ()),
                                   key=lambda a: (a.family, a.scope != "global", a.address))),
        ))
    interfaces.sort(key=lambda i: i.index)
    best: dict[int, DefaultRoute] = {}
    for msg in routes:
        if (msg.get("dst_len") != 0 or msg.get("type") != RTN_UNICAST
                or (msg.get_attr("RTA_TABLE") or msg.get("table")) != RT_TABLE_MAIN):
            continue
        family = 4 if msg.get("family") == socket.AF_INET else 6
        route = DefaultRoute(
            family=family,
            gateway=msg.get_attr("RTA_GATEWAY"),
            interface=names.get(msg.get_attr("RTA_OIF")),
            metric=msg.get_attr("RTA_PRIORITY") or 0,
        )
        # The kernel uses the lowest metric; so do we.
        if family not in best or route.metric < best[family].metric:
            best[family] = route
    return NetworkSnapshot(tuple(interfaces), best.get(4), best.get(6))


def _dump_blocking(netns: str | None) -> NetworkSnapshot:
    """One netlink dump with pyroute2's synchronous IPRoute (run it in a worker thread).

    pyroute2's asyncio client cannot open its socket on uvloop (the loop Burrow runs on), so
    dumps use the plain client off the loop; only the event socket lives on the loop.
    """
    from pyroute2 import IPRoute

    # flags=0: never create the namespace by accident (pyroute2's default is O_CREAT).
    ipr = IPRoute() if netns is None else IPRoute(netns=netns, flags=0)
    try:
        return build_snapshot(list(ipr.link("dump")), list(ipr.addr("dump")), list(ipr.route("dump")))
    finally:
        ipr.close()


async def read_snapshot(netns: str | None = None) -> NetworkSnapshot:
    """One snapshot, read in a worker thread without blocking the running loop."""
    return await asyncio.get_running_loop().run_in_executor(None, _dump_blocking, netns)


def snapshot(netns: str | None = None) -> NetworkSnapshot:
    """One snapshot, for callers outside an event loop (CLI, scripts).

    Inside a running loop use :func:`read_snapshot`.
    """
    return _dump_blocking(netns)


# --- the watcher --------------------------------------------------------------------


def _event_socket(netns: str | None) -> socket.socket:
    if netns is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    else:
        from pyroute2 import netns as pr_netns

        # A socket keeps the namespace it was created in; pyroute2 makes it
        # in a short-lived child and passes the descriptor back.
        sock = pr_netns.create_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW,
                                      NETLINK_ROUTE, flags=0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        sock.bind((0, WATCH_GROUPS))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class NetworkWatcher:
    """Publishes a fresh :class:`NetworkSnapshot` when links, addresses or
    routes change.

    :param on_change: called on the loop with the new snapshot, only when it
        differs from the last one published (or returned by :meth:`start`).
    :param netns: network namespace name, or None for the current one.
    :param debounce: seconds to wait after the first event of a burst before
        dumping; events arriving meanwhile are folded in.
    """

    def __init__(self, on_change: Callable[[NetworkSnapshot], None], *,
                 netns: str | None = None, debounce: float = 0.3):
        self.on_change = on_change
        self.netns = netns
        self.debounce = debounce
        self.snapshot: NetworkSnapshot | None = None
        """The latest snapshot (None before :meth:`start`)."""
        self.events = 0
        """Netlink messages seen; for tests and diagnostics."""
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._dirty = False
        self._closed = False

    async def start(self) -> NetworkSnapshot:
        """Subscribe, then take and return the first snapshot.

        Subscribing first means a change during the first dump is not
        missed: it triggers another dump.
        """
        self._loop = asyncio.get_running_loop()
        self._sock = _event_socket(self.netns)
        self._loop.add_reader(self._sock.fileno(), self._on_readable)
        try:
            self.snapshot = await read_snapshot(self.netns)
        except BaseException:
            self.close()
            raise
        return self.snapshot

    async def refresh(self) -> NetworkSnapshot:
        """Dump now; publish if changed; return the snapshot."""
        snap = await read_snapshot(self.netns)
        if snap != self.snapshot:
            self.snapshot = snap
            try:
                self.on_change(snap)
            except Exception:
                log.exception("network change handler failed")
        return snap

    def close(self) -> None:
        """Unsubscribe and release the sockets. Idempotent."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    # -- internals --

    def _on_readable(self) -> None:
        assert self._sock is not None  # a reader only while the socket is open
        changed = False
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                data = self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    # Events were dropped; the dump below covers them.
                    changed = True
                    continue
                log.warning("netlink event socket: %s", exc)
                break
            if not data:
                break
            self.events += 1
            changed = True
        if changed:
            self._schedule()

    def _schedule(self) -> None:
        self._dirty = True
        if self._timer is None and self._task is None and not self._closed:
            assert self._loop is not None  # set by start(), before any event
            self._timer = self._loop.call_later(self.debounce, self._start_refresh)

    def _start_refresh(self) -> None:
        self._timer = None
        if not self._closed:
            assert self._loop is not None
            self._task = self._loop.create_task(self._refresh_while_dirty())

    async def _refresh_while_dirty(self) -> None:
        try:
            # Events that arrive during a dump set _dirty again; a few rounds
            # catch up, and anything later is picked up by a new timer.
            for _ in range(4):
                if not self._dirty or self._closed:
                    break
                self._dirty = False
                await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("network snapshot failed")
        finally:
            self._task = None
            if self._dirty and not self._closed:
                self._schedule_after_task()

    def _schedule_after_task(self) -> None:
        if self._timer is None:
            assert self._loop is not None
            self._timer = self._loop.call_later(self.debounce, self._start_refresh)
