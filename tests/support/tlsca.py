"""A throwaway certificate authority for tests, made with the openssl command line.

``TestCA(folder)`` makes a CA key and certificate; ``ca.issue("name", dns=[...], ips=[...],
expired=False)`` a leaf key and certificate signed by it (EC P-256), returned as
``Leaf(cert, key, spki_pin)``; ``expired=True`` gives one whose validity ended (its notAfter lies
before its notBefore, now: OpenSSL and Python's ssl refuse it as expired). ``available()`` tells
whether openssl is there (tests skip without it).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def available() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str, cwd: Path) -> bytes:
    return subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60).stdout


@dataclass
class Leaf:
    cert: Path
    key: Path
    pin: str  # base64 SHA-256 of the SubjectPublicKeyInfo (RFC 7469)


def spki_pin(cert: Path) -> str:
    cwd = cert.parent
    pub = _run("x509", "-in", str(cert), "-noout", "-pubkey", cwd=cwd)
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         check=True, timeout=60).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


class TestCA:
    __test__ = False

    def __init__(self, folder: Path, name: str = "Burrow test CA") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cert = self.folder / "ca.pem"
        self.key = self.folder / "ca.key"
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(self.key), "-out", str(self.cert), "-subj", f"/CN={name}", "-days", "30",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=self.folder)

    def issue(self, stem: str, dns: list[str] = (), ips: list[str] = (), expired: bool = False) -> Leaf:
        key, csr, cert = (self.folder / f"{stem}.{ext}" for ext in ("key", "csr", "pem"))
        ext = self.folder / f"{stem}.ext"
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
        ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=serverAuth\n" + (f"subjectAltName={','.join(sans)}\n" if sans else ""))
        _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", f"/CN={(list(dns) or list(ips) or [stem])[0]}", cwd=self.folder)
        _run("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key), "-CAcreateserial",
             "-out", str(cert), "-days", "-1" if expired else "30", "-extfile", str(ext), cwd=self.folder)
        return Leaf(cert, key, spki_pin(cert))
