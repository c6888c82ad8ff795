"""The validation engine shared by node (pre-validation) and hub (the official verdict)."""

from ggzy.validation.catalogue import RULES, Layer, Rule, Severity
from ggzy.validation.engine import CheckedRecord, Validator
from ggzy.validation.findings import Finding, RecordVerdict, make_finding
from ggzy.validation.lookup import InMemoryLookup, RecordLookup, StoredRecord, content_digest
from ggzy.validation.options import DealCodeCheck, ValidationOptions

__all__ = [
    "RULES",
    "CheckedRecord",
    "DealCodeCheck",
    "Finding",
    "InMemoryLookup",
    "Layer",
    "RecordLookup",
    "RecordVerdict",
    "Rule",
    "Severity",
    "StoredRecord",
    "ValidationOptions",
    "Validator",
    "content_digest",
    "make_finding",
]
