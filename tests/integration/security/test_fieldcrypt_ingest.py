"""The hub's ingest stores unmasked personal values sealed (SQLite and PostgreSQL). Removing the
``encrypt_sensitive`` call in ``ggzy.hub.ingest`` makes this test fail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import select

from ggzy.hub.app import build_state
from ggzy.hub.ingest import NodeIdentity, ingest_batch
from ggzy.hub.models import records
from ggzy.hub.registry import add_node
from ggzy.security.fieldcrypt import PREFIX, decrypt_sensitive
from ggzy.settings import HubSettings
from ggzy.simulate import province_systems, simulate
from ggzy.store.database import writing
from ggzy.validation import ValidationOptions, Validator


def test_unmasked_phone_numbers_are_stored_sealed(hub_db_url: str, tmp_path: Path) -> None:
    state = build_state(HubSettings(db_url=hub_db_url, key_dir=tmp_path / "keys"))
    # A hub configured not to refuse unmasked personal data must still not store it in clear.
    state.validator = Validator(options=ValidationOptions(check_personal=False))
    with writing(state.engine) as connection:
        node = add_node(
            connection, "fj-01", "35", platform_codes=list(province_systems("35", 1).platform_codes)
        )
    start = dt.datetime(2026, 1, 1)
    batch = [
        i.record for i in simulate("35", seed=1, transactions=3, start=start, days=20, category="history")
    ]
    experts = [r for r in batch if r["table"] == "EXPERT_BID_EVALUATION"]
    assert experts
    for record in experts:
        record["data"]["PHONE_NUMBER"] = "13812345678"
    identity = NodeIdentity(node.node_id, "35", frozenset(node.platform_codes))
    receipt = ingest_batch(state.engine, state.validator, state.audit, identity, 2, "b1", batch, "d1").receipt
    assert receipt["accepted"] == len(batch), receipt
    with state.engine.connect() as connection:
        stored = (
            connection.execute(select(records.c.data).where(records.c.table_name == "EXPERT_BID_EVALUATION"))
            .scalars()
            .all()
        )
    state.engine.dispose()
    assert stored and all(d["PHONE_NUMBER"].startswith(PREFIX) for d in stored)
    assert all("13812345678" not in str(d) for d in stored)
    assert all(decrypt_sensitive("EXPERT_BID_EVALUATION", d)["PHONE_NUMBER"] == "13812345678" for d in stored)
    assert all("*" in d["ID_CARD"] for d in stored)  # masked values stay readable
