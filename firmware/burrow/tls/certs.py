"""Certificate material: a PEM pair loaded and judged, described, made self-signed, written
atomically; and the server ``ssl.SSLContext`` built from it.

``cryptography`` is imported inside the functions that use it (it costs tens of milliseconds
at import, and nothing on the DNS path needs it). Errors are ``ConfigError`` naming the option
the bad file came from (``tls.cert_file``, ``tls.key_file``), so the API answers a 400 naming
the field and the command line names the key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomicfile import write_atomic
from ..config import ConfigError

MAX_PEM_BYTES = 256 * 1024  # a certificate chain and its key; larger is not a PEM file we want
SELF_SIGNED_DAYS = 3650  # a pinned self-signed certificate should not change often
SELF_SIGNED_RENEW_DAYS = 30  # made again when it has fewer days left than this
SELF_SIGNED_FILE = "self-signed.pem"  # key and certificate in one file: written in one rename
# TLS 1.2 suites when 1.3 is not spoken: forward secret and AEAD only (1.3's are all that).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


@dataclass(frozen=True)
class CertInfo:
    """What a person needs to know about the certificate in force (never the key)."""

    subject: str
    names: tuple[str, ...]  # subjectAltName: DNS names, then IP addresses
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str  # of the DER certificate, "AB:CD:…" as `openssl x509 -fingerprint -sha256`

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "names": list(self.names),
                "not_before": self.not_before.isoformat().replace("+00:00", "Z"),
                "not_after": self.not_after.isoformat().replace("+00:00", "Z"),
                "fingerprint_sha256": self.fingerprint_sha256}


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate as colon-separated upper-case hex."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def describe(cert: Any) -> CertInfo:
    """A ``cryptography`` certificate → CertInfo."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    return CertInfo(cert.subject.rfc4514_string(), tuple(names), cert.not_valid_before_utc,
                    cert.not_valid_after_utc, fingerprint(cert.public_bytes(Encoding.DER)))


def _read(path: str, field: str) -> bytes:
    if not path:
        raise ConfigError([(field, "is empty: name a PEM file")])
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PEM_BYTES + 1)
    except OSError as e:
        raise ConfigError([(field, f"cannot read {path}: {e.strerror or e}")]) from None
    if len(data) > MAX_PEM_BYTES:
        raise ConfigError([(field, f"{path} is over {MAX_PEM_BYTES // 1024} KiB: not a PEM certificate or key")])
    return data


def judge(cert_pem: bytes, key_pem: bytes, *, now: dt.datetime | None = None,
          cert_field: str = "tls.cert_file", key_field: str = "tls.key_file",
          not_yet_ok: bool = False) -> CertInfo:
    """Check a PEM pair: a certificate (the first of the chain is the server's), a private key
    that matches it, valid now, naming at least one name. Returns its CertInfo; ConfigError
    naming the field otherwise."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise ConfigError([(cert_field, "holds no PEM certificate")]) from None
    cert = chain[0]
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        why = "is encrypted (Burrow needs it without a passphrase)" if isinstance(e, TypeError) else \
            "holds no PEM private key"
        raise ConfigError([(key_field, why)]) from None
    spki = PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(Encoding.DER, spki) != cert.public_key().public_bytes(Encoding.DER, spki):
        raise ConfigError([(key_field, "the private key does not match the certificate")])
    info = describe(cert)
    now = now or dt.datetime.now(dt.timezone.utc)
    if info.not_after <= now:
        raise ConfigError([(cert_field, f"the certificate expired on {info.as_dict()['not_after']}")])
    if info.not_before > now and not not_yet_ok:
        raise ConfigError([(cert_field, f"the certificate is not valid before {info.as_dict()['not_before']}")])
    if not info.names:
        raise ConfigError([(cert_field, "the certificate names no DNS name or address (subjectAltName)")])
    return info


def load_pair(cert_file: str, key_file: str | None, *, now: dt.datetime | None = None) -> CertInfo:
    """Read and judge the PEM files ``cert_file`` and ``key_file`` (None: the key is in the
    certificate's file, as in the self-signed one)."""
    cert_pem = _read(cert_file, "tls.cert_file")
    key_pem = _read(key_file, "tls.key_file") if key_file else cert_pem
    return judge(cert_pem, key_pem, now=now, key_field="tls.key_file" if key_file else "tls.cert_file")


def make_self_signed(names: list[str], addresses: list[str], *, now: dt.datetime | None = None,
                     days: int = SELF_SIGNED_DAYS) -> bytes:
    """A new ECDSA P-256 key and a self-signed certificate for ``names`` and ``addresses``:
    the key then the certificate, PEM, in one byte string."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(names) if n]
    for a in dict.fromkeys(addresses):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(a.split("%", 1)[0])))
        except ValueError:
            continue
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "burrow.local"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Burrow (self-signed)")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)


def ensure_self_signed(path: Path, names: list[str], addresses: list[str], *,
                       now: dt.datetime | None = None, not_before_floor: dt.datetime | None = None) -> CertInfo:
    """The self-signed pair at ``path``, made (or made again) when it is missing, unreadable,
    not a valid pair, or has fewer than SELF_SIGNED_RENEW_DAYS left. An existing good one is
    kept as it is, so its fingerprint stays what the owner pinned.

    ``not_before_floor``: the earliest the clock can truly be (the release date). A board
    without a real-time clock may boot in 1970; "now" is then at least this, so a new
    certificate does not expire ten years after 1970.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    if not_before_floor is not None and now < not_before_floor:
        now = not_before_floor
    try:
        data = path.read_bytes()
        # A clock that is behind (no RTC, before network time) is no reason to make a new one.
        return judge(data, data, now=now + dt.timedelta(days=SELF_SIGNED_RENEW_DAYS), not_yet_ok=True)
    except (OSError, ConfigError):
        pass
    data = make_self_signed(names, addresses, now=now)
    write_atomic(path, data, 0o600)
    return judge(data, data, now=now)


def server_context(cert_file: str, key_file: str | None, alpn: list[str]) -> ssl.SSLContext:
    """A server context: TLS 1.2 and 1.3 (1.2 with forward-secret AEAD suites only), session
    resumption on (OpenSSL's server session cache for 1.2, tickets for both), ``alpn`` offered."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_NO_COMPRESSION
    ctx.options &= ~ssl.OP_NO_TICKET
    ctx.load_cert_chain(cert_file, key_file or None)
    ctx.set_alpn_protocols(alpn)
    return ctx
