"""Cost of the hub's field-encryption hook per stored record, against copying the record (baseline).

    .venv/bin/python bench/fieldcrypt.py [--records 20000]

Two workloads: the simulator's records as nodes send them (personal values masked: the hook only
looks), and the same records with every personal value unmasked (each one sealed with SM4-GCM).
Prints µs per record and the ratio to ``dict(data)`` measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ggzy.security.crypto import Aead
from ggzy.security.fieldcrypt import (
    FieldEncryptor,
    encrypt_sensitive,
    install_field_encryption,
    sensitive_fields,
)
from ggzy.simulate import simulate


def _per_record(
    work: Callable[[str, dict[str, Any]], object], rows: list[tuple[str, dict[str, Any]]]
) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for table, data in rows:
            work(table, data)
        best = min(best, time.perf_counter() - started)
    return best / len(rows) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20000)
    arguments = parser.parse_args()
    rows: list[tuple[str, dict[str, Any]]] = []
    start = dt.datetime(2026, 1, 1)
    seed = 1
    while len(rows) < arguments.records:
        for item in simulate("35", seed=seed, transactions=50, start=start, days=30, category="history"):
            rows.append((item.record["table"], dict(item.record["data"])))
        seed += 1
    rows = rows[: arguments.records]
    unmasked = [
        (t, {**d, **{f: "350102199001011234" for f in sensitive_fields(t) if d.get(f)}}) for t, d in rows
    ]
    share = sum(1 for t, d in rows if any(d.get(f) for f in sensitive_fields(t))) / len(rows)
    with tempfile.TemporaryDirectory() as folder:
        install_field_encryption(FieldEncryptor.from_key_file(Path(folder) / "field.key", Aead.SM4_GCM))
        baseline = _per_record(lambda _t, d: dict(d), rows)
        masked = _per_record(encrypt_sensitive, rows)
        sealed = _per_record(encrypt_sensitive, unmasked)
    print(f"records: {len(rows)}  with personal fields: {share:.1%}")
    print(f"baseline dict copy      {baseline:8.2f} µs/record")
    print(f"hook, masked (as sent)  {masked:8.2f} µs/record  ratio {masked / baseline:6.2f}")
    print(f"hook, all unmasked      {sealed:8.2f} µs/record  ratio {sealed / baseline:6.2f}")


if __name__ == "__main__":
    main()
