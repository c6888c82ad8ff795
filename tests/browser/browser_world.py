"""A live hub with a simulated month, real accounts (password + TOTP) and headless Chromium.

Chromium is Debian's package (``/usr/bin/chromium``), driven by Playwright for Python; Playwright's
own browser downloads are never used. Without chromium (or without the built ECharts file) the
browser tests are skipped with the reason, except when ``GGZY_REQUIRE_BROWSER=1`` (CI), where
they fail instead.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
import uvicorn

from ggzy.security.accounts import Caller, NewAccount
from ggzy.security.accounts.service import utc_now
from ggzy.security.permissions import Principal, Role
from ggzy.web.portal import ECHARTS

sys.path.insert(0, str(Path(__file__).parent.parent / "integration" / "portal"))
from portal_world import World, build_world

CHROMIUM = os.environ.get("GGZY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "browser"
PASSWORD = "Quiet-Lantern-58"


def browser_problem() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"chromium not found at {CHROMIUM} (apt-get install chromium)"
    if not ECHARTS.exists():
        return "ggzy/web/static/vendor/echarts.min.js is not built (run `make assets`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright for Python is not installed"
    return None


def require_browser() -> None:
    problem = browser_problem()
    if problem is None:
        return
    if os.environ.get("GGZY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{problem}; GGZY_REQUIRE_BROWSER=1 demands the browser tests", pytrace=False)
    pytest.skip(f"{problem}; browser tests skipped")


@dataclass
class Person:
    account: str
    password: str
    secret: str  # the TOTP secret enrolled at first sign-in


@dataclass
class LiveHub:
    world: World
    base: str
    people: dict[str, Person] = field(default_factory=dict)
    # Cookies of each person's session after the first sign-in: a TOTP code is good once per
    # 30-second step, so later tests reuse the session instead of waiting for the next code.
    sessions: dict[str, Any] = field(default_factory=dict)


def enrol(service: object, account: str, one_time: str) -> Person:
    """The first sign-in (new password, TOTP enrolment) done ahead, so the browser signs in as usual.

    Enrolment happens on a clock 90 s behind: the code the browser types later is then a fresh
    time step, not a replay of the enrolment's (which the service refuses).
    """
    caller = Caller(source="127.0.0.1", request_id="browser-test")
    real_clock = service.clock  # type: ignore[attr-defined]
    service.clock = lambda: utc_now() - dt.timedelta(seconds=90)  # type: ignore[attr-defined]
    try:
        started = service.sign_in(account, one_time, caller)  # type: ignore[attr-defined]
        changed = service.change_password(started.token, one_time, PASSWORD, caller)  # type: ignore[attr-defined]
        enrolment = service.begin_enrolment(changed.token)  # type: ignore[attr-defined]
        code = pyotp.TOTP(enrolment.secret).at(service.clock())  # type: ignore[attr-defined]
        done = service.confirm_enrolment(changed.token, code, caller)  # type: ignore[attr-defined]
        service.sign_out(done.token, caller)  # type: ignore[attr-defined]
    finally:
        service.clock = real_clock  # type: ignore[attr-defined]
    return Person(account, PASSWORD, enrolment.secret)


def _accounts(world: World) -> dict[str, Person]:
    service = world.state.accounts
    caller = Caller(source="127.0.0.1", request_id="browser-test")
    passwords = service.bootstrap(
        NewAccount("admin", "系统管理员甲", Role.SYSADMIN, id_number=id_number(801)),
        NewAccount("audit", "安全审计员乙", Role.AUDITOR, id_number=id_number(802)),
        caller,
    )
    admin = Principal("admin", Role.SYSADMIN)
    passwords["op"] = service.create(
        admin, NewAccount("op", "全国操作员", Role.OPERATOR, staff_number="B3"), caller
    )
    passwords["op44"] = service.create(
        admin, NewAccount("op44", "广东操作员", Role.OPERATOR, staff_number="B4", province="44"), caller
    )
    return {name: enrol(service, name, one_time) for name, one_time in passwords.items()}


def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def live_hub(folder: Path) -> Iterator[LiveHub]:
    for world in build_world(f"sqlite:///{folder / 'hub.db'}", folder / "keys", header_sign_in=False):
        people = _accounts(world)
        for base in serve(world.app):
            yield LiveHub(world, base, people)


def sign_in(page: object, hub: LiveHub, who: str, target: str) -> None:
    """Open ``target``, get sent to the sign-in page, give password and TOTP code, land on ``target``."""
    person = hub.people[who]
    page.goto(hub.base + target)  # type: ignore[attr-defined]
    page.fill("#account", person.account)  # type: ignore[attr-defined]
    page.fill("#password", person.password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#code")  # type: ignore[attr-defined]
    page.fill("#code", pyotp.TOTP(person.secret).now())  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    # Signed in after the second factor, the browser lands on the page first asked for.
    asked = hub.base + target.split("?")[0]  # the page itself may redirect further within its path
    page.wait_for_url(lambda url: url.startswith(asked) and "/auth/" not in url)  # type: ignore[attr-defined]
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]


def open_as(browser: Any, hub: LiveHub, who: str, target: str) -> Any:
    """A page of a new browser context signed in as ``who`` (really, the first time), showing ``target``."""
    options = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN", "accept_downloads": True}
    if who in hub.sessions:
        context = browser.new_context(storage_state=hub.sessions[who], **options)
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto(hub.base + target)
        return page
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sign_in(page, hub, who, target)
    hub.sessions[who] = context.storage_state()
    return page


def screenshot(page: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def id_number(n: int) -> str:
    """A well-formed resident ID number for test person ``n`` (privileged accounts need one)."""
    import datetime as _dt
    import random as _random

    from ggzy.identifiers.id_number import make_id_number

    return make_id_number(_random.Random(n), "110105", _dt.date(1980, 1, 1) + _dt.timedelta(days=n))
