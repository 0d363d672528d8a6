"""The service call's own reading of a Content-Type (the error text is decoded with it)."""

from __future__ import annotations

import httpx
import pytest

from snowflake_worker.service_call import charset_of


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
