"""The folders are the architecture: arrows between them run one way (docs/architecture.md, "Parts").

The node and the hub are two deployables that meet only over the protocol; the shared library under
them knows neither; the command line is the one place that composes them. Every ``import`` and
``from … import`` in the package is read, including those inside functions and ``TYPE_CHECKING``
blocks, since a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ggzy

PACKAGE = Path(ggzy.__file__).parent

# layer -> the layers it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "ggzy.node": ("ggzy.hub", "ggzy.cli"),
    "ggzy.hub": ("ggzy.node", "ggzy.cli"),
    **{
        f"ggzy.{shared}": ("ggzy.hub", "ggzy.node", "ggzy.cli")
        for shared in (
            "spec",
            "validation",
            "identifiers",
            "interchange",
            "protocol",
            "security",
            "store",
            "backup",
            "web",
            "simulate",
        )
    },
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def module_of(path: Path) -> str:
    return ".".join(("ggzy", *path.relative_to(PACKAGE).with_suffix("").parts))


def within(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def violations() -> list[str]:
    found: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_of(path)
        for layer, forbidden in FORBIDDEN.items():
            if not within(module, layer):
                continue
            for line, imported in imports_of(path):
                if any(within(imported, other) for other in forbidden):
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({layer}) imports {imported}")
    return found


def test_layers_import_only_downwards() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "layer"),
    [("from ggzy.hub import models\n", "ggzy.backup"), ("import ggzy.node.outbox\n", "ggzy.hub")],
)
def test_the_check_sees_a_forbidden_import(tmp_path: Path, source: str, layer: str) -> None:
    """The check itself can fail: a planted import is reported."""
    path = tmp_path / "planted.py"
    path.write_text(source, encoding="utf-8")
    imported = imports_of(path)[0][1]
    assert any(within(imported, other) for other in FORBIDDEN[layer])
