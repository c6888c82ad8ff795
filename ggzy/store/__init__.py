"""Storage layer: database engines with checked durability, and migrations."""

from ggzy.store.database import DurabilityError, check_durability, make_engine, redact_url

__all__ = ["DurabilityError", "check_durability", "make_engine", "redact_url"]
