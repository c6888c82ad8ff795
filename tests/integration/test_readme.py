"""README.md's commands, run as written, in order, in a fresh directory: the README cannot rot.

Every ```` ```sh ```` block runs with ``bash -e`` in one new directory that holds only a link to
the checkout's ``.venv`` and an empty home (so ``~/.config/ggzy/session.json`` is new too), with no
``GGZY_*`` variable but the test suite's cheap password hashing. The placeholders the README names
are replaced (its hub database by SQLite, its hub address by one where nothing listens). A block
preceded by ``<!-- readme-test: skip — reason -->`` is not run; every other block must exit 0.

A skipped ``ggzy login -u NAME --config FILE`` block is a person typing a password and a TOTP code.
The test stands in for that person with the same service calls ``ggzy login`` makes — the
one-time password the README's own ``admin bootstrap`` / ``admin account add`` printed, a new
password, the TOTP enrolment, later the TOTP code — and saves the session where ``ggzy login`` does.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
README = ROOT / "README.md"
SKIP = re.compile(r"<!-- readme-test: skip — (?P<reason>.+?) -->")
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```sh\n(?P<body>.*?)```", re.S)
PLACEHOLDERS = {
    "postgresql+psycopg://ggzy@db.example/ggzy": "sqlite:///var/hub.db",
    "https://hub.example:8600": "http://127.0.0.1:9",  # nothing listens: no runnable block needs the hub
}
PASSWORD = "Quiet-Lantern-58"
KEEP = ("GGZY_SECURITY__ARGON2_TIME_COST", "GGZY_SECURITY__ARGON2_MEMORY_KIB")  # the suite's hashing cost


@dataclass
class Block:
    line: int
    body: str
    skip: str | None  # the reason, when marked


def blocks(text: str) -> list[Block]:
    found = []
    for match in BLOCK.finditer(text):
        marker = SKIP.search(match.group("before"))
        line = text.count("\n", 0, match.start("body"))
        found.append(Block(line, match.group("body"), marker.group("reason") if marker else None))
    return found


@dataclass
class People:
    """What the README's commands printed (one-time passwords) and who has enrolled (TOTP secrets)."""

    one_time: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    sign_ins: int = 0

    def read(self, output: str) -> None:
        for account, password in re.findall(r"^\s+([a-z0-9._-]+)\s+(\S{12,})$", output, re.M):
            self.one_time[account] = password  # admin bootstrap: "  zhangsan  <password>"
        for account, password in re.findall(r"已创建账号 ([a-z0-9._-]+)（[^）]*）。[^\n]*\n(\S+)", output):
            self.one_time[account] = password  # admin account add: the password on the next line

    def sign_in(self, account: str, config: Path, session_file: Path) -> None:
        """``ggzy login -u account --config config``, as the person would answer its prompts."""
        from ggzy.cli.session import SessionFile, cli_caller, target_for
        from ggzy.security.accounts.service import utc_now

        target = target_for(config=config)
        service, caller = target.service, cli_caller()
        # each sign-in on its own 30-second step: a TOTP code is accepted once
        self.sign_ins += 1
        service.clock = lambda: utc_now() + dt.timedelta(seconds=30 * self.sign_ins)
        try:
            # every step of the sign-in renews the session's token: the last one is the session
            if account not in self.secrets:
                started = service.sign_in(account, self.one_time[account], caller, kind="cli")
                assert started.stage == "password", started.stage
                changed = service.change_password(started.token, self.one_time[account], PASSWORD, caller)
                enrolment = service.begin_enrolment(changed.token)
                self.secrets[account] = enrolment.secret
                code = pyotp.TOTP(enrolment.secret).at(service.clock())
                done = service.confirm_enrolment(changed.token, code, caller)
            else:
                started = service.sign_in(account, PASSWORD, caller, kind="cli")
                code = pyotp.TOTP(self.secrets[account]).at(service.clock())
                done = service.verify_totp(started.token, code, caller)
            assert done.stage == "full", done.stage
            SessionFile(session_file).save(target.name, done.token, account)
        finally:
            target.engine.dispose()


@pytest.fixture
def fresh_settings() -> object:
    """The stand-in reads the README's settings files in this process: forget them afterwards."""
    from ggzy.settings import get_settings

    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_readme_commands_run_in_order_in_a_fresh_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = README.read_text(encoding="utf-8")
    found = blocks(text)
    assert len(found) >= 15 and sum(b.skip is None for b in found) >= 8
    assert all(b.skip.strip() for b in found if b.skip is not None)  # every skip says why

    work = tmp_path / "fresh"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGZY_") or k in KEEP}
    env |= {"HOME": str(home), "COLUMNS": "120", "LANG": "C.UTF-8"}
    session_file = home / ".config" / "ggzy" / "session.json"
    # the stand-in signs people in from this process: the same settings and session file as the commands
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for name in [n for n in os.environ if n.startswith("GGZY_") and n not in KEEP]:
        monkeypatch.delenv(name)  # what another test left behind must not point the stand-in elsewhere
    people = People()
    ran = 0
    for block in found:
        body = block.body
        for placeholder, value in PLACEHOLDERS.items():
            body = body.replace(placeholder, value)
        if block.skip is not None:
            login = re.search(r"ggzy login -u (\S+) --config (\S+)", body)
            if login:
                people.sign_in(login.group(1), work / login.group(2), session_file)
            continue
        started = time.monotonic()
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", body],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, (
            f"README.md line {block.line}: exit {result.returncode}\n{body}\n{output}"
        )
        people.read(result.stdout)
        print(f"README.md line {block.line}: {time.monotonic() - started:.1f} s")
        ran += 1
    assert ran >= 8
    assert (work / "fixed.xlsx").is_file() and (
        work / "校验报告.xlsx"
    ).is_file()  # what the README says it writes
    assert len((work / "var" / "node" / "node.key").read_text(encoding="ascii").strip()) == 64
    # a folder is named with its slash: git decides "var/" by the path, whether or not this checkout has one
    written = [p.name + ("/" if p.is_dir() else "") for p in work.iterdir() if p.name != ".venv"]
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "-c", "core.quotePath=false", "check-ignore", "--no-index", *written],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert sorted(ignored) == sorted(written)  # what the README writes into a checkout, git ignores
