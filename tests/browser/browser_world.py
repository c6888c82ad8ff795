"""A live hub with a simulated month, real accounts (password + TOTP) and headless Chromium.

Chromium is Debian's package (``/usr/bin/chromium``), driven by Playwright for Python; Playwright's
own browser downloads are never used. Without chromium (or without the built ECharts file) the
browser tests are skipped with the reason, except when ``GGZY_REQUIRE_BROWSER=1`` (CI), where
they fail instead.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
from portal_world import build_world

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


def launch(playwright: Any) -> Any:
    """Debian's Chromium, headless, its interface in Chinese (date and month fields as operators see them)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--lang=zh-CN"])


def chromium() -> Iterator[Any]:
    """One Chromium for a module's tests (started once: starting it costs a second or two)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def opener(browser: Any, site: Any, *, accept_dialogs: bool = False) -> Iterator[Callable[[str, str], Any]]:
    """``make(who, target)``: a page signed in as ``who`` on ``site``; every page closed afterwards."""
    pages: list[Any] = []

    def make(who: str, target: str) -> Any:
        page = open_as(browser, site, who, target)
        if accept_dialogs:
            page.on("dialog", lambda dialog: dialog.accept())  # the confirmations a person says yes to
        pages.append(page)
        return page

    yield make
    for page in pages:
        page.context.close()


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
class LiveSite:
    """A site served live: its address, its people, their sessions, the app and its data."""

    base: str
    people: dict[str, Person] = field(default_factory=dict)
    # Cookies of each person's session after the first sign-in: a TOTP code is good once per
    # 30-second step, so later tests reuse the session instead of waiting for the next code.
    sessions: dict[str, Any] = field(default_factory=dict)
    app: Any = None
    world: Any = None  # the simulated month (portal_world.World), when the site has one


LiveHub = LiveSite


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


def _accounts(service: Any) -> dict[str, Person]:
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
        people = _accounts(world.state.accounts)
        for base in serve(world.app):
            yield LiveSite(base, people, app=world.app, world=world)


def live_empty_hub(folder: Path) -> Iterator[LiveSite]:
    """A hub on a fresh, empty database (accounts only), served live."""
    from ggzy.hub.app import create_app
    from ggzy.settings import HubSettings

    app = create_app(HubSettings(db_url=f"sqlite:///{folder / 'empty.db'}", key_dir=folder / "keys"))
    people = _accounts(app.state.hub.accounts)
    try:
        for base in serve(app):
            yield LiveSite(base, people, app=app)
    finally:
        app.state.hub.engine.dispose()


def sign_in(page: object, hub: Any, who: str, target: str) -> None:
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


def open_as(browser: Any, hub: Any, who: str, target: str) -> Any:
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


def screenshot(page: object, name: str, *, quick: bool = False) -> Path:
    """The whole page as an image in ``test-artifacts/browser`` (``quick``: JPEG, cheaper to encode)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.{'jpg' if quick else 'png'}"
    options = {"type": "jpeg", "quality": 70} if quick else {}
    page.screenshot(path=str(path), full_page=True, **options)  # type: ignore[attr-defined]
    return path


def id_number(n: int) -> str:
    """A well-formed resident ID number for test person ``n`` (privileged accounts need one)."""
    import datetime as _dt
    import random as _random

    from ggzy.identifiers.id_number import make_id_number

    return make_id_number(_random.Random(n), "110105", _dt.date(1980, 1, 1) + _dt.timedelta(days=n))


# --- walking every page a role reaches from the navigation -------------------------------------

# Codes and Python/JSON literals that must never be the text a person reads (a label from the
# glossary is; the code may stay in a tooltip or a <code> element beside it).
UNTRANSLATED = re.compile(
    r"\b(None|True|False|null|active|disabled|suspended|withdrawn|success|failure|refused|sysadmin|operator|"
    r"auditor|latency|reported|handling|recovered|closed|planned|followed_up|scheduled|spot|cutover|maintenance|"
    r"relocation|realtime|insert|update|delete|critical|warning|primary|backup|held|queued|superseded|half_open|"
    r"pass|fail|equipment|software|inspector|withdraw)\b|[{}]"
)
# A time shown with an offset or as UTC: pages show Beijing wall-clock time, labelled once (footer).
NOT_BEIJING = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?\s*(Z\b|UTC\b(?!\+8)|[+-]\d{2}:\d{2})"
)
# Entries of the navigation that only redirect to a page of their own.
ALIASES = {"/portal/work": "/portal/work/outages", "/portal/admin": "/portal/admin/accounts"}
SKIPPED_LINKS = re.compile(r"/(api|static)/|\.(xlsx|csv|pdf)\b|/export|/evidence/|/auth/")


