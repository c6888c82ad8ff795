"""Reading and writing records in the interchange format (JSON Lines, CSV, XLSX, provincial XML)."""

from ggzy.interchange.record import Category, Op, SourceItem

__all__ = ["Category", "Op", "SourceItem"]
