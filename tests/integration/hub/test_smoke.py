from __future__ import annotations

from conftest import HubFixture, province_records


def test_a_clean_batch_is_accepted_and_its_receipt_replayed(hub: HubFixture) -> None:
    records = province_records()
    receipt = hub.client.upload(2, "batch-1", records)
    assert receipt["accepted"] == len(records) and receipt["rejected"] == 0
    versions = {(r["table"], r["key"]): r["version"] for r in receipt["results"]}
    inserts = [rec for rec in records if rec["op"] == "insert"]
    assert len(versions) == len(inserts)  # updates add versions to keys, not keys
    assert all(
        r["version"] == (1 if rec["op"] == "insert" else 2)
        for r, rec in zip(receipt["results"], records, strict=True)
    )
    assert hub.client.upload(2, "batch-1", records) == receipt
