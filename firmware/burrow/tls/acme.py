"""ACME certificates (issue 17, certificate modes 3 and 4): HTTP-01 and DNS-01 issuance through
certbot's ``acme`` library, renewal ahead of expiry with a capped, jittered back-off.

The protocol is the library's (``acme.client.ClientV2``, JWS signing by ``josepy``); this module
only drives it: the account, one order for the names, the challenges, the finalisation with a
fresh ECDSA P-256 key, and the files. The library is blocking (``requests``), so every call into
it runs in a worker thread (``asyncio.to_thread``), each HTTP request bounded by
``network_timeout`` and the whole validation and finalisation by ``order_timeout``; the event loop
keeps serving (the HTTP-01 responder it runs answers the CA while a worker thread waits).
``acme``, ``josepy`` and ``cryptography`` are imported inside the functions that use them.

* :class:`Http01Tokens` holds the key authorisations the CA will fetch from
  ``http://<name>/.well-known/acme-challenge/<token>``; the web listener asks
  ``challenge_response(token)``. :class:`Http01Responder` is a tiny listener of its own that
  serves only those paths (for a test, or a board without the web listener on port 80).
* DNS-01 publishes ``_acme-challenge.<name>`` TXT records through a :class:`Dns01Provider`
  (burrow/tls/dnsproviders.py: Cloudflare).
* :class:`AcmeIssuer` ``issue()`` gets a certificate and writes the full chain and the key with
  burrow/tls/certfiles.py (a power cut leaves the old pair or the new one, never a mix).
* :func:`renewal_due` and :func:`retry_delay` are the policy; :class:`Renewer` applies it, calling
  ``on_failure(error, attempt, retry_in)`` after each failed attempt.

Every failure is an :class:`AcmeFailure` naming the step (``account``, ``order``, ``challenge``,
``dns``, ``finalize``, ``network``, ``write``) with the CA's or the provider's words; no key or
token is ever part of one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from burrow import __version__
from burrow.atomicfile import write_atomic
from burrow.dns.names import BadName, normalize_pattern
from burrow.tls import certfiles

if TYPE_CHECKING:
    from acme import client as acme_client
    from acme import messages
    from josepy import JWK

log = logging.getLogger("burrow.tls.acme")

Challenge = Literal["http-01", "dns-01"]
CHALLENGES: tuple[Challenge, ...] = ("http-01", "dns-01")

NETWORK_TIMEOUT_S = 30  # one HTTP request to the CA
ORDER_TIMEOUT_S = 180  # validation and finalisation of one order, polled by the library
DNS_PROPAGATION_S = 20.0  # wait after creating TXT records before asking the CA to look
MAX_NAMES = 100  # names in one certificate (Let's Encrypt's limit)
MAX_HTTP01_TOKENS = 256  # published key authorisations at once (one per name of an order)
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"

# Renewal policy: renew at two thirds of the lifetime, and no later than RENEW_BEFORE ahead of
# expiry when the lifetime leaves room for it (a 90-day certificate renews on day 60 either way).
RENEW_AT_FRACTION = 2 / 3
RENEW_BEFORE = dt.timedelta(days=30)
RETRY_BASE_S = 300.0  # first retry after a failure: 5 min (times the jitter)
RETRY_CAP_S = 6 * 3600.0  # the longest wait between attempts; Let's Encrypt allows 5 failed
#                           validations per name an hour, so retries stay well under it
RETRY_JITTER = 0.5  # a delay is drawn from [1 - RETRY_JITTER, 1] × the exponential step
MAX_WAIT_S = 3600.0  # the renewer re-reads the clock at least this often (suspend, a clock set)


class AcmeFailure(Exception):
    """An issuance that did not finish; ``step`` names where, the message says why."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


class DnsProviderError(Exception):
    """A DNS provider refused or could not be reached; the message never holds the token."""


class Dns01Provider(Protocol):
    """Creates and deletes the TXT records of DNS-01 challenges."""

    async def create_txt(self, name: str, value: str) -> object:
        """Create a TXT record ``name`` (no trailing dot) holding ``value``; a handle for
        :meth:`delete_txt`. DnsProviderError when the provider refuses."""

    async def delete_txt(self, handle: object) -> None:
        """Delete a record :meth:`create_txt` made."""


@dataclass(frozen=True)
class CertInfo:
    """What a written certificate is: its names, validity and serial (hex)."""

    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    serial: str


