"""Two PostgreSQL roles: the owner of the tables, who migrates, and the service role, which runs.

The owner of a table can drop or disable its triggers, so a service running as the owner could
silence the audit log's append-only trigger. In production the schema belongs to an owner role used
only by ``ggzy hub migrate`` (and ``ggzy node migrate``); the services connect as a role that holds
just the rights the work needs:

- every table of the schema: SELECT, INSERT, UPDATE, DELETE (no TRUNCATE, no DDL, no ownership);
- the audit tables (``audit_log``, ``audit_checkpoints``, ``audit_archives``): SELECT and INSERT only,
  so not even a statement the trigger would let through can change or remove an entry; the archive
  (``ggzy audit archive``) therefore runs with the owner's connection;
- sequences: USAGE and SELECT.

:func:`grant_service_role` is run by the migrate commands after every upgrade (``--service-role``),
so tables added by later migrations are covered too. SQLite has no roles: nothing to do there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import Engine, text

__all__ = ["APPEND_ONLY_TABLES", "RoleError", "grant_service_role"]

APPEND_ONLY_TABLES = ("audit_log", "audit_checkpoints", "audit_archives")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RoleError(ValueError):
    """A role name that is not a plain PostgreSQL identifier."""


def grant_service_role(
    engine: Engine, role: str, *, append_only: Sequence[str] = APPEND_ONLY_TABLES, schema: str = "public"
) -> list[str]:
    """Give ``role`` the service's rights on every table in ``schema`` (run as the owner); the
    statements run. Returns [] on SQLite."""
    if engine.dialect.name != "postgresql":
        return []
    for name in (role, schema, *append_only):
        if not _NAME.match(name):
            raise RoleError(f"E-DB-ROLE-NAME 不是合法的角色或表名：{name!r}")
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
        f"REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    ]
    with engine.begin() as connection:
        present = set(
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"), {"schema": schema}
            ).scalars()
        )
        statements += [
            f"REVOKE UPDATE, DELETE ON {schema}.{table} FROM {role}"
            for table in append_only
            if table in present
        ]
        for statement in statements:
            connection.execute(text(statement))
    return statements
