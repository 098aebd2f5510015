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

In the ACME modes (``autocert``: HTTP-01, ``acme``: DNS-01 through Cloudflare's API) the pair
lives in the mode's cache folder (``tls.<mode>.cache_dir``, default ``<data dir>/tls/<mode>``:
``account.key``, ``fullchain.pem``, ``privkey.pem``). A valid pair there for the configured
names serves at once; otherwise the encrypted listeners stay closed until the first issuance
(plain DNS and HTTP serve meanwhile). The ``tls-acme`` task (supervised) waits for the clock
gate (burrow/clock.py: a wrong wall clock misjudges expiry), then runs the ``Renewer``: it issues
when there is no certificate and renews ahead of expiry with a back-off after failures. A new
certificate is swapped into the contexts like a reloaded manual one (``tls.certificate_issued``);
a failure is logged, an event (``tls.acme_failed``) and a ``tls`` fault while the previous
certificate keeps serving; the next success clears the fault. The HTTP-01 tokens
(``self.http01``) are answered by the web listener (api/config_api.py).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from ..config.schema import OPTIONS, duration_seconds, parse_hostport
from ..lifecycle import Faults, Restart, Supervised, Supervisor
from . import certfiles, certs
from .acme import AcmeFailure, Challenge, Http01Responder, Http01Tokens, Renewer, check_names, renewal_due
from .certs import CertInfo

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 2.0  # seconds between looks at manual PEM files
RELOAD_POLICY = Restart(max_restarts=5, window=600.0, backoff=1.0, max_backoff=60.0)
ACME_MODES = frozenset({"autocert", "acme"})
ACME_CHALLENGE: dict[str, Challenge] = {"autocert": "http-01", "acme": "dns-01"}
ACME_POLICY = Restart(max_restarts=5, window=3600.0, backoff=5.0, max_backoff=300.0)
ACME_FILES = ("account.key", "fullchain.pem", "privkey.pem")
CLOCK_RECHECK_S = 30.0  # while the clock gate is closed, asked again this often
ACME_KEYS = tuple(o.key for o in OPTIONS if o.key.startswith(("tls.autocert.", "tls.acme.")))
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


class ClockGateLike(Protocol):
    def is_open(self) -> bool: ...

    def subscribe(self, listener: Callable[[], object]) -> None: ...