@dataclass
class Visit:
    path: str
    status: int
    problems: list[str]


def _visible_text(page: Any) -> str:
    """What a person reads: the body's text without <code> (stable codes shown beside labels)."""
    return str(
        page.evaluate(
            """() => {
                const copy = document.body.cloneNode(true);
                copy.querySelectorAll('code, script, style, datalist, template').forEach(e => e.remove());
                document.body.appendChild(copy); copy.style.display = 'block';
                const text = copy.innerText; copy.remove(); return text;
            }"""
        )
    )


class Watcher:
    """What goes wrong on a page while a person looks at it: console errors, script errors, any
    request of the site answered 4xx/5xx (a page, a script, a style, an icon)."""

    def __init__(self, page: Any, base: str) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self._note(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self._note(f"script error: {e}"))
        page.on(
            "response",
            lambda r: (
                self._note(f"HTTP {r.status} {r.url}") if r.status >= 400 and r.url.startswith(base) else None
            ),
        )

    def _note(self, problem: str) -> None:
        self.problems.append(problem)

    def take(self) -> list[str]:
        taken, self.problems = self.problems, []
        return taken


def check_page(page: Any, watcher: Watcher, base: str, path: str, name: str) -> Visit:
    """Open ``path`` and list what is wrong with it for a person; screenshot it as ``name``."""
    watcher.take()
    response = page.goto(base + path)  # waits for "load": deferred scripts (charts) have run
    status = response.status if response is not None else 0
    problems = watcher.take()
    text = _visible_text(page)
    for found in sorted({m.group(0) for m in UNTRANSLATED.finditer(text)}):
        line = next(line for line in text.splitlines() if found in line)
        problems.append(f"untranslated {found!r} in: {line.strip()[:160]}")
    for found in sorted({m.group(0) for m in NOT_BEIJING.finditer(text)}):
        problems.append(f"time not in Beijing time: {found}")
    if "页面中的时间均为北京时间" not in text:
        problems.append("the page does not say its times are Beijing time")
    screenshot(page, name, quick=True)
    return Visit(path, status, problems)


def reachable(page: Any) -> list[str]:
    """The pages the navigation, the tabs and the page's own links lead to (one of each kind)."""
    hrefs = page.evaluate(
        """() => Array.from(document.querySelectorAll('header nav a, nav.tabs a, main a'))
                  .map(a => a.getAttribute('href')).filter(h => h && h.startsWith('/portal'))"""
    )
    return [h for h in hrefs if not SKIPPED_LINKS.search(h)]


def walk(page: Any, base: str, label: str, start: str = "/portal", limit: int = 40) -> list[Visit]:
    """Every page reachable from ``start`` (navigation first), each link *kind* once: a province page
    stands for all 31, an incident page for every incident."""

    def kind(href: str) -> str:
        path, _, query = href.split("#")[0].partition("?")
        path = ALIASES.get(path, path)
        one_province = path == "/portal/assessment" and "province=" in query  # the summary's detail
        return re.sub(r"\d+", "N", path) + ("?province" if one_province else "")

    watcher = Watcher(page, base)
    visits: list[Visit] = []
    seen: set[str] = set()
    pending = [start]
    while pending and len(visits) < limit:
        path = pending.pop(0)
        if kind(path) in seen:
            continue
        seen.add(kind(path))
        slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"
        visit = check_page(page, watcher, base, path, f"{label}-{slug}")
        visit.path = page.url.removeprefix(base)  # where a redirect (/portal, /portal/work) led
        seen.add(kind(visit.path))
        visits.append(visit)
        pending += [p for p in reachable(page) if kind(p) not in seen]
    return visits
