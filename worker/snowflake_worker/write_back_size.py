"""How many outcomes one write-back statement carries, and so how many statements one
flush sends. Pure. One definition for the worker, which cuts a flush into statements of at
most MAX_BIND_BYTES of JSON (queue.py), and the operator, whose Job limit counts every
statement that holds the table's lock (operator poll/job_count.py).

Each write-back is an UPDATE holding the queue table's lock, so a flush that needs 162
statements holds it 162 times. The count is planned for the worst case an outcome can
carry: the longest id, and the stored answer with every byte escaped.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .response_storage import STORE_RESPONSE_MAX_BYTES
from .retry_after import MAX_RELEASE_SECONDS

# Keep one statement's JSON bind well under Snowflake's ~1 MB guidance for a statement's
# text and binds. The bind is sent as it is counted here: nothing escapes it into SQL text.
MAX_BIND_BYTES = 512 * 1024

# The widest outcome without an answer or an error: the id column is VARCHAR(64) (sql/001),
# the claim token a uuid4's hex (queue.py), the longest status, the longest release delay.
_WIDEST_PLAIN_OUTCOME = {
    "id": "i" * 64,
    "token": "t" * 32,
    "status": "completed",
    "error": None,
    "retry_inc": 1,
    "delay": MAX_RELEASE_SECONDS,
}
# json.dumps (ensure_ascii) writes a control character, and the U+FFFD a bad byte decodes
# to, as \uXXXX: one byte of a stored answer can become six bytes of JSON.
ESCAPED_BYTES_PER_ANSWER_BYTE = 6


def outcome_json(fields: dict[str, Any]) -> str:
    """One outcome as a write-back carries it (and as its size is counted)."""
    return json.dumps(fields, separators=(",", ":"), default=str)


PLAIN_OUTCOME_BYTES = len(outcome_json(_WIDEST_PLAIN_OUTCOME))
_RESULT_FIELD_BYTES = len(',"result":""')


def outcome_bytes_max(store_response_bytes: int) -> int:
    """The most JSON one outcome can take when answers of up to ``store_response_bytes``
    bytes are kept (0: none)."""
    if not 0 <= store_response_bytes <= STORE_RESPONSE_MAX_BYTES:
        raise ValueError(
            f"store_response_bytes must be 0-{STORE_RESPONSE_MAX_BYTES}, got {store_response_bytes}"
        )
    if store_response_bytes == 0:
        return PLAIN_OUTCOME_BYTES
    answer = ESCAPED_BYTES_PER_ANSWER_BYTE * store_response_bytes
    return PLAIN_OUTCOME_BYTES + _RESULT_FIELD_BYTES + answer


def outcomes_per_write_back(store_response_bytes: int, limit: int = MAX_BIND_BYTES) -> int:
    """The fewest outcomes one write-back statement is sure to carry: as many of the widest
    outcome as fit in one ``[a,b,...]`` array of ``limit`` bytes (at least one)."""
    return max(1, (limit - 2) // (outcome_bytes_max(store_response_bytes) + 1))


def write_backs_per_flush(flush_every: int, store_response_bytes: int) -> int:
    """The most write-back statements one flush of ``flush_every`` outcomes sends."""
    if flush_every < 1:
        raise ValueError(f"flush_every must be at least 1, got {flush_every}")
    return math.ceil(flush_every / outcomes_per_write_back(store_response_bytes))