class AcmeState:
    """One ACME configuration at work: its issuer, renewer, task and what happened last."""

    def __init__(self, settings: tuple[Any, ...], mode: str, names: list[str], source: tuple[str, str, str]):
        self.settings = settings
        self.mode = mode
        self.names = names
        self.source = source  # (mode, fullchain.pem, privkey.pem)
        self.renewer: Renewer | None = None
        self.task: Supervised | None = None
        self.responder: Http01Responder | None = None  # tls.autocert.http01_address
        self.last_issued: dt.datetime | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.retry_at: dt.datetime | None = None
        self.renew_before = dt.timedelta(days=30)


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
                 publish: Callable[[dict[str, Any]], None] = lambda event: None,
                 clock: ClockGateLike | None = None):
        self.config = config
        self.clock = clock
        self._clock_opened = asyncio.Event()
        if clock is not None:
            clock.subscribe(self._clock_opened.set)
        self.http01 = Http01Tokens()  # what the web listener answers at /.well-known/acme-challenge/
        self.acme: AcmeState | None = None
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
        """Refuse a configuration this service cannot serve (ConfigError naming the key): manual
        PEM files that are unreadable, do not match, or are not valid now; ACME names the
        issuer would refuse (the schema's cross-checks have judged the rest). Returns the manual
        certificate's description."""
        mode = cfg["tls.mode"]
        if mode in ACME_MODES:
            try:
                check_names(list(cfg[f"tls.{mode}.hosts"]), ACME_CHALLENGE[mode])
            except ValueError as e:
                raise ConfigError([(f"tls.{mode}.hosts", str(e).removeprefix("names: "))]) from None
            return None
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
        await self._acme_stop()
        for kind in list(self.running):
            await self._close(kind)
        self.on_https(None, False)

    def background_tasks(self) -> list[asyncio.Task]:
        return []  # the file watch runs under the supervisor

    def snapshot(self) -> dict[str, Any]:
        return {"mode": self.config["tls.mode"],
                "listening": {kind: f"{h}:{p}" for kind, (h, _c, p) in self.running.items()},
                "certificate": self.certificate.as_dict() if self.certificate else None,
                "error": self.error, "acme": self.acme_state()}

    def acme_state(self) -> dict[str, Any] | None:
        """What the ACME issuance is doing (GET /api/config ``tls.acme_state``); None outside
        the ACME modes. ``status``: waiting_for_clock, issuing (no certificate yet), valid, or
        failing (the last attempt failed; a previous certificate may still serve)."""
        acme = self.acme
        if acme is None:
            return None
        next_at = acme.retry_at
        if next_at is None and self.certificate is not None and self.source == acme.source:
            next_at = renewal_due(self.certificate.not_before, self.certificate.not_after, acme.renew_before)
        if acme.last_error is not None:
            status = "failing"
        elif self.certificate is not None and self.source == acme.source:
            status = "valid"
        elif self.clock is not None and not self.clock.is_open():
            status = "waiting_for_clock"
        else:
            status = "issuing"
        return {"challenge": ACME_CHALLENGE[acme.mode], "names": list(acme.names), "status": status,
                "last_issued": _iso(acme.last_issued), "next_renewal": _iso(next_at),
                "last_error": acme.last_error, "failures": acme.failures}

    def names(self) -> tuple[str, ...]:
        """The names and addresses the certificate in force carries (none without one)."""
        return self.certificate.names if self.certificate is not None else ()

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
        await self._load_certificate(mode)
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
        elif self.error is None and (self.acme is None or self.acme.last_error is None):
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

    async def _load_certificate(self, mode: str) -> None:
        cfg = self.config
        if mode in ACME_MODES:
            await self._acme_configure(mode)
            return
        await self._acme_stop()
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

    # ---- ACME -----------------------------------------------------------------------------------

    def _acme_settings(self, mode: str) -> tuple[Any, ...]:
        """Everything an ACME configuration is made of: a change of any starts it afresh."""
        cfg = self.config
        keys = ["tls.directory_url", "tls.directory_ca_file"] + [
            key for key in ACME_KEYS if key.startswith(f"tls.{mode}.")]
        return (mode, *((key, _frozen(cfg[key])) for key in sorted(keys)))

    def _acme_folder(self, mode: str) -> Path:
        folder = self.config[f"tls.{mode}.cache_dir"]
        return Path(folder) if folder else self.state_dir / mode

    async def _acme_configure(self, mode: str) -> None:
        """Make the ACME state match the configuration: the issuer, the pair from the cache
        folder if it is valid for the names, the renewal task."""
        settings = self._acme_settings(mode)
        if self.acme is not None and self.acme.settings == settings:
            return
        await self._acme_stop()
        cfg = self.config
        folder = self._acme_folder(mode)
        names = check_names(list(cfg[f"tls.{mode}.hosts"]), ACME_CHALLENGE[mode])
        account, fullchain, privkey = (folder / name for name in ACME_FILES)
        source = (mode, str(fullchain), str(privkey))
        acme = AcmeState(settings, mode, names, source)
        if mode == "acme":
            acme.renew_before = dt.timedelta(seconds=duration_seconds(cfg["tls.acme.renew_before"]))
        issuer = self._acme_issuer(mode, names, account, fullchain, privkey)
        acme.renewer = Renewer(issuer, on_failure=lambda e, n, d: self._acme_failed(acme, e, n, d),
                               on_issued=lambda info: self._acme_issued(acme), renew_before=acme.renew_before)
        self.acme = acme
        self._acme_load(acme)
        if mode == "autocert" and cfg["tls.autocert.http01_address"]:
            host, port = parse_hostport(cfg["tls.autocert.http01_address"], 80)
            responder = Http01Responder(self.http01)
            try:
                await responder.start(host, port)
                acme.responder = responder
                log.info("ACME: HTTP-01 challenges answered on %s port %d", host, port)
            except OSError as e:
                why = f"cannot listen on {cfg['tls.autocert.http01_address']}: {e.strerror or e}"
                log.error("TLS: tls.autocert.http01_address: %s", why)
                self.faults.set(FAULT, f"tls.autocert.http01_address: {why}", serving=True)
        acme.task = self.supervisor.spawn("tls-acme", lambda: self._acme_run(acme), ACME_POLICY)

    def _acme_issuer(self, mode: str, names: list[str], account: Path, fullchain: Path, privkey: Path) -> Any:
        from .acme import AcmeIssuer

        cfg = self.config
        dns01 = None
        if mode == "acme":
            from .dnsproviders import CloudflareDns

            dns01 = CloudflareDns(cfg["tls.acme.cloudflare.api_token"],
                                  zone_id=cfg["tls.acme.cloudflare.zone_id"] or None,
                                  api_base=cfg["tls.acme.cloudflare.api_base"])
        return AcmeIssuer(directory_url=cfg["tls.directory_url"], names=names, account_key_path=account,
                          cert_path=fullchain, key_path=privkey, email=cfg[f"tls.{mode}.email"] or None,
                          challenge=ACME_CHALLENGE[mode], http01=self.http01 if mode == "autocert" else None,
                          dns01=dns01, ca_bundle=cfg["tls.directory_ca_file"] or None,
                          dns_propagation=float(cfg["tls.acme.dns_propagation"]) if mode == "acme" else 0.0)

    def _acme_load(self, acme: AcmeState) -> bool:
        """Serve the pair in the cache folder if it is valid now and names every configured
        name; otherwise no certificate (the listeners stay closed until the first issuance)."""
        _mode, fullchain, privkey = acme.source
        try:
            certfiles.complete_pending_pair(fullchain, privkey)
            info = certs.load_pair(fullchain, privkey)
            missing = set(acme.names) - set(info.names)
            if missing:
                raise ConfigError([("tls.cert_file", f"the cached certificate lacks {', '.join(sorted(missing))}")])
            built = {kind: certs.server_context(fullchain, privkey, contexts.alpn)
                     for kind, contexts in self.contexts.items()}
        except FileNotFoundError:
            self.certificate, self.source, self.error = None, acme.source, None
            log.info("ACME: no certificate for %s yet; the TLS listeners open once one is issued",
                     ", ".join(acme.names))
            return False
        except (ConfigError, OSError, ssl.SSLError) as e:
            self.certificate, self.source, self.error = None, acme.source, None
            log.info("ACME: the cached certificate is not used (%s); a new one will be issued", e)
            return False
        for kind, ctx in built.items():
            ctx.sni_callback = self.contexts[kind]._sni
            self.contexts[kind].current = ctx
        self.certificate, self.source, self.error = info, acme.source, None
        log.info("TLS certificate (ACME) for %s (SHA-256 %s), valid until %s", ", ".join(info.names),
                 info.fingerprint_sha256, info.as_dict()["not_after"])
        return True

    async def _acme_run(self, acme: AcmeState) -> None:
        """The renewal loop: after the clock gate opens, issue or renew when due."""
        if self.clock is not None and not self.clock.is_open():
            log.info("ACME: waiting for the clock to be synchronised before judging the certificate")
            while not self.clock.is_open():  # told when it opens; asked again now and then
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._clock_opened.wait(), CLOCK_RECHECK_S)
        renewer = acme.renewer
        assert renewer is not None
        while True:
            wait = await renewer.step()
            acme.retry_at = renewer.retry_at
            await asyncio.sleep(max(wait, 1.0))

    def _acme_issued(self, acme: AcmeState) -> None:
        """The renewer wrote a new pair: serve it from the next handshake."""
        if acme is not self.acme:  # the configuration changed meanwhile
            return
        acme.last_issued = dt.datetime.now(dt.timezone.utc)
        acme.last_error, acme.failures, acme.retry_at = None, 0, None
        if not self._acme_load(acme):
            why = "the issued certificate could not be loaded"
            acme.last_error = why
            self.faults.set(FAULT, f"ACME: {why}", serving=True)
            return
        info = self.certificate
        assert info is not None
        self.faults.clear(FAULT)
        self.publish({"type": "tls.certificate_issued", "actor": "system",
                      "summary": f"ACME certificate issued: {', '.join(info.names)}, valid until "
                                 f"{info.as_dict()['not_after']}", "fingerprint_sha256": info.fingerprint_sha256})
        if any(self._wanted(kind) and kind not in self.running for kind in self.listeners):
            self._pending = asyncio.get_running_loop().create_task(self.reconcile(strict=False))

    def _acme_failed(self, acme: AcmeState, error: AcmeFailure, attempt: int, retry_in: float) -> None:
        if acme is not self.acme:
            return
        acme.last_error, acme.failures = str(error), attempt
        serving = "the previous certificate keeps serving" if self.certificate is not None else \
            "no certificate yet"
        summary = (f"ACME certificate for {', '.join(acme.names)} not issued (attempt {attempt}): {error}; "
                   f"{serving}; next attempt in {retry_in:.0f} s")
        self.faults.set(FAULT, summary, serving=True)
        self.publish({"type": "tls.acme_failed", "severity": "error", "actor": "system", "summary": summary,
                      "step": error.step, "attempt": attempt, "retry_in": round(retry_in)})

    async def _acme_stop(self) -> None:
        acme, self.acme = self.acme, None
        if acme is None:
            return
        if acme.task is not None:
            acme.task.cancel()
        if acme.responder is not None:
            await acme.responder.close()

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


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat().replace("+00:00", "Z") if when is not None else None


def _release_date() -> dt.datetime:
    return dt.datetime.fromisoformat(__release_date__).replace(tzinfo=dt.timezone.utc)
