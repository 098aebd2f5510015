"""``TlsService``: the certificate in force and the encrypted listeners that serve with it.

One lifecycle service (START_ORDER in burrow/app.py, after the web service): ``start()`` loads
or makes the certificate as ``tls.mode`` says and opens the listeners the configuration asks
for (DNS over TLS on ``tls.dot_address`` when ``tls.dot_enabled``; HTTPS on
``tls.https_address`` when set); ``stop()`` closes them. ``reconcile()`` does the same after a
change (``PUT /api/config/tls``): listeners start, move or stop without a restart.

Manual PEM files are watched (``tls-reload``, every RELOAD_INTERVAL seconds: inode, size and
mtime of both files). A changed pair that is valid becomes the certificate for new handshakes
at once — each listener's context has an SNI callback that hands the handshake the newest
context (``sslobj.context``), so no listener restarts and open connections keep theirs. A
changed pair that is not valid is logged, shown as a fault and ignored; the last good one goes
on serving.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from .. import __release_date__
from ..config import ConfigError, ConfigView
from ..config.schema import parse_hostport
from ..lifecycle import Faults, Restart, Supervised, Supervisor
from . import certs
from .certs import CertInfo

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 2.0  # seconds between looks at manual PEM files
RELOAD_POLICY = Restart(max_restarts=5, window=600.0, backoff=1.0, max_backoff=60.0)
ACME_MODES = frozenset({"autocert", "acme"})
FAULT = "tls"
# What each listener offers in ALPN (RFC 7858 §3.2 registers "dot"; HTTPS speaks HTTP/2 first, api/http2.py).
ALPN = {"dot": ["dot"], "https": ["h2", "http/1.1"]}
OPTION = {"dot": "tls.dot_address", "https": "tls.https_address"}
DEFAULT_PORT = {"dot": 853, "https": 443}


class TlsListener(Protocol):
    """A listener the service opens with a context (the DNS server's DoT, the web's HTTPS)."""

    async def start_tls(self, host: str, port: int, context: ssl.SSLContext, handshake_timeout: float) -> int:
        """Listen on host:port; return the bound port."""
        ...

    async def stop_tls(self) -> None:
        ...


class Contexts:
    """The newest server context of one listener kind. The listener is given :meth:`listening`
    once; its SNI callback hands every new handshake the context built last."""

    def __init__(self, alpn: list[str]):
        self.alpn = alpn
        self.current: ssl.SSLContext | None = None
        self.swapped = 0  # handshakes moved to a newer context than their listener's

    def build(self, cert_file: str, key_file: str | None) -> None:
        ctx = certs.server_context(cert_file, key_file, self.alpn)
        ctx.sni_callback = self._sni
        self.current = ctx

    def _sni(self, sslobj: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
        current = self.current
        if current is not None and current is not ctx:
            sslobj.context = current
            self.swapped += 1


class TlsService:
    """The certificate in force, the contexts made from it, and the TLS listeners.

    :param config: the configuration in force (LiveConfig): read on every reconcile.
    :param state_dir: where the self-signed pair is kept (``<data dir>/tls``).
    :param listeners: "dot" and/or "https" → what opens that listener.
    :param addresses: the board's addresses (for the self-signed certificate's names).
    :param on_https: told (bound HTTPS port or None, HSTS on) whenever that changes.
    :param publish: audit/system events (a reloaded certificate, a refused one).
    """

    name = "tls"

    def __init__(self, config: ConfigView, state_dir: Path, supervisor: Supervisor, faults: Faults, *,
                 listeners: dict[str, TlsListener], addresses: Callable[[], list[str] | None] = lambda: None,
                 on_https: Callable[[int | None, bool], None] = lambda port, hsts: None,
                 publish: Callable[[dict[str, Any]], None] = lambda event: None):
        self.config = config
        self.state_dir = state_dir
        self.supervisor = supervisor
        self.faults = faults
        self.listeners = listeners
        self.addresses = addresses
        self.on_https = on_https
        self.publish = publish
        self.contexts = {kind: Contexts(ALPN[kind]) for kind in listeners}
        self.certificate: CertInfo | None = None
        self.error: str | None = None  # why no certificate is in force, when one should be
        self.source: tuple[str, str, str | None] | None = None  # (mode, cert file, key file) in force
        self.running: dict[str, tuple[str, int, int]] = {}  # kind → (host, configured port, bound port)
        self.reloads = 0
        self._stamp: tuple[Any, ...] | None = None
        self._watch: Supervised | None = None
        self._pending: asyncio.Task[None] | None = None  # changed()'s reconcile
        self._lock = asyncio.Lock()

    # ---- checks ---------------------------------------------------------------------------------

    @staticmethod
    def check(cfg: ConfigView) -> CertInfo | None:
        """Refuse a configuration this service cannot serve (ConfigError naming the key): an
        ACME mode (not integrated yet), manual PEM files that are unreadable, do not match,
        or are not valid now. Returns the manual certificate's description."""
        mode = cfg["tls.mode"]
        if mode in ACME_MODES:
            raise ConfigError([("tls.mode", f"{mode!r} (ACME) is not available yet; use \"manual\" or "
                                            "\"self_signed\"")])
        if mode == "manual":
            return certs.load_pair(cfg["tls.cert_file"], cfg["tls.key_file"] or None)
        return None

    # ---- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self.check(self.config)  # an ACME mode in burrow.toml is a configuration error
        await self.reconcile(strict=False)
        self._watch = self.supervisor.spawn("tls-reload", self._watch_files, RELOAD_POLICY)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for kind in list(self.running):
            await self._close(kind)
        self.on_https(None, False)

    def background_tasks(self) -> list[asyncio.Task]:
        return []  # the file watch runs under the supervisor

    def snapshot(self) -> dict[str, Any]:
        return {"mode": self.config["tls.mode"],
                "listening": {kind: f"{h}:{p}" for kind, (h, _c, p) in self.running.items()},
                "certificate": self.certificate.as_dict() if self.certificate else None,
                "error": self.error}

    def describe(self) -> dict[str, Any] | None:
        """The certificate in force for GET /api/config (no key, ever)."""
        if self.certificate is None:
            return None
        info = self.certificate.as_dict()
        return {k: info[k] for k in ("subject", "names", "not_after", "fingerprint_sha256")}

    def bound_port(self, kind: str) -> int | None:
        running = self.running.get(kind)
        return running[2] if running else None

    # ---- reconciling ----------------------------------------------------------------------------

    def changed(self) -> None:
        """The settings were replaced underneath (a backup restore): reconcile soon, on the loop
        (a listener that cannot bind is a fault then, as at start)."""
        if self._watch is None:  # not started: start() reads the settings
            return
        self._pending = asyncio.get_running_loop().create_task(self.reconcile(strict=False))

    async def reconcile(self, *, strict: bool = True) -> None:
        """Make the certificate and the listeners what the configuration says now.

        ``strict``: a listener that cannot bind raises ConfigError naming its address option
        (the API reverts the change); otherwise (the start) it is logged and a fault, and the
        rest go on: plain DNS must not stop because port 853 is taken.
        """
        async with self._lock:
            await self._reconcile(strict)

    async def _reconcile(self, strict: bool) -> None:
        cfg = self.config
        mode = cfg["tls.mode"]
        self._load_certificate(mode)
        failures: list[tuple[str, str]] = []
        for kind in self.listeners:
            wanted = self._wanted(kind)
            running = self.running.get(kind)
            if running is not None and (wanted is None or running[:2] != wanted):
                await self._close(kind)
            if wanted is not None and kind not in self.running:
                try:
                    await self._open(kind, *wanted)
                except OSError as e:
                    failures.append((OPTION[kind], f"cannot listen on {cfg[OPTION[kind]]}: {e.strerror or e}"))
        self.on_https(self.bound_port("https"), bool(cfg["tls.hsts"]))
        if failures:
            if strict:
                raise ConfigError(failures)
            for key, why in failures:
                log.error("TLS: %s: %s", key, why)
            self.faults.set(FAULT, "; ".join(f"{k}: {w}" for k, w in failures), serving=True)
        elif self.error is None:
            self.faults.clear(FAULT)

    def _wanted(self, kind: str) -> tuple[str, int] | None:
        cfg = self.config
        if self.certificate is None:
            return None
        if kind == "dot" and not cfg["tls.dot_enabled"]:
            return None
        address = cfg[OPTION[kind]]
        if not address:
            return None
        return parse_hostport(address, DEFAULT_PORT[kind])

    def _load_certificate(self, mode: str) -> None:
        cfg = self.config
        if mode == "off":
            self.certificate, self.source, self.error = None, None, None
            return
        if mode == "manual":
            source = (mode, cfg["tls.cert_file"], cfg["tls.key_file"] or None)
        else:  # self_signed
            source = (mode, str(self.state_dir / certs.SELF_SIGNED_FILE), None)
        if source == self.source and self.certificate is not None:
            return
        try:
            if mode == "manual":
                self._stamp = self._stat(source)
                info = certs.load_pair(source[1], source[2])
            else:
                info = certs.ensure_self_signed(Path(source[1]), self._names(), self._addresses(),
                                                not_before_floor=_release_date())
            for contexts in self.contexts.values():
                contexts.build(source[1], source[2])
        except (ConfigError, OSError, ssl.SSLError) as e:
            self.certificate, self.source = None, source
            self.error = str(e)
            log.error("TLS: no certificate: %s", e)
            self.faults.set(FAULT, f"no TLS certificate: {e}", serving=True)
            return
        self.certificate, self.source, self.error = info, source, None
        log.info("TLS certificate for %s (SHA-256 %s), valid until %s", ", ".join(info.names),
                 info.fingerprint_sha256, info.as_dict()["not_after"])

    @staticmethod
    def _names() -> list[str]:
        host = socket.gethostname().split(".")[0].lower()
        names = ["burrow.local", "localhost"]
        if host and host != "localhost":
            names += [host, f"{host}.local"]
        return names

    def _addresses(self) -> list[str]:
        found = [a for a in self.addresses() or [] if not a.lower().startswith("fe80:")]  # needs a scope
        return list(dict.fromkeys([*found, "127.0.0.1", "::1"]))

    async def _open(self, kind: str, host: str, port: int) -> None:
        ctx = self.contexts[kind].current
        assert ctx is not None  # built with the certificate
        bound = await self.listeners[kind].start_tls(host, port, ctx, float(self.config["tls.handshake_timeout"]))
        self.running[kind] = (host, port, bound)
        log.info("TLS: %s listening on %s port %d", "DNS over TLS" if kind == "dot" else "HTTPS", host, bound)

    async def _close(self, kind: str) -> None:
        self.running.pop(kind, None)
        await self.listeners[kind].stop_tls()

    # ---- manual files ---------------------------------------------------------------------------

    @staticmethod
    def _stat(source: tuple[str, str, str | None]) -> tuple[Any, ...]:
        out: list[Any] = []
        for path in source[1:]:
            if not path:
                continue
            try:
                st = os.stat(path)
                out.append((st.st_ino, st.st_size, st.st_mtime_ns))
            except OSError as e:
                out.append(e.errno)
        return tuple(out)

    async def _watch_files(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            source = self.source
            if source is None or source[0] != "manual":
                continue
            stamp = self._stat(source)
            if stamp == self._stamp:
                continue
            self._stamp = stamp
            async with self._lock:
                if self.source != source:  # reconciled meanwhile
                    continue
                self._reload(source)
                if self.certificate is not None and any(self._wanted(k) and k not in self.running
                                                        for k in self.listeners):
                    await self._reconcile(strict=False)

    def _reload(self, source: tuple[str, str, str | None]) -> None:
        try:
            info = certs.load_pair(source[1], source[2])
            built = {}
            for kind, contexts in self.contexts.items():
                built[kind] = certs.server_context(source[1], source[2], contexts.alpn)
        except (ConfigError, OSError, ssl.SSLError) as e:
            log.warning("TLS: the changed certificate files are not used: %s", e)
            self.faults.set(FAULT, f"the changed TLS certificate files are not used: {e}", serving=True)
            self.publish({"type": "tls.certificate_refused", "severity": "error", "actor": "system",
                          "summary": f"changed certificate files not used: {e}"})
            return
        for kind, ctx in built.items():
            ctx.sni_callback = self.contexts[kind]._sni
            self.contexts[kind].current = ctx  # the next handshake on every listener gets it
        self.certificate, self.error = info, None
        self.reloads += 1
        self.faults.clear(FAULT)
        log.info("TLS: certificate files changed; now serving %s (SHA-256 %s)", ", ".join(info.names),
                 info.fingerprint_sha256)
        self.publish({"type": "tls.certificate_reloaded", "actor": "system",
                      "summary": f"certificate reloaded: {', '.join(info.names)}, valid until "
                                 f"{info.as_dict()['not_after']}", "fingerprint_sha256": info.fingerprint_sha256})


def _release_date() -> dt.datetime:
    return dt.datetime.fromisoformat(__release_date__).replace(tzinfo=dt.timezone.utc)
