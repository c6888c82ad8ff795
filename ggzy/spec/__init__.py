"""The national data specification (公共资源交易平台系统数据规范) as versioned data.

Node, hub and tools import the specification only through this module.
"""

from ggzy.spec._jsonschema import record_json_schema, table_json_schema
from ggzy.spec._loader import load_regions, load_spec
from ggzy.spec._model import (
    AmountGroup,
    CodeList,
    CodeListStatus,
    ConditionalRequirement,
    Domain,
    FieldSpec,
    InfoClass,
    Link,
    Privacy,
    Scope,
    Semantic,
    Spec,
    TableSpec,
    TimeOrder,
)
from ggzy.spec._notation import FieldType, Kind, parse_notation
from ggzy.spec._regions import Regions

__all__ = [
    "AmountGroup",
    "CodeList",
    "CodeListStatus",
    "ConditionalRequirement",
    "Domain",
    "FieldSpec",
    "FieldType",
    "InfoClass",
    "Kind",
    "Link",
    "Privacy",
    "Regions",
    "Scope",
    "Semantic",
    "Spec",
    "TableSpec",
    "TimeOrder",
    "load_regions",
    "load_spec",
    "parse_notation",
    "record_json_schema",
    "table_json_schema",
]
