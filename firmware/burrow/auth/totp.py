"""TOTP (RFC 6238) codes with replay protection, and single-use recovery codes.

A code is accepted for the current 30 s step or one step either side (phone clocks drift),
and only for a step later than the last one accepted for that user: the caller stores the
step this returns, so the same code — or an older one — cannot be used again.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
import secrets

import pyotp
import segno

ISSUER = "Burrow"
STEP_SECONDS = 30
DIGITS = 6
VALID_WINDOW = 1  # steps accepted either side of the current one
RECOVERY_CODE_COUNT = 10
# 10 characters of base32 = 50 bits each, shown as "xxxxx-xxxxx".
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    """A new base32 TOTP secret (160 bits, as authenticator apps expect)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The otpauth:// URI an authenticator app scans."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The URI as an SVG QR code (a string the phone page can inline or show as an image)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False,
                                     svgns=True, title="Burrow 2FA")
    return out.getvalue().decode("utf-8")


def normalise_code(code: str) -> str:
    """Strip the spaces people type ("123 456")."""
    return re.sub(r"\s+", "", code or "")


def looks_like_totp(code: str) -> bool:
    return bool(_CODE.match(normalise_code(code)))


def verify(secret: str, code: str, *, now: float, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to if it is valid now (±1 step) and newer than
    ``last_step``; None otherwise. Compares in constant time per candidate step."""
    code = normalise_code(code)
    if not _CODE.match(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    accepted = None
    # Check every candidate (no early exit) so timing does not tell which step matched.
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            if last_step is None or step > last_step:
                accepted = step if accepted is None else max(accepted, step)
    return accepted


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh recovery codes in display form ("abcde-fgh23")."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_recovery_code(code: str) -> str:
    """sha256 of the normalised code (lowercase, no dashes or spaces). The codes are random
    and 50 bits strong, so a fast hash is enough; the TOTP secret in the same row is the
    weaker link anyway."""
    normalised = re.sub(r"[\s-]+", "", (code or "").lower())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()
