"""Documentation generated from code and data, so it cannot drift (checked by tests/unit/test_docs.py)."""
