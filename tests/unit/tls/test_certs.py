"""burrow/tls/certs.py: PEM pairs judged, described, made self-signed and written atomically."""

from __future__ import annotations

import datetime as dt
import os
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from burrow.config import ConfigError
from burrow.tls import certs
from tests.support.tlscerts import TestCA, fingerprint_of_der, key_pem, now, write_pair


@pytest.fixture(scope="module")
def ca():
    return TestCA()


def fields(err: ConfigError) -> list[str]:
    return [k for k, _ in err.errors]


def test_a_good_pair_is_described_with_names_expiry_and_the_der_fingerprint(ca, tmp_path):
    pair = ca.issue(["dns.test", "burrow.local"], ["127.0.0.1"])
    cert, key = write_pair(tmp_path, "good", pair)
    info = certs.load_pair(str(cert), str(key))
    assert info.names == ("dns.test", "burrow.local", "127.0.0.1")
    assert info.subject == "CN=dns.test"
    der = x509.load_pem_x509_certificate(pair[0]).public_bytes(Encoding.DER)
    assert info.fingerprint_sha256 == fingerprint_of_der(der)
    assert dt.timedelta(days=9) < info.not_after - now() <= dt.timedelta(days=10)
    assert set(info.as_dict()) == {"subject", "names", "not_before", "not_after", "fingerprint_sha256"}


def test_a_key_that_does_not_match_names_the_key_file(ca, tmp_path):
    cert, _ = write_pair(tmp_path, "a", ca.issue(["a.test"]))
    _, other_key = write_pair(tmp_path, "b", ca.issue(["b.test"]))
    with pytest.raises(ConfigError) as e:
        certs.load_pair(str(cert), str(other_key))
    assert fields(e.value) == ["tls.key_file"] and "does not match" in str(e.value)


def test_expired_and_not_yet_valid_certificates_name_the_cert_file(ca, tmp_path):
    expired = write_pair(tmp_path, "old", ca.issue(["x.test"], not_before=now() - dt.timedelta(days=20),
                                                   not_after=now() - dt.timedelta(days=1)))
    future = write_pair(tmp_path, "new", ca.issue(["x.test"], not_before=now() + dt.timedelta(days=1)))
    for (cert, key), word in ((expired, "expired"), (future, "not valid before")):
        with pytest.raises(ConfigError) as e:
            certs.load_pair(str(cert), str(key))
        assert fields(e.value) == ["tls.cert_file"] and word in str(e.value)


def test_unreadable_empty_and_non_pem_files_are_refused_by_field(ca, tmp_path):
    cert, key = write_pair(tmp_path, "ok", ca.issue(["x.test"]))
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    cases = [(str(tmp_path / "missing.crt"), str(key), "tls.cert_file"), ("", str(key), "tls.cert_file"),
             (str(junk), str(key), "tls.cert_file"), (str(cert), str(junk), "tls.key_file"),
             (str(cert), str(tmp_path / "missing.key"), "tls.key_file")]
    for c, k, field in cases:
        with pytest.raises(ConfigError) as e:
            certs.load_pair(c, k)
        assert fields(e.value) == [field], (c, k, e.value)


def test_a_certificate_without_names_is_refused(ca, tmp_path):
    cert, key = write_pair(tmp_path, "nameless", ca.issue([], ["127.0.0.1"]))
    certs.load_pair(str(cert), str(key))  # an address is a name
    nameless_key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "only-cn.test")])
    bare = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.cert.subject)
            .public_key(nameless_key.public_key()).serial_number(1)
            .not_valid_before(now() - dt.timedelta(hours=1)).not_valid_after(now() + dt.timedelta(days=1))
            .sign(ca.key, hashes.SHA256()))
    with pytest.raises(ConfigError) as e:
        certs.judge(bare.public_bytes(Encoding.PEM), key_pem(nameless_key))
    assert "subjectAltName" in str(e.value)


def test_the_self_signed_pair_is_made_once_in_one_0600_file_and_kept(tmp_path):
    path = tmp_path / "tls" / certs.SELF_SIGNED_FILE
    first = certs.ensure_self_signed(path, ["burrow.local", "pi", "pi.local"], ["192.0.2.7", "fe80::1%eth0"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.names == ("burrow.local", "pi", "pi.local", "192.0.2.7", "fe80::1")
    data = path.read_bytes()
    assert data.index(b"PRIVATE KEY") < data.index(b"CERTIFICATE")
    key = x509.load_pem_x509_certificate(data).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    again = certs.ensure_self_signed(path, ["other"], [])
    assert again.fingerprint_sha256 == first.fingerprint_sha256  # what an owner pinned stays
    assert os.listdir(path.parent) == [certs.SELF_SIGNED_FILE]  # no temporary file left


def test_a_damaged_or_expiring_self_signed_pair_is_made_again(tmp_path):
    path = tmp_path / certs.SELF_SIGNED_FILE
    first = certs.ensure_self_signed(path, ["burrow.local"], [])
    path.write_bytes(path.read_bytes()[:200])  # half a file
    second = certs.ensure_self_signed(path, ["burrow.local"], [])
    assert second.fingerprint_sha256 != first.fingerprint_sha256
    path.write_bytes(certs.make_self_signed(["burrow.local"], [], days=10))  # inside the renewal window
    third = certs.ensure_self_signed(path, ["burrow.local"], [])
    assert third.not_after - now() > dt.timedelta(days=3000)


def test_a_clock_in_1970_still_makes_a_certificate_valid_after_the_release(tmp_path):
    floor = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    info = certs.ensure_self_signed(tmp_path / "p.pem", ["burrow.local"], [],
                                    now=dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), not_before_floor=floor)
    assert info.not_after > floor + dt.timedelta(days=3000)


def test_the_server_context_speaks_tls12_and_13_with_alpn(ca, tmp_path):
    cert, key = write_pair(tmp_path, "s", ca.issue(["dns.test"]))
    ctx = certs.server_context(str(cert), str(key), ["dot"])
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert not ctx.options & ssl.OP_NO_TICKET
    assert all(c["protocol"] in ("TLSv1.2", "TLSv1.3") for c in ctx.get_ciphers())
