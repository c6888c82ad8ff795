"""Validation throughput: ggzy's engine against the same field rules as JSON Schema, in one run.

    .venv/bin/python bench/validate.py [--records 200000] [--jsonschema-sample 20000]

Prints records/s for each contender and the ratio to fastjsonschema (the baseline): machines are
noisy, ratios measured in the same run are what to compare across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema

from ggzy.simulate import simulate
from ggzy.spec import load_spec, table_json_schema
from ggzy.validation import ValidationOptions, Validator

CACHE = Path(__file__).parent / ".cache"


def sample_records(count: int) -> list[dict[str, Any]]:
    """``count`` simulated records (5% with defects), cached on disk between runs."""
    path = CACHE / f"records-{count}.jsonl"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        start = dt.datetime(2026, 10, 1, 8, 0)
        with path.open("w", encoding="utf-8") as out:
            written = 0
            transactions = max(count // 12, 1)
            while written < count:
                for item in simulate(
                    "35", seed=written, transactions=transactions, start=start, error_rate=0.05
                ):
                    out.write(json.dumps(item.record, ensure_ascii=False) + "\n")
                    written += 1
                    if written == count:
                        break
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def rate(
    label: str, records: Sequence[dict[str, Any]], run: Callable[[Sequence[dict[str, Any]]], int]
) -> float:
    gc.collect()
    started = time.perf_counter()
    checked = run(records)
    elapsed = time.perf_counter() - started
    per_second = checked / elapsed
    print(f"  {label:<58} {per_second:>10,.0f} records/s  ({checked:,} in {elapsed:.2f} s)")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--jsonschema-sample", type=int, default=20_000)
    args = parser.parse_args()

    spec = load_spec()
    records = sample_records(args.records)
    print(f"{len(records):,} simulated records, {len(spec.tables)} tables, one process\n")

    schemas = {name: table_json_schema(spec, table) for name, table in spec.tables.items()}
    fast = {name: fastjsonschema.compile(schema) for name, schema in schemas.items()}
    slow = {name: jsonschema.Draft202012Validator(schema) for name, schema in schemas.items()}
    table_of = {r["table"]: (spec.table(r["table"]) or spec.tables["PROJECT"]).name for r in records}

    def run_fast(rs: Sequence[dict[str, Any]]) -> int:
        for r in rs:
            with contextlib.suppress(fastjsonschema.JsonSchemaException):
                fast[table_of[r["table"]]](r["data"])
        return len(rs)

    def run_jsonschema(rs: Sequence[dict[str, Any]]) -> int:
        for r in rs:
            for _ in slow[table_of[r["table"]]].iter_errors(r["data"]):
                pass
        return len(rs)

    full = Validator(spec)
    fields_only = Validator(spec, ValidationOptions(cross_record=False))
    compiled = full.compiled_checks()

    def run_field_layer(rs: Sequence[dict[str, Any]]) -> int:
        # The layer that corresponds to the JSON Schema: required items, type, length, number and
        # date shape, code lists, plus the identifier checks JSON Schema cannot express.
        for r in rs:
            compiled[table_of[r["table"]]](r["data"])
        return len(rs)

    def run_full(rs: Sequence[dict[str, Any]]) -> int:
        return sum(1 for _ in full.validate_records(rs))

    def run_fields(rs: Sequence[dict[str, Any]]) -> int:
        return sum(1 for _ in fields_only.validate_records(rs))

    baseline = rate("fastjsonschema (field rules, stops at first error)", records, run_fast)
    sample = records[: args.jsonschema_sample]
    slow_rate = rate(f"jsonschema iter_errors (field rules, {len(sample):,} sample)", sample, run_jsonschema)
    ours_layer = rate("ggzy field layer (same rules + USCC/ID/region/deal code)", records, run_field_layer)
    ours_fields = rate("ggzy, structure + field + cross-field rules, verdicts", records, run_fields)
    ours_full = rate("ggzy, every rule incl. cross-record, duplicates, privacy", records, run_full)

    print("\nratio to fastjsonschema (higher is better):")
    print(f"  jsonschema                            {slow_rate / baseline:5.2f}x")
    print(f"  ggzy field layer (like for like)      {ours_layer / baseline:5.2f}x")
    print(f"  ggzy without cross-record rules       {ours_fields / baseline:5.2f}x")
    print(f"  ggzy with every rule                  {ours_full / baseline:5.2f}x")
    print(f"\ngoal: ≥ 30,000 records/s with every rule — {'met' if ours_full >= 30_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
