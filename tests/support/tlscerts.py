"""A test certificate authority and server certificates, made by the test with ``cryptography``.

    ca = TestCA()
    cert_pem, key_pem = ca.issue(["dns.test"], ["127.0.0.1"])
    ca.write(tmp_path / "ca.pem")

Nothing here is Burrow's code: the tests judge Burrow's certificate handling against pairs made
independently of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def fingerprint_of_der(der: bytes) -> str:
    """The way `openssl x509 -fingerprint -sha256` writes it."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class TestCA:
    __test__ = False

    def __init__(self, name: str = "Burrow Test CA"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now() - dt.timedelta(days=1)).not_valid_after(now() + dt.timedelta(days=30))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path

    def issue(self, names: list[str], addresses: list[str] = (), *, not_before: dt.datetime | None = None,
              not_after: dt.datetime | None = None, key=None) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for a server with these names, signed by this CA."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or addresses)[0])]))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(not_before or now() - dt.timedelta(hours=1))
                   .not_valid_after(not_after or now() + dt.timedelta(days=10)))
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def write_pair(directory: Path, stem: str, pair: tuple[bytes, bytes]) -> tuple[Path, Path]:
    """Write (cert, key) as <stem>.crt and <stem>.key; their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(pair[0])
    key.write_bytes(pair[1])
    return cert, key
