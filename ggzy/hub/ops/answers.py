"""A province's answers to a rectification order (责令限期改正), each with an optional evidence file.

The province says what it has put right and attaches the proof (a scanned notice, a screenshot, a
spreadsheet); the national side reads the answers and closes the order (:func:`close_order`). An
answer is added, never changed; a closed order takes no more answers. The file is kept in the
database with its SHA-256, size and a type chosen from its extension (never from what the browser
claimed), and is refused above ``hub.ops.evidence_max_bytes``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from ggzy.hub.models import ops_tables
from ggzy.hub.ops.periods import utc
from ggzy.hub.ops.session import OpsError, OpsSession

__all__ = ["EVIDENCE_TYPES", "Evidence", "answer_order", "answers_of", "evidence_file"]

A = ops_tables.rectification_answers
ORDERS = ops_tables.rectifications
EVIDENCE_TYPES = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".zip": "application/zip",
    ".ofd": "application/ofd",
}


@dataclass(frozen=True, slots=True)
class Evidence:
    name: str
    content: bytes


def _safe_name(name: str) -> str:
    """The file's own name, without a path, control characters or quotes; at most 255 characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r'[\x00-\x1f\x7f"<>|:*?]', "", base).strip(" .")
    return base[-255:] or "evidence"


def _order(connection: Connection, order_id: int) -> Any:
    row = connection.execute(select(ORDERS).where(ORDERS.c.id == order_id)).first()
    if row is None:
        raise OpsError("E-OPS-NOT-FOUND", f"整改通知 {order_id} 不存在", f"no order {order_id}", 404)
    return row


def answer_order(
    session: OpsSession, order_id: int, text: str, evidence: Evidence | None = None
) -> dict[str, Any]:
    """The province's answer to ``order_id``; the evidence file, if any, is checked and kept."""
    order = _order(session.connection, order_id)
    session.actor.check_province(order.province)
    if order.closed_at is not None:
        raise OpsError("E-OPS-WORKFLOW", "该整改通知已关闭，不再接受答复", "the order is closed", 409)
    if not text.strip():
        raise OpsError("E-OPS-ANSWER-TEXT", "请写明整改情况", "say what was put right")
    values: dict[str, Any] = {
        "rectification_id": order_id,
        "province": order.province,
        "answered_at": session.now(),
        "answered_by": session.actor.account,
        "text": text.strip()[:10000],
    }
    detail: dict[str, Any] = {"rectification": order_id}
    if evidence is not None:
        limit = session.settings.evidence_max_bytes
        if len(evidence.content) > limit:
            raise OpsError(
                "E-OPS-EVIDENCE-SIZE",
                f"证明材料超过 {limit / 1048576:.0f} MB，请压缩或分次提交",
                f"the evidence file is larger than {limit} bytes",
                413,
            )
        name = _safe_name(evidence.name)
        suffix = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
        if suffix not in EVIDENCE_TYPES:
            raise OpsError(
                "E-OPS-EVIDENCE-TYPE",
                f"证明材料只接受 {'、'.join(sorted(EVIDENCE_TYPES))} 文件",
                "unsupported evidence file type",
                415,
            )
        if not evidence.content:
            raise OpsError("E-OPS-EVIDENCE-EMPTY", "证明材料是空文件", "the evidence file is empty")
        digest = hashlib.sha256(evidence.content).hexdigest()
        values |= {
            "evidence_name": name,
            "evidence_type": EVIDENCE_TYPES[suffix],
            "evidence_size": len(evidence.content),
            "evidence_sha256": digest,
            "evidence": evidence.content,
        }
        detail |= {"evidence": name, "size": len(evidence.content), "sha256": digest}
    answer_id = session.connection.execute(insert(A).returning(A.c.id), values).scalar_one()
    session.changed("ops.rectification.answer", f"rectification:{order_id}", detail | {"answer": answer_id})
    return _public(session.connection.execute(select(*_COLUMNS).where(A.c.id == answer_id)).one())


_COLUMNS = [c for c in A.c if c.name != "evidence"]  # listing answers never reads the files


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "rectification_id": row.rectification_id,
        "province": row.province,
        "answered_at": utc(row.answered_at).isoformat(),
        "answered_by": row.answered_by,
        "text": row.text,
        "evidence": (
            {
                "name": row.evidence_name,
                "type": row.evidence_type,
                "size": row.evidence_size,
                "sha256": row.evidence_sha256,
            }
            if row.evidence_name
            else None
        ),
    }


def answers_of(connection: Connection, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The answers of each order, oldest first (without the files)."""
    found: dict[int, list[dict[str, Any]]] = {order_id: [] for order_id in order_ids}
    if not order_ids:
        return found
    rows = connection.execute(
        select(*_COLUMNS).where(A.c.rectification_id.in_(order_ids)).order_by(A.c.answered_at, A.c.id)
    )
    for row in rows:
        found[row.rectification_id].append(_public(row))
    return found


def evidence_file(connection: Connection, answer_id: int) -> tuple[str, str, bytes, str]:
    """(name, media type, content, province) of an answer's evidence; 404 when there is none."""
    row = connection.execute(
        select(A.c.evidence_name, A.c.evidence_type, A.c.evidence, A.c.province).where(A.c.id == answer_id)
    ).first()
    if row is None or row.evidence is None:
        raise OpsError(
            "E-OPS-NOT-FOUND", f"答复 {answer_id} 没有证明材料", f"no evidence for answer {answer_id}", 404
        )
    return row.evidence_name, row.evidence_type, bytes(row.evidence), row.province
