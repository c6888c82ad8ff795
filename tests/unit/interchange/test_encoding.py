from __future__ import annotations

import random

import pytest

from ggzy.interchange.encoding import decode_bytes, decode_xml_bytes
from ggzy.interchange.errors import InputEncodingError, InputError

CHINESE = "标段（包）名称：某市政道路改造工程“一期”——第1标段，招标人：张·三"


def test_utf8_is_decoded() -> None:
    assert decode_bytes(CHINESE.encode("utf-8"), source="a.csv") == CHINESE


def test_utf8_bom_is_removed() -> None:
    assert decode_bytes(b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), source="a.csv") == CHINESE


def test_gbk_is_decoded_as_gb18030() -> None:
    assert decode_bytes(CHINESE.encode("gbk"), source="a.csv") == CHINESE


def test_gb18030_four_byte_characters_are_decoded() -> None:
    # 𠀀 (U+20000) is outside GBK; GB18030 encodes it in four bytes.
    text = CHINESE + "𠀀"
    assert decode_bytes(text.encode("gb18030"), source="a.csv") == text


def test_pure_ascii_is_utf8() -> None:
    assert decode_bytes(b"TABLE,OP\r\nSECTION,insert\r\n", source="a.csv") == "TABLE,OP\r\nSECTION,insert\r\n"


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        pytest.param("Müller Straße café".encode("latin-1"), 1, id="latin-1"),
        pytest.param("résumé – “quoted” élève".encode("cp1252"), 1, id="cp1252"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 0, id="png"),
        pytest.param(b"abc\xff\xfe\x00", 3, id="ff-fe"),
        pytest.param(b"ok \x1a\xbe\xd8\x0e1)", 4, id="control-characters-in-gb18030"),
    ],
)
def test_junk_is_refused_with_the_offset_of_the_first_non_utf8_byte(data: bytes, offset: int) -> None:
    with pytest.raises(InputEncodingError) as caught:
        decode_bytes(data, source="junk.csv")
    error = caught.value
    assert error.offset == offset
    assert error.source == "junk.csv"
    assert error.code == "E-INPUT-ENCODING"
    assert f"第 {offset} 字节" in error.message_zh
    assert f"byte {offset} is neither UTF-8 nor GB18030" in error.message_en
    assert isinstance(error, InputError)
    assert str(error) == f"{error.message_zh} ({error.message_en})"


def test_random_binary_is_refused() -> None:
    data = random.Random(20261127).randbytes(4096)
    with pytest.raises(UnicodeDecodeError) as not_utf8:
        data.decode("utf-8")
    with pytest.raises(InputEncodingError) as caught:
        decode_bytes(data, source="random.bin")
    assert caught.value.offset == not_utf8.value.start


def test_offset_after_a_bom_counts_the_bom_bytes() -> None:
    with pytest.raises(InputEncodingError) as caught:
        decode_bytes(b"\xef\xbb\xbfab\xff", source="a.csv")
    assert caught.value.offset == 5


def test_bom_forbids_the_gb18030_fallback() -> None:
    with pytest.raises(InputEncodingError):
        decode_bytes(b"\xef\xbb\xbf" + CHINESE.encode("gbk"), source="a.csv")


def test_utf16_without_bom_is_refused_at_the_first_nul() -> None:
    with pytest.raises(InputEncodingError) as caught:
        decode_bytes("table,op".encode("utf-16-le"), source="a.csv")
    assert caught.value.offset == 1
    assert "NUL" in caught.value.message_en


def _xml(encoding: str, body: str = CHINESE) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>\n<ROOT><A>{body}</A></ROOT>'


@pytest.mark.parametrize("declared", ["GBK", "gbk", "GB2312", "GB18030"])
def test_xml_declared_gbk_family_is_decoded_as_gb18030(declared: str) -> None:
    text = _xml(declared)
    assert decode_xml_bytes(text.encode("gb18030"), source="a.xml") == text


def test_xml_declared_utf8_with_bom() -> None:
    text = _xml("UTF-8")
    assert decode_xml_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"), source="a.xml") == text


def test_xml_declared_utf8_but_gbk_bytes_is_refused_with_offset() -> None:
    data = _xml("UTF-8").encode("gbk")
    first_chinese = data.index(CHINESE[0].encode("gbk"))
    with pytest.raises(InputEncodingError) as caught:
        decode_xml_bytes(data, source="a.xml")
    assert caught.value.offset == first_chinese
    assert caught.value.declared == "UTF-8"
    assert "declared encoding UTF-8" in caught.value.message_en


def test_xml_declared_gbk_but_undecodable_is_refused_with_offset() -> None:
    data = _xml("GBK", "abc").encode("ascii").replace(b"abc", b"ab\xff")
    with pytest.raises(InputEncodingError) as caught:
        decode_xml_bytes(data, source="a.xml")
    assert caught.value.offset == data.index(b"\xff")


def test_xml_unsupported_declared_encoding_is_refused() -> None:
    with pytest.raises(InputEncodingError) as caught:
        decode_xml_bytes(_xml("ISO-8859-1", "abc").encode("latin-1"), source="a.xml")
    assert "ISO-8859-1" in caught.value.message_en


def test_xml_without_declaration_is_detected() -> None:
    text = f"<ROOT><A>{CHINESE}</A></ROOT>"
    assert decode_xml_bytes(text.encode("gbk"), source="a.xml") == text
