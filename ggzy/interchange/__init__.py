"""Reading and writing records in the interchange format (JSON Lines, CSV, XLSX, provincial XML)."""

from ggzy.interchange.encoding import decode_bytes, decode_xml_bytes
from ggzy.interchange.errors import InputEncodingError, InputError, InputFormatError, InputTooLargeError
from ggzy.interchange.readers import (
    ENVELOPE_COLUMNS,
    read_csv,
    read_jsonl,
    read_path,
    read_xlsx,
    read_xml,
    write_csv,
    write_jsonl,
    write_xml,
)
from ggzy.interchange.record import Category, Op, SourceItem

__all__ = [
    "ENVELOPE_COLUMNS",
    "Category",
    "InputEncodingError",
    "InputError",
    "InputFormatError",
    "InputTooLargeError",
    "Op",
    "SourceItem",
    "decode_bytes",
    "decode_xml_bytes",
    "read_csv",
    "read_jsonl",
    "read_path",
    "read_xlsx",
    "read_xml",
    "write_csv",
    "write_jsonl",
    "write_xml",
]
