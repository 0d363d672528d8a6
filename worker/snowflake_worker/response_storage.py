"""The service's answer as the queue keeps it in the `result` column (sql/005). Pure.

Only the answer that completes an entry is kept, and only its first
SFP_STORE_RESPONSE_BYTES bytes, decoded as the answer's charset says (UTF-8 when it says
nothing); a character cut in two at the limit is left out, and a longer body is cut there.
"""

from __future__ import annotations

from .service_call import Answer, decode_body

# The most a worker keeps per entry: the result column is VARCHAR(16384), and 16384 bytes
# decode to at most 16384 characters. Kept small because outcomes travel to Snowflake in
# JSON binds of at most 512 KiB (write_back_size.py), each write-back holding the table's lock.
STORE_RESPONSE_MAX_BYTES = 16384


def stored_response(answer: Answer, limit: int) -> str | None:
    """What goes into `result` for a successful answer; None when answers are not kept."""
    if limit <= 0:
        return None
    return decode_body(answer.body[:limit], answer.charset)
