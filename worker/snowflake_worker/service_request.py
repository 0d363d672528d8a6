"""What one call to the service sends: method, body and headers, from the settings. Pure.

The default is the legacy design's call: a POST of ``{"entry_id", "data", "processor_id",
"timestamp"}``. ``SFP_ENDPOINT_PAYLOAD=data`` sends the entry's data alone as the body.
Every call carries ``Idempotency-Key`` (stable per entry), then the extra headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

METHODS = ("POST", "PUT", "PATCH")


class Payload(StrEnum):
    ENVELOPE = "envelope"  # the legacy design's four fields
    DATA = "data"  # the entry's data, as it is


@dataclass(frozen=True)
class ServiceRequest:
    method: str = "POST"
    payload: Payload = Payload.ENVELOPE
    # Secret values: kept out of repr, so no log line or traceback can show them.
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def body(self, entry_id: str, data: Any, processor_id: str) -> Any:
        if self.payload is Payload.DATA:
            return data
        return {
            "entry_id": entry_id,
            "data": data,
            "processor_id": processor_id,
            "timestamp": datetime.now(UTC).isoformat(),
        }

    def headers(self, idempotency_key: str) -> dict[str, str]:
        return {**self.extra_headers, "Idempotency-Key": idempotency_key}
