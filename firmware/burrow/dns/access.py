"""Who may ask: the allowed-networks ACL and the per-client token-bucket rate limiter.

Both are consulted on the fast path, so each is one dict lookup and a few float operations.
"""

from __future__ import annotations

import ipaddress

ACL_CACHE_MAX = 4096  # distinct client IPs remembered by the ACL (a home network has dozens)


class AccessControl:
    """``allowed(ip)`` is True when the client address lies in one of the allowed networks."""

    def __init__(self, networks: list[str]):
        self.networks = [ipaddress.ip_network(n) for n in networks]
        self._memo: dict[str, bool] = {}

    def allowed(self, ip: str) -> bool:
        verdict = self._memo.get(ip)
        if verdict is None:
            try:
                addr = ipaddress.ip_address(ip.split("%", 1)[0])
            except ValueError:
                return False
            if addr.version == 6 and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            verdict = any(addr in net for net in self.networks if net.version == addr.version)
            if len(self._memo) >= ACL_CACHE_MAX:
                self._memo.clear()
            self._memo[ip] = verdict
        return verdict


class RateLimiter:
    """Token bucket per client IP: ``rps`` sustained, ``burst`` at once.

    At most ``max_clients`` buckets are tracked; past that the table is swept of full buckets
    (idle clients) and, if still full, cleared — a flood of spoofed sources costs memory once,
    never unboundedly.
    """

    def __init__(self, rps: float, burst: int, max_clients: int):
        self.rps = rps
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: dict[str, list[float]] = {}  # ip → [tokens, last refill]
        self.limited = 0

    def admit(self, ip: str, now: float) -> bool:
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self.sweep(now)
                if len(self._buckets) >= self.max_clients:
                    self._buckets.clear()
            self._buckets[ip] = [self.burst - 1.0, now]
            return True
        tokens = bucket[0] + (now - bucket[1]) * self.rps
        if tokens > self.burst:
            tokens = self.burst
        bucket[1] = now
        if tokens < 1.0:
            bucket[0] = tokens
            self.limited += 1
            return False
        bucket[0] = tokens - 1.0
        return True

    def sweep(self, now: float) -> int:
        """Forget clients whose bucket has refilled (idle); returns how many were dropped."""
        idle = [ip for ip, (tokens, last) in self._buckets.items()
                if tokens + (now - last) * self.rps >= self.burst]
        for ip in idle:
            del self._buckets[ip]
        return len(idle)

    def __len__(self) -> int:
        return len(self._buckets)
