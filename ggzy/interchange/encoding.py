"""Turning input bytes into text: UTF-8 (with or without BOM) or GB18030/GBK, nothing else.

Provincial systems still export GBK (often without saying so), so a file that is not UTF-8 gets a
second chance as GB18030 — a superset of GBK and GB2312. GB18030 is so permissive that almost any
byte soup "decodes", so the result is accepted only when it looks like real Chinese text; anything
else is refused with the byte offset of the first byte that is not UTF-8, which is where a person
looking at the file in a hex viewer should start.
"""

from __future__ import annotations

import re

from ggzy.interchange.errors import InputEncodingError

__all__ = ["ChineseTextCheck", "declared_xml_codec", "decode_bytes", "decode_xml_bytes"]

_UTF8_BOM = b"\xef\xbb\xbf"

# Real Chinese text is overwhelmingly made of GB2312 characters (the 6,763 common hanzi plus
# full-width punctuation). Latin-1 or binary junk read as GB18030 instead lands mostly on rare
# GBK-extension ideographs (an accented letter followed by an ASCII byte) or fails outright.
_MIN_CHINESE_SHARE = 0.6
_ASCII = re.compile(r"[\x00-\x7f]+")
# Control characters other than tab/newline/carriage return/form feed do not occur in text exports;
# finding one in a GB18030 reading is strong evidence of binary data.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# CJK ideographs, CJK symbols/punctuation, full-width forms, general punctuation (“”…—) and the
# middle dot used in transliterated names; GB2312 membership is checked separately.
_CHINESE_LIKE = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2010-\u206f\u00b7]")

# The XML prolog may only appear at the very start (after an optional BOM). Only the encodings
# Chinese platforms actually use are honoured; GBK and GB2312 are decoded as their superset.
_XML_DECLARATION = re.compile(
    rb"\A(?:\xef\xbb\xbf)?[ \t\r\n]*<\?xml\b[^>]*?\bencoding[ \t\r\n]*=[ \t\r\n]*([\"'])([A-Za-z0-9._-]*)\1"
)
_DECLARED_CODECS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "cp936": "gb18030",
}


def decode_bytes(data: bytes, *, source: str) -> str:
    """Decode ``data`` as UTF-8 (BOM optional) or, failing that, GB18030 that looks like Chinese.

    Raises :class:`InputEncodingError` with the offset of the first byte that is not UTF-8.
    """
    if data.startswith(_UTF8_BOM):
        # A BOM is an explicit statement: no fallback to GB18030.
        return _decode_strict(data, "utf-8-sig", source=source, declared="UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _decode_gb18030_fallback(data, utf8_offset=exc.start, source=source)
    _refuse_nul(text, data, source=source)
    return text


def declared_xml_codec(head: bytes, *, source: str) -> str | None:
    """The codec an XML document's prolog declares (``head``: its first bytes), None without one;
    :class:`InputEncodingError` for an encoding other than UTF-8/GBK/GB2312/GB18030."""
    found = _declaration(head, source)
    return found[0] if found is not None else None


def _declaration(head: bytes, source: str) -> tuple[str, str] | None:
    """(codec, name as declared) of an XML prolog's encoding, or None."""
    match = _XML_DECLARATION.match(head)
    if match is None:
        return None
    declared = match.group(2).decode("ascii")
    codec = _DECLARED_CODECS.get(declared.lower())
    if codec is None:
        raise InputEncodingError(
            source=source,
            offset=match.start(2),
            declared=declared,
            message_zh=f"XML 声明的编码 {declared} 不受支持（仅支持 UTF-8、GBK、GB2312、GB18030）",
            message_en=f"the XML declares the unsupported encoding {declared!r} "
            "(use UTF-8, GBK, GB2312 or GB18030)",
        )
    return ("utf-8-sig" if codec == "utf-8" and head.startswith(_UTF8_BOM) else codec), declared


class ChineseTextCheck:
    """:func:`decode_bytes`'s test that a GB18030 reading is real Chinese text, fed piece by piece
    (a file read in chunks): no control characters, most non-ASCII characters common Chinese."""

    def __init__(self) -> None:
        self.non_ascii = 0
        self.common = 0
        self.control = False

    def feed(self, text: str) -> None:
        self.control = self.control or _CONTROL.search(text) is not None
        non_ascii = _ASCII.sub("", text)
        self.non_ascii += len(non_ascii)
        chinese_like = "".join(_CHINESE_LIKE.findall(non_ascii))
        # Every GB2312 character is two bytes, so the encoded length counts the common ones in C speed.
        self.common += len(chinese_like.encode("gb2312", errors="ignore")) // 2

    def looks_chinese(self) -> bool:
        """True when most non-ASCII characters are common (GB2312) Chinese characters or punctuation."""
        if self.control:
            return False
        return not self.non_ascii or self.common / self.non_ascii >= _MIN_CHINESE_SHARE


def decode_xml_bytes(data: bytes, *, source: str) -> str:
    """Decode an XML document, honouring an ``encoding="…"`` declaration in its prolog.

    Without a declaration the bytes are detected like any other input (:func:`decode_bytes`).
    A declared encoding other than UTF-8/GBK/GB2312/GB18030 is refused.
    """
    found = _declaration(data, source)
    if found is None:
        return decode_bytes(data, source=source)
    codec, declared = found
    return _decode_strict(data, codec, source=source, declared=declared)


def _decode_strict(data: bytes, codec: str, *, source: str, declared: str) -> str:
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        # utf-8-sig reports positions after the BOM it consumed; report file offsets instead.
        skipped = len(_UTF8_BOM) if codec == "utf-8-sig" else 0
        raise InputEncodingError(source=source, offset=exc.start + skipped, declared=declared) from exc
    _refuse_nul(text, data, source=source)
    return text


def _decode_gb18030_fallback(data: bytes, *, utf8_offset: int, source: str) -> str:
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise InputEncodingError(source=source, offset=utf8_offset) from exc
    check = ChineseTextCheck()
    check.feed(text)
    if not check.looks_chinese():
        raise InputEncodingError(source=source, offset=utf8_offset)
    return text


def _refuse_nul(text: str, data: bytes, *, source: str) -> None:
    # NUL never occurs in our text formats; it means UTF-16 without a BOM or a binary file, which
    # would otherwise "decode" as ASCII with NULs in every other position.
    if "\x00" in text:
        offset = data.index(b"\x00")
        raise InputEncodingError(
            source=source,
            offset=offset,
            message_zh=f"无法识别文件编码：第 {offset} 字节处是 NUL 字符（可能是 UTF-16 或二进制文件）",
            message_en=f"cannot decode: byte {offset} is NUL (UTF-16 or a binary file?)",
        )
