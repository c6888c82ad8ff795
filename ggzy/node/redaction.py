"""What must not leave the province is taken out before a record is stored for sending (Art. 5).

The policy follows the specification's privacy classes (:class:`ggzy.spec.Privacy`):

- a record marked secret (涉密, envelope ``"secret": true``) never enters the queue — intake refuses
  it; this module only answers :func:`is_secret`;
- a *personal* field (ID numbers, phone numbers, bank accounts, home addresses of natural persons
  and experts) is masked or removed according to ``NodeSettings.redact_personal``:

  ========================  ==================================================================
  ID number                 first 6 + ``********`` + last 4 (``350102********1234``)
  phone, mobile             first 3 + ``****`` + last 4 (``138****5678``), each number of a list
  bank account              first 6 + ``*`` … + last 4
  address                   the leading province/city part + ``****`` (``福建省福州市****``)
  anything else             by its shape: an ID number as above, else first 3 + ``*`` … + last 4
  ========================  ==================================================================

  A value too short to keep both ends with at least four characters hidden is hidden entirely.
  ``remove`` drops an optional field and blanks a required one to ``*`` (the hub would otherwise
  refuse the record for a missing field; nothing of the value is left either way).

- a personal field that identifies a record — part of the table's business key, or a field that
  links records together (an expert's ID number joins their qualification records) — cannot be
  masked: two experts with the same birthplace and last four digits would become one record at the
  hub. It is replaced by a *pseudonym* instead, in both modes: the same length as the value, the
  first 6 and last 4 characters of a long value kept like the mask, a ``*`` (so the hub's field checks
  read it as masked) and letters from an HMAC-SM3 of the value under the node's pseudonym key. The
  same person always gets the same pseudonym on this node, different people different ones, and
  without the key nobody can tell which person it is (the 8 hidden digits of an ID number are too few
  to hide behind a plain hash). An attachment record's ``RELATE_KEY`` (the business key of the record
  it belongs to) gets the same pseudonyms in the same positions, so it still points at its record.

After redaction every personal value is checked once more with the hub's own test
(:func:`ggzy.validation.fieldcheck.looks_unmasked`); a value that still looks like an ID, mobile or
account number is hidden entirely, and a value that *still* does stops the record with
:class:`RedactionError` rather than letting it through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from ggzy.security.crypto import Digest
from ggzy.spec import FieldSpec, Privacy, Semantic, Spec, TableSpec
from ggzy.validation.fieldcheck import looks_unmasked

__all__ = [
    "Redaction",
    "RedactionError",
    "RedactionMode",
    "Redactor",
    "is_secret",
    "mask_address",
    "mask_bank_account",
    "mask_generic",
    "mask_id_number",
    "mask_phone",
    "pseudonym",
]

_MIN_HIDDEN = 4
_ID_SHAPE = re.compile(r"\d{17}[\dXx]")
# Province (省, 自治区, 特别行政区) and then prefecture (市, 自治州, 地区, 盟), each a short name with no
# digits and none of the characters that start the district or street part.
_NAME = r"[^\d\s区县旗路街道号巷弄村镇乡楼栋室]{1,8}?"
_ADDRESS_HEAD = re.compile(rf"(?:{_NAME}(?:省|自治区|特别行政区))?(?:{_NAME}(?:市|自治州|地区|盟))?")
_PHONE_SEPARATORS = re.compile(r"([;,，、/\s]+)")
_PSEUDONYM_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_RELATE_KEY = "RELATE_KEY"
_SECRET_TRUE = frozenset({"true", "1", "yes", "y", "是", "涉密"})


class RedactionMode(StrEnum):
    MASK = "mask"
    REMOVE = "remove"


class RedactionError(RuntimeError):
    """A personal value still looked unmasked after redaction; the record must not be stored."""

    code = "E-NODE-REDACTION"


# --- masks ---


def _keep_ends(value: str, head: int, tail: int) -> str:
    hidden = len(value) - head - tail
    if hidden < _MIN_HIDDEN:
        return "*" * len(value)
    return value[:head] + "*" * hidden + value[len(value) - tail :]


def mask_id_number(value: str) -> str:
    return _keep_ends(value, 6, 4)


def mask_bank_account(value: str) -> str:
    return _keep_ends(value, 6, 4)


def mask_phone(value: str) -> str:
    """Each number of a list (``;``, ``,``, ``/``, ``、``, blanks) keeps its first 3 and last 4 characters."""
    parts = _PHONE_SEPARATORS.split(value)
    return "".join(part if index % 2 else _keep_ends(part, 3, 4) for index, part in enumerate(parts))


def mask_address(value: str) -> str:
    match = _ADDRESS_HEAD.match(value)
    kept = match.group(0) if match else ""
    return kept + "****"


def mask_generic(value: str) -> str:
    if _ID_SHAPE.fullmatch(value):
        return mask_id_number(value)
    return _keep_ends(value, 3, 4)


def _mask_email(value: str) -> str:
    mailbox, at, domain = value.partition("@")
    return (mailbox[:1] + "***" + at + domain) if at else mask_generic(value)


_MASKS: dict[Semantic | None, Callable[[str], str]] = {
    Semantic.ID_NUMBER: mask_id_number,
    Semantic.PHONE: mask_phone,
    Semantic.BANK_ACCOUNT: mask_bank_account,
    Semantic.ADDRESS: mask_address,
    Semantic.EMAIL: _mask_email,
}


def pseudonym(value: str, key: bytes) -> str:
    """A keyed stand-in of the same length: stable per person, distinct between people, contains ``*``."""
    normal = value.strip().upper()
    letters = int(Digest.SM3.mac_hex(key, b"ggzy-pseudonym\x1f" + normal.encode()), 16)
    size = len(value)
    head, tail = (normal[:6], normal[-4:]) if size >= 16 else ("", "")
    body: list[str] = []
    for _ in range(max(size - len(head) - len(tail) - 1, 0)):
        letters, digit = divmod(letters, len(_PSEUDONYM_LETTERS))
        body.append(_PSEUDONYM_LETTERS[digit])
    return head + "*" + "".join(body) + tail


def is_secret(raw: Mapping[str, object], extra: Mapping[str, object] | None = None) -> bool:
    """Whether a source marked the record secret (涉密).

    The envelope's ``secret`` (``true``, or a true-looking text from CSV/XLSX where it arrives as a
    lower-case ``secret`` column inside ``data``), or a ``SECRET`` element of an XML ``TITLE``. When in
    doubt the record is secret: a false refusal costs a phone call, a leak cannot be undone.
    """
    candidates: list[object] = [raw.get("secret")]
    data = raw.get("data")
    if isinstance(data, Mapping):
        candidates.append(data.get("secret"))
    title = (extra or {}).get("title")
    if isinstance(title, Mapping):
        candidates.append(title.get("SECRET"))
    return any(
        value is True or (isinstance(value, str) and value.strip().lower() in _SECRET_TRUE)
        for value in candidates
    )


# --- the policy per table ---


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    action: str  # pseudonym | mask | remove | blank
    mask: Callable[[str], str]
    blank: str  # what a blanked required field holds


@dataclass(frozen=True, slots=True)
class Redaction:
    """The data as it may be stored, and what was done to which field."""

    data: dict[str, str]
    actions: Mapping[str, str] = field(
        default_factory=lambda: _NO_ACTIONS
    )  # field -> masked|removed|pseudonym

    @property
    def fields(self) -> list[str]:
        """Names of the fields that were changed or removed, in the table's order."""
        return list(self.actions)

    @property
    def masked(self) -> list[str]:
        return [name for name, action in self.actions.items() if action == "masked"]

    @property
    def removed(self) -> list[str]:
        return [name for name, action in self.actions.items() if action == "removed"]

    @property
    def pseudonymised(self) -> list[str]:
        return [name for name, action in self.actions.items() if action == "pseudonym"]


