"""CSRF for the workplace's forms: a bearer token does not lift the check from a browser's session,
and an evidence file larger than the form limit still reaches its route once the token (sent first)
has been checked — without being read into memory by the check."""

from __future__ import annotations

import re
from typing import Any

from ggzy.web.csrf import MAX_FORM_BYTES

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def _answer(http: Any, fields: list[tuple[str, Any]]) -> Any:
    boundary = "----ggzy-test"
    parts = []
    for name, value in fields:
        if isinstance(value, bytes):
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="proof.pdf"\r\n'
            parts.append(head.encode() + b"Content-Type: application/pdf\r\n\r\n" + value + b"\r\n")
        else:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return http.post(
        "/api/v1/ops/rectifications/1/answers",
        content=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def test_a_session_cookie_with_a_bearer_token_still_needs_the_csrf_token(hub_people: Any) -> None:
    browser = hub_people.client("operator", bearer=False)
    browser.headers["Authorization"] = "Bearer forged-by-nobody"  # cannot lift the check from the cookie
    refused = _answer(browser, [("text", "已整改")])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "E-AUTH-CSRF"


def test_an_evidence_file_larger_than_the_form_limit_passes_the_check_after_its_token(
    hub_people: Any,
) -> None:
    browser = hub_people.client("operator", bearer=False)
    token = TOKEN.search(browser.get("/portal/work/orders", headers={"Accept": "text/html"}).text)
    assert token is not None
    big = b"%PDF" + b"0" * (MAX_FORM_BYTES + 4096)
    answered = _answer(browser, [("csrf_token", token.group(1)), ("text", "已整改"), ("evidence", big)])
    assert answered.status_code == 404  # past CSRF: the route says there is no order 1
    assert answered.json()["error"]["code"] == "E-OPS-NOT-FOUND"
    forged = _answer(browser, [("text", "已整改"), ("evidence", big)])
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "E-AUTH-CSRF"
