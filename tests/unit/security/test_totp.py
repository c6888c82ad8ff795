"""TOTP: a right code within one step is accepted once; wrong, old and replayed codes are refused."""

from __future__ import annotations

import datetime as dt

import pyotp

from ggzy.security.totp import new_secret, provisioning_uri, qr_svg, verify_code

NOW = dt.datetime(2026, 11, 27, 8, 0, 0, tzinfo=dt.UTC)


def code_at(secret: str, moment: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(moment)


def test_a_code_is_accepted_once() -> None:
    secret = new_secret()
    step = verify_code(secret, code_at(secret, NOW), NOW, None)
    assert step == int(NOW.timestamp()) // 30
    assert verify_code(secret, code_at(secret, NOW), NOW, step) is None  # replay


def test_wrong_and_stale_codes_are_refused() -> None:
    secret = new_secret()
    good = code_at(secret, NOW)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    assert verify_code(secret, wrong, NOW, None) is None
    assert verify_code(secret, code_at(secret, NOW - dt.timedelta(minutes=5)), NOW, None) is None
    assert (
        verify_code(secret, code_at(secret, NOW - dt.timedelta(seconds=30)), NOW, None) is not None
    )  # drift
    assert (
        verify_code(secret, "12345", NOW, None) is None and verify_code(secret, "abcdef", NOW, None) is None
    )


def test_enrolment_qr_is_an_inline_svg_of_the_uri() -> None:
    uri = provisioning_uri(new_secret(), "zhangsan", "ggzy-exchange")
    assert uri.startswith("otpauth://totp/ggzy-exchange:zhangsan?") and "issuer=ggzy-exchange" in uri
    svg = qr_svg(uri)
    assert svg.startswith("<svg") and "</svg>" in svg and "http" not in svg.split(">", 1)[1]
