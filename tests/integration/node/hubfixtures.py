"""The hub tests' fixtures (a hub on each backend) for node tests that talk to a real hub app.

The hub's ``conftest.py`` is loaded under a name of its own: a plain ``import conftest`` would find
whichever conftest pytest imported first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _hub_conftest() -> ModuleType:
    name = "ggzy_hub_test_fixtures"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "hub" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_fixtures = _hub_conftest()
hub = _fixtures.hub  # the pytest fixture: a test module imports it and asks for it by name
HubFixture = _fixtures.HubFixture
province_records = _fixtures.province_records
