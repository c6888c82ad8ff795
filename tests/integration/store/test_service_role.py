"""PostgreSQL: the service runs as a role that does not own the tables, so it cannot undo the audit
log's protection (Art. 24). Before, the services ran as the owner, which drops the trigger at will —
the first assertion shows that is still true of the owner, and why the owner only migrates.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from ggzy.cli import app as cli
from ggzy.hub.models import audit_tables
from ggzy.security.audit import AuditEntry, open_audit_log
from ggzy.settings import get_settings
from ggzy.store import make_engine
from ggzy.store.database import writing

pytestmark = pytest.mark.postgres


def _as(url: str, user: str) -> str:
    return make_url(url).set(username=user, password=None).render_as_string(hide_password=False)


@pytest.fixture
def roles(postgres_database: str) -> Iterator[tuple[str, str]]:
    """An owner role that owns the (empty) schema and a service role with no rights yet."""
    suffix = uuid.uuid4().hex[:8]
    owner, service = f"ggzy_owner_{suffix}", f"ggzy_service_{suffix}"
    admin = create_engine(postgres_database, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {owner} LOGIN"))
        connection.execute(text(f"CREATE ROLE {service} LOGIN"))
        connection.execute(text(f"ALTER SCHEMA public OWNER TO {owner}"))
    try:
        yield _as(postgres_database, owner), _as(postgres_database, service)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename IN ('{owner}', '{service}')"
                )
            )
            for role in (service, owner):
                connection.execute(text(f"DROP OWNED BY {role}"))
                connection.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_the_service_role_cannot_undo_the_audit_logs_protection(
    roles: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner_url, service_url = roles
    monkeypatch.setenv("GGZY_HUB__KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    service_name = make_url(service_url).username
    migrated = CliRunner().invoke(
        cli, ["hub", "migrate", "--db", owner_url, "--service-role", str(service_name)]
    )
    assert migrated.exit_code == 0, migrated.output

    service = make_engine(service_url)
    log = open_audit_log(audit_tables, tmp_path / "keys", get_settings().hub.audit_digest)
    try:
        with writing(service) as connection:  # the service's own work: appending goes on
            for n in range(3):
                log.append(connection, AuditEntry(action="data.read", object=f"x:{n}", outcome="success"))
        attacks = [
            "DROP TRIGGER audit_log_append_only ON audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "UPDATE audit_log SET outcome = 'success' WHERE id = 2",
            "DELETE FROM audit_log WHERE id = 3",
            "TRUNCATE audit_log",
            "DELETE FROM audit_checkpoints",
            "INSERT INTO audit_purge_permits VALUES (1); DELETE FROM audit_log",
            "DROP TABLE audit_log",
            "CREATE TABLE intruder (x int)",
        ]
        for attack in attacks:
            with pytest.raises(DBAPIError) as refused, service.begin() as connection:
                for statement in attack.split(";"):
                    connection.execute(text(statement))
            assert "permission denied" in str(refused.value) or "must be owner" in str(refused.value), attack
        with service.connect() as connection:
            assert log.verify(connection) is None
            assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar() == 3

        owner = make_engine(owner_url)
        try:  # the owner can (and it is undone here): which is why no service runs as the owner
            with owner.connect() as connection:
                undo = connection.begin()
                connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
                undo.rollback()
        finally:
            owner.dispose()
    finally:
        service.dispose()
        get_settings.cache_clear()


def test_the_hub_runs_as_the_service_role(
    roles: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_sign_in: object
) -> None:
    """Everything the hub does at run time works without owning a table: sign-in, an upload."""
    from ggzy.hub.app import create_app
    from ggzy.hub.registry import add_node
    from ggzy.protocol import HubClient
    from ggzy.security.accounts import Caller, NewAccount
    from ggzy.security.permissions import Role
    from ggzy.settings import HubSettings
    from ggzy.simulate import province_systems, simulate
    from ggzy.store.roles import grant_service_role

    owner_url, service_url = roles
    owner = make_engine(owner_url)
    try:
        from ggzy.hub.app import MIGRATIONS
        from ggzy.store.migrate import upgrade

        upgrade(owner, MIGRATIONS)
        grant_service_role(owner, str(make_url(service_url).username))
    finally:
        owner.dispose()
    app = create_app(HubSettings(db_url=service_url, key_dir=tmp_path / "keys"))
    hub = app.state.hub
    try:
        from fastapi.testclient import TestClient

        from ggzy.identifiers.id_number import make_id_number

        def id_number(n: int) -> str:
            import random

            return make_id_number(random.Random(n), "110105", dt.date(1980, 1, 1) + dt.timedelta(days=n))

        passwords = hub.accounts.bootstrap(
            NewAccount("admin", "管理员", Role.SYSADMIN, id_number=id_number(601)),
            NewAccount("audit", "审计员", Role.AUDITOR, id_number=id_number(602)),
            Caller(source="127.0.0.1"),
        )
        assert first_sign_in(hub.accounts, "audit", passwords["audit"])  # type: ignore[operator]
        with writing(hub.engine) as connection:
            node = add_node(
                connection, "fj-01", "35", platform_codes=list(province_systems("35", 7).platform_codes)
            )
        with TestClient(app) as http:
            client = HubClient(
                "http://testserver", "fj-01", bytes.fromhex(node.key), transport=http._transport
            )
            records = [s.record for s in simulate("35", seed=7, transactions=1)]
            receipt = client.upload(2, f"b-{dt.datetime.now(dt.UTC):%H%M%S%f}", records)
            assert receipt["ok"] and receipt["accepted"] >= 1
    finally:
        hub.engine.dispose()
