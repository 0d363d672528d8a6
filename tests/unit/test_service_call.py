"""The service call's own reading of a Content-Type, and the body decoded with it (for an
error text or a stored answer): never an exception, whatever the charset says."""

from __future__ import annotations

import httpx
import pytest

from snowflake_worker.service_call import charset_of, decode_body


@pytest.mark.parametrize(
    ("content_type", "charset"),
    [
        ("application/json", None),
        ("text/plain; charset=ISO-8859-1", "ISO-8859-1"),
        ('text/html;charset="utf-8"', "utf-8"),
        ("text/plain; Charset = latin-1 ; format=flowed", "latin-1"),
        ("text/plain; charset=", None),
        (None, None),
        ("", None),
    ],
)
def test_the_charset_parameter_is_read_as_httpx_reads_it(
    content_type: str | None, charset: str | None
) -> None:
    assert charset_of(content_type) == charset
    if content_type:  # what httpx's email-based parse finds (codec names ignore case)
        expected = httpx.Response(200, headers={"content-type": content_type}).charset_encoding
        assert (charset or "").lower() == (expected or "").lower()


@pytest.mark.parametrize(
    ("body", "charset", "text"),
    [
        ("héllo".encode("utf-16-be"), "utf-16", "héllo"),  # no BOM: big-endian
        ("héllo".encode("utf-16"), "utf-16", "héllo"),  # a BOM says which
        ("héllo".encode("utf-32-be"), "UTF-32", "héllo"),
        (b"caf\xc3\xa9", "base64", "café"),  # a bytes codec, not text: read as UTF-8
        (b"caf\xc3\xa9", "hex", "café"),
        (b"caf\xc3\xa9", "rot13", "café"),  # str to str: not a decoder of bytes
        (b"caf\xc3\xa9", "idna", "café"),  # refuses errors="replace"
        (b"caf\xe9", "latin-1", "café"),
        (b"caf\xff", "no-such-charset", "caf\ufffd"),
        (b"caf\xc3", None, "caf"),  # a character cut at the end is left out
    ],
)
def test_a_body_decodes_to_text_whatever_its_charset(
    body: bytes, charset: str | None, text: str
) -> None:
    assert decode_body(body, charset) == text