_NO_ACTIONS: Mapping[str, str] = MappingProxyType({})


class Redactor:
    """Applies the redaction policy to the data of one record; built once per node."""

    def __init__(
        self, spec: Spec, pseudonym_key: bytes, mode: RedactionMode | str = RedactionMode.MASK
    ) -> None:
        self.mode = RedactionMode(mode)
        self.key = pseudonym_key
        linked = _linking_fields(spec)
        self._plans: dict[str, tuple[_FieldPlan, ...]] = {}
        for table in spec.tables.values():
            plans = tuple(
                self._plan(table, spec_field, linked)
                for spec_field in table.fields
                if spec_field.privacy is Privacy.PERSONAL
            )
            if plans:
                self._plans[table.name] = plans
        # Attachment records name their record by table and business key (RELATE_DATA_NO, RELATE_KEY):
        # the key parts that are pseudonyms in that record must be the same pseudonyms here.
        self._relate: dict[str, tuple[int, int]] = {}  # DATA_NO or name -> (key size, bitmask)
        for table in spec.tables.values():
            pseudonymised = {p.name for p in self._plans.get(table.name, ()) if p.action == "pseudonym"}
            mask = sum(1 << i for i, name in enumerate(table.business_key) if name in pseudonymised)
            if mask:
                self._relate[table.data_no] = self._relate[table.name] = (len(table.business_key), mask)
        self._attachments = frozenset(t.name for t in spec.tables.values() if t.attachments)
        self._pseudonyms: dict[str, str] = {}

    def personal_fields(self, table: TableSpec) -> list[str]:
        return [plan.name for plan in self._plans.get(table.name, ())]

    def _plan(self, table: TableSpec, spec_field: FieldSpec, linked: set[tuple[str, str]]) -> _FieldPlan:
        mask = _MASKS.get(spec_field.semantic, mask_generic)
        fixed = spec_field.field_type.fixed and spec_field.field_type.length
        blank = "*" * (
            spec_field.field_type.length if fixed and spec_field.field_type.length else _MIN_HIDDEN
        )
        if spec_field.name in table.business_key or (table.name, spec_field.name) in linked:
            action = "pseudonym"
        elif self.mode is RedactionMode.MASK:
            action = "mask"
        else:
            action = "blank" if spec_field.required else "remove"
        return _FieldPlan(spec_field.name, action, mask, blank)

    def redact(self, table: TableSpec, data: dict[str, str]) -> Redaction:
        """The redacted copy of ``data`` (``data`` itself when the table has no personal fields)."""
        plans = self._plans.get(table.name)
        if plans is None and table.name not in self._attachments:
            return Redaction(data, _NO_ACTIONS)
        result = dict(data)
        actions: dict[str, str] = {}
        if table.name in self._attachments and self._relate_key(result):
            actions[_RELATE_KEY] = "pseudonym"
        for plan in plans or ():
            value = result.get(plan.name)
            if not value:
                continue
            done = self._apply(plan, value, result)
            if done:
                actions[plan.name] = done
        self._guard(table, plans or (), result)
        return Redaction(result, actions)

    def _apply(self, plan: _FieldPlan, value: str, result: dict[str, str]) -> str | None:
        """Redact one present value in ``result``; the action taken, or None when it was left alone."""
        if plan.action == "remove":
            del result[plan.name]
            return "removed"
        if plan.action == "blank":
            result[plan.name] = plan.blank
            return "removed"
        if "*" in value and looks_unmasked(value) is None:
            return None  # the source masked it already; a second mask would only lose more
        if plan.action == "pseudonym":
            result[plan.name] = self._pseudonym(value)
            return "pseudonym"
        result[plan.name] = plan.mask(value)
        return "masked"

    def _relate_key(self, data: dict[str, str]) -> bool:
        """Pseudonymise the personal parts of an attachment's RELATE_KEY; whether anything changed."""
        relate = self._relate.get(data.get("RELATE_DATA_NO") or "")
        value = data.get(_RELATE_KEY)
        if relate is None or not value:
            return False
        size, mask = relate
        parts = value.split("|")
        if len(parts) != size:
            return False
        changed = False
        for index, part in enumerate(parts):
            if mask >> index & 1 and part and not ("*" in part and looks_unmasked(part) is None):
                parts[index] = self._pseudonym(part)
                changed = True
        data[_RELATE_KEY] = "|".join(parts)
        return changed

    def _pseudonym(self, value: str) -> str:
        known = self._pseudonyms.get(value)
        if known is None:
            known = pseudonym(value, self.key)
            if len(self._pseudonyms) > 200_000:
                self._pseudonyms.clear()  # a bounded cache: experts recur, the whole province need not stay
            self._pseudonyms[value] = known
        return known

    @staticmethod
    def _guard(table: TableSpec, plans: tuple[_FieldPlan, ...], result: dict[str, str]) -> None:
        """Check every personal value with the hub's own test before the record may be stored."""
        for plan in plans:
            value = result.get(plan.name)
            if not value or looks_unmasked(value) is None:
                continue
            if plan.action != "mask":
                raise RedactionError(f"{table.name}.{plan.name} still looks unmasked after redaction")
            result[plan.name] = "*" * len(value)  # an unusual layout defeated the mask: hide it all


def _linking_fields(spec: Spec) -> set[tuple[str, str]]:
    """(table, field) pairs that join records: both ends of every parent and predecessor link."""
    linked: set[tuple[str, str]] = set()
    for table in spec.tables.values():
        for link in table.parents + table.predecessors:
            for child, parent in link.fields.items():
                linked.add((table.name, child))
                linked.add((link.table, parent))
    return linked
