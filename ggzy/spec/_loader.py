"""Load the specification from the YAML files shipped inside the package."""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import Any

import yaml

from ggzy.spec._model import CodeList, Spec, TableSpec
from ggzy.spec._regions import Regions

__all__ = ["load_regions", "load_spec"]

_DATA = "ggzy.spec"


def _data_dir() -> Traversable:
    return resources.files(_DATA).joinpath("data")


# libyaml parses the spec ten times faster than PyYAML's own parser (every process start reads it);
# both construct the same safe types, and a test holds them equal on every shipped file.
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Traversable) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)


def _yaml_files(folder: Traversable) -> list[Traversable]:
    return sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)


@cache
def load_spec() -> Spec:
    """The specification shipped with this release; adding a table is adding a YAML file."""
    root = _data_dir()
    meta = _read_yaml(root.joinpath("spec.yaml"))
    tables = [TableSpec.model_validate(_read_yaml(p)) for p in _yaml_files(root.joinpath("tables"))]
    codelists = [CodeList.model_validate(_read_yaml(p)) for p in _yaml_files(root.joinpath("codelists"))]
    return Spec(
        version=str(meta["version"]),
        accepted_versions=[str(v) for v in meta["accepted_versions"]],
        tables={t.name: t for t in tables},
        codelists={c.name: c for c in codelists},
    )


@cache
def load_regions() -> Regions:
    """GB/T 2260 provinces and prefecture-level divisions."""
    return Regions.from_mapping(_read_yaml(_data_dir().joinpath("regions.yaml")))
