"""Everything a node's parts share, built once from the settings: store, outbox, validator, hub client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import Engine

from ggzy.node.link_control import GatedTransport
from ggzy.node.models import audit_tables
from ggzy.node.outbox import Outbox
from ggzy.protocol import HubClient
from ggzy.security.audit import AuditLog, open_audit_log
from ggzy.security.crypto import Digest
from ggzy.security.signing import SignatureAlgorithm
from ggzy.settings import NodeSettings
from ggzy.spec import Spec, load_spec
from ggzy.store import check_durability, make_engine
from ggzy.store.migrate import upgrade
from ggzy.validation import ValidationOptions, Validator

__all__ = ["MIGRATIONS", "NodeContext", "build_context", "read_node_key"]

MIGRATIONS = Path(__file__).parent / "migrations"


def read_node_key(path: Path) -> bytes:
    """The signing key the hub issued (``ggzy hub node add`` prints it), stored as hex in a file."""
    text = path.read_text(encoding="ascii").strip()
    return bytes.fromhex(text)


@dataclass
class NodeContext:
    settings: NodeSettings
    engine: Engine
    spec: Spec
    outbox: Outbox
    validator: Validator  # pre-validation: field and cross-field rules (the hub holds the history)
    audit: AuditLog
    key: bytes

    def hub_client(self, **options: object) -> HubClient:
        """A signed client whose requests an emergency drill can cut (``ggzy.node.link_control``)."""
        if "transport" not in options:
            inner = httpx.HTTPTransport(verify=options.pop("verify", True), cert=options.pop("cert", None))  # type: ignore[arg-type]
            options["transport"] = GatedTransport(inner, self.engine)
        return HubClient(
            self.settings.hub_url,
            self.settings.node_id,
            self.key,
            algorithm=SignatureAlgorithm(self.settings.algorithm),
            **options,  # type: ignore[arg-type]
        )


def build_context(settings: NodeSettings, *, key: bytes | None = None) -> NodeContext:
    engine = make_engine(settings.db_url)
    check_durability(engine)
    upgrade(engine, MIGRATIONS)
    spec = load_spec()
    return NodeContext(
        settings=settings,
        engine=engine,
        spec=spec,
        outbox=Outbox(engine, spec),
        validator=Validator(spec, ValidationOptions(cross_record=False)),
        audit=open_audit_log(audit_tables, settings.key_file.parent, Digest.SM3),
        key=key if key is not None else read_node_key(settings.key_file),
    )
