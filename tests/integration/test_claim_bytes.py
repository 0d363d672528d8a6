"""Claims capped by the entries' data: the real worker against the Snowflake emulator,
with entries of 50 KB each and SFP_CLAIM_BYTES of 500,000: after the first claim (whose
sizes it cannot know), no claim asks for more entries than that much data holds."""

from __future__ import annotations

import pytest

from tests.support.worker_runs import WorkerWorld

pytestmark = pytest.mark.integration

ENTRIES = 200
PAD = 50_000
CLAIM_BYTES = 500_000


def test_claims_of_large_entries_stay_within_the_claim_bytes(workers: WorkerWorld) -> None:
    entries = ((f"big{i:04d}", {"pad": "x" * PAD, "n": i}) for i in range(ENTRIES))
    assert workers.queue.enqueue(entries) == ENTRIES
    service = workers.start_service()
    spec = workers.spec(service.port, claim_batch=20)
    run = workers.start(spec, SFP_CLAIM_BYTES=str(CLAIM_BYTES))
    code, stderr = run.wait()
    assert code == 0, stderr
    summary = run.summary()
    assert summary["completed"] == ENTRIES
    batches = summary["batches"]
    assert batches["claim_size_first"] == 20
    fits = CLAIM_BYTES // PAD  # 10: each entry's JSON text is a little more than PAD
    assert batches["claim_size_last"] <= fits
    # every claim after the first asked for at most `fits`: 180 entries take 18 or more
    assert batches["claims"] >= 1 + (ENTRIES - 20) // fits
