"""The registry of provincial nodes and their credentials."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ggzy.hub.models import nodes
from ggzy.security.signing import SignatureAlgorithm
from ggzy.spec import load_regions

__all__ = [
    "NodeRecord",
    "RegistryError",
    "add_node",
    "get_node",
    "list_nodes",
    "rotate_key",
    "set_networks",
    "set_status",
]


class RegistryError(ValueError):
    def __init__(self, code: str, message_zh: str) -> None:
        super().__init__(message_zh)
        self.code = code
        self.message_zh = message_zh


@dataclass(frozen=True, slots=True)
class NodeRecord:
    node_id: str
    name: str
    province: str
    platform_codes: tuple[str, ...]
    networks: tuple[str, ...]
    key: str
    algorithm: SignatureAlgorithm
    status: str
    created_at: dt.datetime
    key_rotated_at: dt.datetime

    @property
    def active(self) -> bool:
        return self.status == "active"

    def allows(self, address: str) -> bool:
        """Whether a request from ``address`` may come from this node (no networks: any address)."""
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.networks)


def _record(row: Any) -> NodeRecord:
    return NodeRecord(
        node_id=row.node_id,
        name=row.name,
        province=row.province,
        platform_codes=tuple(row.platform_codes),
        networks=tuple(row.networks),
        key=row.key,
        algorithm=SignatureAlgorithm(row.algorithm),
        status=row.status,
        created_at=row.created_at,
        key_rotated_at=row.key_rotated_at,
    )


def get_node(connection: Connection, node_id: str) -> NodeRecord | None:
    row = connection.execute(select(nodes).where(nodes.c.node_id == node_id)).first()
    return _record(row) if row else None


def list_nodes(connection: Connection) -> list[NodeRecord]:
    return [
        _record(row) for row in connection.execute(select(nodes).order_by(nodes.c.province, nodes.c.node_id))
    ]


def add_node(
    connection: Connection,
    node_id: str,
    province: str,
    *,
    name: str = "",
    platform_codes: list[str] | None = None,
    networks: list[str] | None = None,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.HMAC_SHA256,
    key: str | None = None,
) -> NodeRecord:
    from ggzy.identifiers import is_valid_uscc

    if not node_id or len(node_id) > 64 or not all(c.isalnum() or c in "-_." for c in node_id):
        raise RegistryError("E-NODE-ID", f"节点编号“{node_id}”只能由字母、数字和 - _ . 组成，最长64位")
    if province not in load_regions().provinces():
        raise RegistryError("E-NODE-PROVINCE", f"省份代码“{province}”不是GB/T 2260的省级代码前两位")
    for code in platform_codes or []:
        if not is_valid_uscc(code):
            raise RegistryError("E-NODE-PLATFORM", f"交易系统标识码“{code}”不是有效的统一社会信用代码")
    networks = _networks(networks or [])
    if get_node(connection, node_id) is not None:
        raise RegistryError("E-NODE-EXISTS", f"节点“{node_id}”已存在")
    now = dt.datetime.now(dt.UTC)
    connection.execute(
        insert(nodes),
        {
            "node_id": node_id,
            "name": name,
            "province": province,
            "platform_codes": list(platform_codes or []),
            "networks": list(networks or []),
            "key": key or secrets.token_hex(32),
            "algorithm": algorithm.value,
            "status": "active",
            "created_at": now,
            "key_rotated_at": now,
        },
    )
    record = get_node(connection, node_id)
    assert record is not None
    return record


def _require(connection: Connection, node_id: str) -> NodeRecord:
    record = get_node(connection, node_id)
    if record is None:
        raise RegistryError("E-NODE-UNKNOWN", f"节点“{node_id}”不存在")
    return record


def set_status(connection: Connection, node_id: str, status: str) -> NodeRecord:
    _require(connection, node_id)
    connection.execute(update(nodes).where(nodes.c.node_id == node_id).values(status=status))
    return _require(connection, node_id)


def rotate_key(connection: Connection, node_id: str) -> NodeRecord:
    _require(connection, node_id)
    connection.execute(
        update(nodes)
        .where(nodes.c.node_id == node_id)
        .values(key=secrets.token_hex(32), key_rotated_at=dt.datetime.now(dt.UTC))
    )
    return _require(connection, node_id)


def set_networks(connection: Connection, node_id: str, networks: list[str]) -> NodeRecord:
    """Replace the source networks a node's requests may come from (none: any address)."""
    _require(connection, node_id)
    normal = _networks(networks)
    connection.execute(update(nodes).where(nodes.c.node_id == node_id).values(networks=normal))
    return _require(connection, node_id)


def _networks(networks: list[str]) -> list[str]:
    """Valid CIDR networks in their normal spelling (10.35.1.9/16 → 10.35.0.0/16), each once."""
    normal: list[str] = []
    for net in networks:
        try:
            text = str(ipaddress.ip_network(net.strip(), strict=False))
        except ValueError as exc:
            raise RegistryError("E-NODE-NETWORK", f"网段“{net}”不是有效的CIDR") from exc
        if text not in normal:
            normal.append(text)
    return normal
