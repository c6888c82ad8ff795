"""Reading a submitted form the way a person filled it in: Chinese messages per field, Beijing times.

A page's POST route reads its fields through a :class:`FormReader`; each reader method returns the
value, or records a message against the field and returns a placeholder, so one submission reports
every mistake at once. :meth:`FormReader.done` then raises :class:`FormInvalid` if anything was
wrong; the route shows the form again with the messages beside the fields and the values kept.

Only the shape of the input is checked here (present, a number, a date, one of the choices). Rules
of the business (lead times, workflows, who may do what) stay in the service functions the routes
call, which answer with their own coded errors, shown at the top of the form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData, UploadFile

__all__ = ["BEIJING", "FormInvalid", "FormReader"]

BEIJING = dt.timezone(dt.timedelta(hours=8))


class FormInvalid(Exception):
    """Fields a person must correct: field name → Chinese message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class FormReader:
    def __init__(self, form: FormData | Mapping[str, Any]) -> None:
        self.form = form
        self.errors: dict[str, str] = {}

    def values(self) -> dict[str, str]:
        """What was submitted (text fields only), to fill the form again after a mistake."""
        return {k: v for k, v in self.form.items() if isinstance(v, str) and k != "csrf_token"}

    def _raw(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def _given(self, name: str, label: str, required: bool) -> str | None:
        """The field's text, or None when empty (noted if it was required)."""
        value = self._raw(name)
        if value:
            return value
        if required:
            self.fail(name, f"请填写{label}")
        return None

    def text(self, name: str, label: str, *, required: bool = False, max_length: int = 2000) -> str:
        value = self._given(name, label, required) or ""
        if len(value) > max_length:
            self.fail(name, f"{label}不能超过 {max_length} 个字")
        return value[:max_length]

    def lines(self, name: str, label: str, *, max_items: int = 200) -> list[str]:
        """One item per line (or separated by commas/、), blanks dropped."""
        raw = self._raw(name).replace("、", "\n").replace(",", "\n").replace("，", "\n")
        items = [item.strip() for item in raw.splitlines() if item.strip()]
        if len(items) > max_items:
            self.fail(name, f"{label}最多 {max_items} 项")
        return items[:max_items]

    def choice(self, name: str, label: str, choices: Mapping[str, str], *, required: bool = True) -> str:
        value = self._raw(name)
        if not value:
            if required:
                self.fail(name, f"请选择{label}")
            return ""
        if value not in choices:
            self.fail(name, f"{label}的选项无效")
            return ""
        return value

    def integer(
        self, name: str, label: str, *, required: bool = False, minimum: int = 0, maximum: int = 10**9
    ) -> int | None:
        value = self._given(name, label, required)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            self.fail(name, f"{label}应为整数")
            return None
        if not minimum <= number <= maximum:
            self.fail(name, f"{label}应在 {minimum} 到 {maximum} 之间")
            return None
        return number

    def number(self, name: str, label: str, *, minimum: float = 0.0) -> float | None:
        value = self._given(name, label, False)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            self.fail(name, f"{label}应为数字")
            return None
        if number < minimum or number != number:
            self.fail(name, f"{label}不能小于 {minimum:g}")
            return None
        return number

    def date(self, name: str, label: str, *, required: bool = False) -> dt.date | None:
        value = self._given(name, label, required)
        if value is None:
            return None
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(name, f"{label}应为日期（年-月-日）")
            return None

    def moment(self, name: str, label: str, *, required: bool = False) -> dt.datetime | None:
        """A ``datetime-local`` field, read as Beijing wall-clock time; returned in UTC."""
        value = self._given(name, label, required)
        if value is None:
            return None
        try:
            local = dt.datetime.fromisoformat(value)
        except ValueError:
            self.fail(name, f"{label}应为日期和时间（北京时间）")
            return None
        if local.tzinfo is None:
            local = local.replace(tzinfo=BEIJING)
        return local.astimezone(dt.UTC)

    def upload(self, name: str) -> UploadFile | None:
        value = self.form.get(name)
        if isinstance(value, UploadFile) and value.filename:
            return value
        return None

    def done(self) -> None:
        if self.errors:
            raise FormInvalid(self.errors)


def local_input(moment: dt.datetime | str | None) -> str:
    """A stored time as the value of a ``datetime-local`` field (Beijing time, to the minute)."""
    if not moment:
        return ""
    value = moment if isinstance(moment, dt.datetime) else dt.datetime.fromisoformat(moment)
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return value.astimezone(BEIJING).strftime("%Y-%m-%dT%H:%M")
