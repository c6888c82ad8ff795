"""Changes to the node registry made by a person, each with its audit entry in the same transaction.

The command line (``ggzy hub node …``) and the 系统管理 page call these, so a node registered,
suspended, re-keyed or re-networked leaves the same trace whichever way it was done. A new or
rotated signing key is returned once, to be handed to the node, and never shown again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ggzy.hub.registry import NodeRecord, add_node, rotate_key, set_networks, set_status
from ggzy.security.audit import AuditActor, AuditLog

__all__ = ["Changer", "activate", "change_networks", "register", "rotate", "suspend"]


Changer = AuditActor  # who changes the registry, as the audit entry names them


def _audit(
    connection: Connection, audit: AuditLog, who: Changer, action: str, node_id: str, **detail: Any
) -> None:
    audit.append(connection, who.success(action, f"node:{node_id}", **detail))


def register(
    connection: Connection, audit: AuditLog, who: Changer, node_id: str, province: str, **options: Any
) -> NodeRecord:
    """Register a node (``options`` as :func:`~ggzy.hub.registry.add_node` takes them); the record
    carries its new signing key (show it once)."""
    node = add_node(connection, node_id, province, **options)
    _audit(connection, audit, who, "node.add", node_id, province=province, networks=list(node.networks))
    return node


def suspend(connection: Connection, audit: AuditLog, who: Changer, node_id: str) -> NodeRecord:
    node = set_status(connection, node_id, "suspended")
    _audit(connection, audit, who, "node.suspend", node_id)
    return node


def activate(connection: Connection, audit: AuditLog, who: Changer, node_id: str) -> NodeRecord:
    node = set_status(connection, node_id, "active")
    _audit(connection, audit, who, "node.activate", node_id)
    return node


def rotate(connection: Connection, audit: AuditLog, who: Changer, node_id: str) -> NodeRecord:
    """A new signing key; the old one fails at once. The record carries the new key (show it once)."""
    node = rotate_key(connection, node_id)
    _audit(connection, audit, who, "node.rotate-key", node_id)
    return node


def change_networks(
    connection: Connection, audit: AuditLog, who: Changer, node_id: str, networks: list[str]
) -> NodeRecord:
    """Replace the networks a node's requests may come from (Art. 15); before and after are audited."""
    from ggzy.hub.registry import get_node

    before = get_node(connection, node_id)
    node = set_networks(connection, node_id, networks)
    _audit(
        connection,
        audit,
        who,
        "node.networks",
        node_id,
        networks_before=list(before.networks) if before else [],
        networks_after=list(node.networks),
    )
    return node
