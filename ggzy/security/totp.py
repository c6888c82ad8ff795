"""The second factor: time-based one-time passwords (RFC 6238, pyotp) and their enrolment QR code.

A TOTP is a 动态口令, which GB/T 39786 counts as a cryptographic technique, so password + TOTP meets
"two techniques, one of them cryptographic" (等保三级 8.1.4.1 d). A code is accepted once: the time
step of the last accepted code is kept and an equal or earlier step is refused (no replay).
"""

from __future__ import annotations

import datetime as dt

import pyotp
import segno

__all__ = ["new_secret", "provisioning_uri", "qr_svg", "verify_code"]

STEP_SECONDS = 30
DIGITS = 6


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits from the secrets module


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """An inline SVG of the QR code (segno needs no image library and no network)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff"))


def verify_code(
    secret: str, code: str, now: dt.datetime, last_step: int | None, window: int = 1
) -> int | None:
    """The time step ``code`` matches (within ±``window`` steps of ``now``), or None.

    A step at or before ``last_step`` is refused, so a code seen once cannot be used again.
    """
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in range(current - window, current + window + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.generate_otp(step), code):
            return step
    return None
