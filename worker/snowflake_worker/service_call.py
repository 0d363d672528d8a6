"""One call to the service, bounded in time and in memory.

httpx's timeouts bound each network operation (the connect, each read, each write), so
a service that trickles a byte now and then holds a call forever; and a response that
is not streamed is read whole into memory, however large. Here a call, its answer
included, has one time limit, and the body is read only as far as the text kept of it
(or the part of it stored as the entry's result: at most STORE_RESPONSE_MAX_BYTES).
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import re
from dataclasses import dataclass
from typing import Any

import httpx

from .constants import ERROR_TEXT_LIMIT

# Read at most this much of a body: any small answer ends within it, so its connection
# is reused; a longer one is cut off and its connection closed.
BODY_READ_LIMIT = 64 * 1024
# What is kept to decode: ERROR_TEXT_LIMIT characters of UTF-8 need at most 4 bytes each.
BODY_KEEP_BYTES = 4 * ERROR_TEXT_LIMIT
# Compressed bodies would be read raw (undecoded) to keep memory bounded: ask for none.
PLAIN_BODY = {"Accept-Encoding": "identity"}


class CallTimedOut(httpx.TimeoutException):
    """No complete answer within the call's time limit."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: bytes = b""  # the start of the body, at least BODY_KEEP_BYTES of it (keep_bytes)
    charset: str | None = None
    retry_after: str | None = None  # the Retry-After header, as sent

    @property
    def text(self) -> str:
        """The start of the body, at most ERROR_TEXT_LIMIT characters: decoded only when an
        error needs it, never for the answers that complete entries."""
        return decode_body(self.body[:BODY_KEEP_BYTES], self.charset)[:ERROR_TEXT_LIMIT]


async def call_service(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    timeout_seconds: float,
    json: Any = None,
    headers: dict[str, str] | None = None,
    keep_bytes: int = BODY_KEEP_BYTES,
) -> Answer:
    """Send one request; raise httpx.HTTPError (CallTimedOut past ``timeout_seconds``).
    ``keep_bytes`` (up to BODY_READ_LIMIT) of the body are kept in ``Answer.body``.

    The request is built here rather than by ``client.stream``, which merges the client's
    base URL, cookies and default headers into every request and parses the URL again
    each time: a fifth of the client's CPU per call, for settings the worker never uses.
    """
    keep = min(max(keep_bytes, BODY_KEEP_BYTES), BODY_READ_LIMIT)
    request = httpx.Request(
        method, _parsed_url(url), json=json, headers={**PLAIN_BODY, **(headers or {})}
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            answer = await client.send(request, stream=True)
            try:
                head = await _body_start(answer, keep)
            finally:
                await answer.aclose()
    except TimeoutError:  # only this call's own limit: a cancellation from outside passes
        raise CallTimedOut(f"no complete answer within {timeout_seconds:g} s") from None
    return Answer(
        answer.status_code,
        body=head,
        charset=charset_of(answer.headers.get("content-type")),
        # Only an answer that is not a success can ask to wait (a header lookup per call).
        retry_after=None if answer.is_success else answer.headers.get("Retry-After"),
    )


@functools.lru_cache(maxsize=16)
def _parsed_url(url: str) -> httpx.URL:
    return httpx.URL(url)


async def _body_start(answer: httpx.Response, keep: int) -> bytes:
    """The first ``keep`` bytes of the body, reading no more than BODY_READ_LIMIT."""
    kept = bytearray()
    read = 0
    async for chunk in answer.aiter_raw():
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
        read += len(chunk)
        if read >= BODY_READ_LIMIT:
            break  # closing the stream unread drops the connection, not the worker
    return bytes(kept)


def charset_of(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type (httpx's own parse goes through the email
    package: a tenth of a call's CPU, for a parameter that is nearly always absent)."""
    if not content_type or "charset" not in content_type.lower():
        return None
    found = _CHARSET.search(content_type)
    return found.group(1) if found else None


_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)


def decode_body(head: bytes, charset: str | None) -> str:
    """The start of a body as text: its charset (UTF-8 when unknown, or when it names no
    text encoding), bad bytes replaced, and a character cut off at the end of ``head`` left
    out. Never raises: a body is only ever read for an error text or a stored answer, and
    neither may turn a call's outcome into a failure."""
    codec = text_codec(charset)
    try:
        return _decode(head, codec)
    except (UnicodeError, LookupError, TypeError, ValueError):  # idna refuses "replace"
        return _decode(head, "utf-8")


def text_codec(charset: str | None) -> str:
    """The codec to read a body with. Only text encodings: codecs such as base64, hex,
    zip or rot13 are bytes-to-bytes or str-to-str transforms and would not give text."""
    try:
        info = codecs.lookup(charset or "utf-8")
    except LookupError:
        return "utf-8"
    if not getattr(info, "_is_text_encoding", True):
        return "utf-8"
    return info.name


def _decode(head: bytes, codec: str) -> str:
    # UTF-16 and UTF-32 without a BOM are big-endian (RFC 2781, 4.3); Python's decoders
    # would raise instead.
    if codec in ("utf-16", "utf-32") and not head.startswith(_BOMS[codec]):
        codec += "-be"
    decoded = codecs.getincrementaldecoder(codec)(errors="replace").decode(head, final=False)
    if not isinstance(decoded, str):  # a codec outside the standard library's text ones
        raise TypeError(f"{codec} does not decode to text")
    return decoded


_BOMS = {
    "utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE),
    "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE),
}