def cert_info(fullchain_pem: bytes) -> CertInfo:
    """The leaf's facts from a PEM full chain; ValueError when it holds no certificate."""
    from cryptography import x509

    certs = x509.load_pem_x509_certificates(fullchain_pem)
    leaf = certs[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(names=names, not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
                    serial=format(leaf.serial_number, "x"))


def read_cert_info(cert_path: Path | str) -> CertInfo | None:
    """The certificate at ``cert_path``, or None when there is none (or it does not parse)."""
    try:
        return cert_info(Path(cert_path).read_bytes())
    except (OSError, ValueError):
        return None


# ---- policy -------------------------------------------------------------------------------------

def renewal_due(not_before: dt.datetime, not_after: dt.datetime,
                before: dt.timedelta = RENEW_BEFORE) -> dt.datetime:
    """When a certificate valid from ``not_before`` to ``not_after`` should be renewed: at two
    thirds of its lifetime, or ``before`` (RENEW_BEFORE, ``tls.acme.renew_before``) ahead of
    expiry if that is earlier and still past half of the lifetime (a short-lived certificate
    renews at two thirds)."""
    lifetime = not_after - not_before
    two_thirds = not_before + lifetime * RENEW_AT_FRACTION
    ahead = not_after - before
    if ahead >= not_before + lifetime / 2:
        return min(two_thirds, ahead)
    return two_thirds


def retry_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempt``-th failure in a row (1, 2, …): RETRY_BASE_S doubling
    up to RETRY_CAP_S, times a jitter in [1 - RETRY_JITTER, 1] so boards that failed together
    (a CA outage) do not come back together."""
    step = min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** min(max(attempt, 1) - 1, 30))
    return step * (1.0 - RETRY_JITTER * rng())


# ---- HTTP-01 ------------------------------------------------------------------------------------

class Http01Tokens:
    """The HTTP-01 key authorisations being offered, by token (read on the event loop)."""

    def __init__(self, cap: int = MAX_HTTP01_TOKENS):
        self.cap = cap
        self._tokens: dict[str, str] = {}

    def publish(self, token: str, key_authorization: str) -> None:
        if token not in self._tokens and len(self._tokens) >= self.cap:
            raise AcmeFailure("challenge", f"more than {self.cap} HTTP-01 tokens at once")
        self._tokens[token] = key_authorization

    def withdraw(self, token: str) -> None:
        self._tokens.pop(token, None)

    def challenge_response(self, token: str) -> str | None:
        """The body to answer ``GET /.well-known/acme-challenge/<token>`` with, or None (404)."""
        return self._tokens.get(token)

    def __len__(self) -> int:
        return len(self._tokens)


class Http01Responder:
    """A minimal HTTP/1.x listener answering ``GET /.well-known/acme-challenge/<token>`` from
    :class:`Http01Tokens` (404 for anything else), one request per connection."""

    MAX_HEAD = 8192  # bytes of a request head
    HEAD_TIMEOUT_S = 10.0  # to read the head
    MAX_CONNECTIONS = 32  # open at once; more are closed unanswered

    def __init__(self, tokens: Http01Tokens):
        self.tokens = tokens
        self.served = 0  # key authorisations answered
        self._server: asyncio.Server | None = None
        self._open = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); the port."""
        self._server = await asyncio.start_server(self._handle, host, port, limit=self.MAX_HEAD)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open > self.MAX_CONNECTIONS:
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.HEAD_TIMEOUT_S)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ConnectionError):
                return
            status, body = self.answer(head.split(b"\r\n", 1)[0])
            writer.write(b"HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n%s" % (status, len(body), body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            self._open -= 1
            writer.close()

    def answer(self, request_line: bytes) -> tuple[bytes, bytes]:
        """(status, body) for a request line."""
        parts = request_line.split(b" ")
        if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
            return b"405 Method Not Allowed", b""
        path = parts[1].decode("latin-1")
        if path.startswith(ACME_CHALLENGE_PATH):
            found = self.tokens.challenge_response(path[len(ACME_CHALLENGE_PATH):])
            if found is not None:
                self.served += 1
                return b"200 OK", found.encode("ascii")
        return b"404 Not Found", b""


# ---- the issuer ---------------------------------------------------------------------------------

def _account_key(path: Path) -> tuple[JWK, Any]:
    """The account key at ``path`` (created, ECDSA P-256, 0600, when missing) and the JWS
    algorithm for it."""
    import josepy
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        new = ec.generate_private_key(ec.SECP256R1())
        pem = new.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        write_atomic(path, pem, certfiles.KEY_MODE)
        log.info("acme: created an account key at %s", path)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as e:
        raise AcmeFailure("account", f"the account key {path} is not a readable private key") from e
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return josepy.JWKEC(key=key), josepy.ES256
    if isinstance(key, rsa.RSAPrivateKey):
        return josepy.JWKRSA(key=key), josepy.RS256
    raise AcmeFailure("account", f"the account key {path} must be ECDSA P-256 or RSA")


def _new_key_and_csr(names: list[str]) -> tuple[bytes, bytes]:
    """A fresh ECDSA P-256 key (PKCS#8 PEM) and a CSR for ``names``."""
    from acme import crypto_util
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, crypto_util.make_csr(key_pem, names)


def _problem(e: BaseException) -> str:
    """The CA's or the network's words for ``e``, on one line."""
    text = str(e) or type(e).__name__
    return " ".join(text.split())


def check_names(names: list[str], challenge: str) -> list[str]:
    """The names normalised, or ValueError naming the bad one: 1 to MAX_NAMES of them, no
    repeats, a wildcard only with DNS-01 (the CA validates wildcards only over DNS)."""
    if challenge not in CHALLENGES:
        raise ValueError(f"challenge must be one of {', '.join(CHALLENGES)}")
    if not names:
        raise ValueError("names: at least one name is needed")
    if len(names) > MAX_NAMES:
        raise ValueError(f"names: at most {MAX_NAMES}")
    out: list[str] = []
    for raw in names:
        try:
            wildcard, base = normalize_pattern(raw)
        except BadName as e:
            raise ValueError(f"names: {raw!r}: {e}") from None
        if "." not in base:
            raise ValueError(f"names: {raw!r}: a certificate name needs a dot (a registered domain)")
        if wildcard and challenge != "dns-01":
            raise ValueError(f"names: {raw!r}: a wildcard needs the dns-01 challenge")
        name = "*." + base if wildcard else base
        if name in out:
            raise ValueError(f"names: {raw!r} is listed twice")
        out.append(name)
    return out


class AcmeIssuer:
    """Gets a certificate for ``names`` from the ACME directory at ``directory_url`` and writes
    it (full chain) and its key; one issuance at a time."""

    def __init__(self, *, directory_url: str, names: list[str], account_key_path: Path | str,
                 cert_path: Path | str, key_path: Path | str, email: str | None = None,
                 challenge: Challenge = "http-01", http01: Http01Tokens | None = None,
                 dns01: Dns01Provider | None = None, ca_bundle: str | None = None,
                 network_timeout: float = NETWORK_TIMEOUT_S, order_timeout: float = ORDER_TIMEOUT_S,
                 dns_propagation: float = DNS_PROPAGATION_S):
        if not directory_url.startswith(("https://", "http://")):
            raise ValueError("directory_url must be an http(s) URL")
        self.names = check_names(names, challenge)
        if challenge == "http-01" and http01 is None:
            raise ValueError("http-01 needs the Http01Tokens the web listener serves")
        if challenge == "dns-01" and dns01 is None:
            raise ValueError("dns-01 needs a DNS provider")
        if email is not None and ("@" not in email or any(c.isspace() for c in email)):
            raise ValueError("email: not an e-mail address")
        self.directory_url = directory_url
        self.email = email
        self.challenge = challenge
        self.http01 = http01
        self.dns01 = dns01
        self.account_key_path = Path(account_key_path)
        self.cert_path = Path(cert_path)
        self.key_path = Path(key_path)
        self.ca_bundle = ca_bundle  # a CA file for the directory's TLS (a test CA); None: the system's
        self.network_timeout = network_timeout
        self.order_timeout = order_timeout
        self.dns_propagation = dns_propagation
        self._lock = asyncio.Lock()

    def current(self) -> CertInfo | None:
        """The certificate on disk now (a write a crash interrupted is settled first)."""
        certfiles.complete_pending_pair(self.cert_path, self.key_path)
        return read_cert_info(self.cert_path)

    async def issue(self) -> CertInfo:
        """Order, validate, finalise and write a certificate; AcmeFailure when any step fails
        (the files on disk are then the ones there before)."""
        async with self._lock:
            return await self._issue()

    async def _issue(self) -> CertInfo:
        await asyncio.to_thread(certfiles.complete_pending_pair, self.cert_path, self.key_path)
        client = await self._client()
        key_pem, csr_pem = await asyncio.to_thread(_new_key_and_csr, self.names)
        order = await self._call("order", client.new_order, csr_pem)
        cleanups: list[Callable[[], Awaitable[None]]] = []
        try:
            answers = await self._prepare(client, order, cleanups)
            if answers and self.challenge == "dns-01" and self.dns_propagation > 0:
                await asyncio.sleep(self.dns_propagation)
            for challb, response in answers:
                await self._call("challenge", client.answer_challenge, challb, response)
            deadline = dt.datetime.now() + dt.timedelta(seconds=self.order_timeout)
            order = await self._call("finalize", client.poll_and_finalize, order, deadline)
        finally:
            for cleanup in cleanups:
                await cleanup()
        fullchain = order.fullchain_pem.encode("ascii")
        try:
            info = cert_info(fullchain)
        except ValueError as e:
            raise AcmeFailure("finalize", f"the CA sent no readable certificate: {_problem(e)}") from e
        missing = sorted(set(self.names) - set(info.names))
        if missing:
            raise AcmeFailure("finalize", f"the certificate lacks {', '.join(missing)}")
        try:
            await asyncio.to_thread(certfiles.write_pair, self.cert_path, self.key_path, fullchain, key_pem)
        except OSError as e:
            raise AcmeFailure("write", f"{e.strerror or e}: {e.filename or self.cert_path}") from e
        log.info("acme: certificate for %s issued (serial %s, valid until %s)",
                 ", ".join(self.names), info.serial, info.not_after.isoformat())
        return info

    async def _call(self, step: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread; the library's errors as AcmeFailure(step)."""
        from acme import errors, messages

        try:
            return await asyncio.to_thread(fn, *args)
        except errors.ValidationError as e:
            raise AcmeFailure("challenge", self._validation_problem(e)) from e
        except errors.TimeoutError as e:
            raise AcmeFailure(step, f"the CA did not finish within {self.order_timeout:g} s") from e
        except messages.Error as e:
            raise AcmeFailure(step, f"the CA refused: {_problem(e)}") from e
        except (errors.Error, ValueError) as e:
            raise AcmeFailure(step, _problem(e)) from e
        except OSError as e:  # requests' ConnectionError, Timeout and SSLError are OSErrors
            raise AcmeFailure("network", f"{self.directory_url}: {_problem(e)}") from e

    @staticmethod
    def _validation_problem(e: Any) -> str:
        out = []
        for authzr in e.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    detail = challb.error.detail or challb.error.typ
                    out.append(f"{authzr.body.identifier.value} ({challb.chall.typ}): {detail}")
        return "; ".join(out) or "validation failed"

    async def _client(self) -> acme_client.ClientV2:
        """A client with the account registered (or found again by its key)."""
        from acme import client as acme_client

        try:
            key, alg = await asyncio.to_thread(_account_key, self.account_key_path)
        except OSError as e:
            raise AcmeFailure("account", f"{e.strerror or e}: {self.account_key_path}") from e
        # requests takes a CA file path where acme's annotation says bool
        verify: Any = self.ca_bundle if self.ca_bundle else True
        net = acme_client.ClientNetwork(key, alg=alg, verify_ssl=verify, user_agent=f"burrow/{__version__}",
                                        timeout=int(self.network_timeout))
        directory = await self._call("account", acme_client.ClientV2.get_directory, self.directory_url, net)
        client = acme_client.ClientV2(directory, net)
        await self._call("account", self._register, client)
        return client

    def _register(self, client: acme_client.ClientV2) -> None:
        from acme import errors, messages

        new = messages.NewRegistration.from_data(email=self.email, terms_of_service_agreed=True)
        try:
            client.new_account(new)
        except errors.ConflictError as e:  # the key has an account already: use it
            client.query_registration(messages.RegistrationResource(uri=e.location, body=messages.Registration()))

    async def _prepare(self, client: acme_client.ClientV2, order: messages.OrderResource,
                       cleanups: list[Callable[[], Awaitable[None]]]) -> list[tuple[Any, Any]]:
        """Publish a response for every pending authorisation; (challenge, response) to answer."""
        from acme import challenges, messages

        wanted = challenges.HTTP01 if self.challenge == "http-01" else challenges.DNS01
        key = client.net.key
        answers = []
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # the CA reuses a recent validation
            name = authzr.body.identifier.value
            challb = next((c for c in authzr.body.challenges if isinstance(c.chall, wanted)), None)
            if challb is None:
                raise AcmeFailure("challenge", f"the CA offers no {self.challenge} challenge for {name}")
            response, validation = challb.response_and_validation(key)
            if self.challenge == "http-01":
                assert self.http01 is not None
                token = challb.chall.encode("token")
                self.http01.publish(token, validation)
                cleanups.append(_withdrawer(self.http01, token))
            else:
                assert self.dns01 is not None
                record = challb.chall.validation_domain_name(name)
                try:
                    handle = await self.dns01.create_txt(record, validation)
                except DnsProviderError as e:
                    raise AcmeFailure("dns", str(e)) from e
                cleanups.append(_deleter(self.dns01, handle, record))
            answers.append((challb, response))
        return answers


def _withdrawer(tokens: Http01Tokens, token: str) -> Callable[[], Awaitable[None]]:
    async def withdraw() -> None:
        tokens.withdraw(token)
    return withdraw


def _deleter(provider: Dns01Provider, handle: object, record: str) -> Callable[[], Awaitable[None]]:
    async def delete() -> None:
        try:
            await provider.delete_txt(handle)
        except DnsProviderError as e:
            log.warning("acme: could not delete the TXT record %s: %s", record, e)
    return delete


# ---- renewal ------------------------------------------------------------------------------------

class Issuing(Protocol):
    def current(self) -> CertInfo | None: ...

    async def issue(self) -> CertInfo: ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Renewer:
    """Keeps a certificate issued and renewed: ``run()`` forever (under the Supervisor), or
    ``step()`` once. After a failure it calls ``on_failure(error, attempt, retry_in)`` and waits
    :func:`retry_delay`; ``on_issued(info)`` after a success. ``now`` is the wall clock (the
    certificate's dates are wall-clock times), ``sleep`` the loop's."""

    def __init__(self, issuer: Issuing, *,
                 on_failure: Callable[[AcmeFailure, int, float], None],
                 on_issued: Callable[[CertInfo], None] | None = None,
                 now: Callable[[], dt.datetime] = _utcnow,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: Callable[[], float] = random.random, renew_before: dt.timedelta = RENEW_BEFORE):
        self.issuer = issuer
        self.renew_before = renew_before
        self.on_failure = on_failure
        self.on_issued = on_issued
        self.now = now
        self.sleep = sleep
        self.rng = rng
        self.failures = 0  # in a row
        self.retry_at: dt.datetime | None = None
        self.last_error: AcmeFailure | None = None

    def due(self) -> dt.datetime | None:
        """When the next attempt is due: now-or-earlier means at once."""
        if self.retry_at is not None:
            return self.retry_at
        info = self.issuer.current()
        if info is None or set(info.names) != set(getattr(self.issuer, "names", info.names)):
            return None  # no certificate, or one for other names: issue now
        return renewal_due(info.not_before, info.not_after, self.renew_before)

    async def step(self) -> float:
        """Issue if due; the seconds to wait before the next step (at most MAX_WAIT_S)."""
        due = self.due()
        now = self.now()
        if due is not None and due > now:
            return min(MAX_WAIT_S, (due - now).total_seconds())
        started = time.monotonic()
        try:
            info = await self.issuer.issue()
        except Exception as e:  # any failure is retried; a bug is logged with its trace
            error = e if isinstance(e, AcmeFailure) else AcmeFailure("internal", _problem(e))
            if not isinstance(e, AcmeFailure):
                log.exception("acme: issuance failed unexpectedly")
            self.failures += 1
            delay = retry_delay(self.failures, self.rng)
            self.retry_at = self.now() + dt.timedelta(seconds=delay)
            self.last_error = error
            log.warning("acme: attempt %d failed (%s); next in %.0f s", self.failures, error, delay)
            try:
                self.on_failure(error, self.failures, delay)
            except Exception:  # the callback's failure must not stop renewals
                log.exception("acme: on_failure raised")
            return min(MAX_WAIT_S, delay)
        self.failures = 0
        self.retry_at = None
        self.last_error = None
        log.info("acme: issued in %.1f s", time.monotonic() - started)
        if self.on_issued is not None:
            try:
                self.on_issued(info)
            except Exception:
                log.exception("acme: on_issued raised")
        return 0.0

    async def run(self) -> None:
        while True:
            await self.sleep(await self.step())
