"""One table, one resource: a table is identified as the Snowflake connector resolves it,
so a second spelling of the same account cannot take the same table twice."""

from __future__ import annotations

import pytest
from snowflake.connector.util_text import parse_account

from snowflake_operator.spec.table_claims import account_name, table_key
from tests.support.specs import MINIMAL_SPEC, merged

SPELLINGS = [
    "acme-prod",
    "ACME-Prod",
    "acme-prod.x",  # anything after a dot is a region part to the connector
    "acme-prod.us-east-1.aws",
    "acme-prod-a1b2c3.global",  # a global URL's account, external id included
    "xy12345.eu-west-1",
]


@pytest.mark.parametrize("account", SPELLINGS)
def test_the_account_is_what_the_connector_logs_in_to(account: str) -> None:
    assert account_name(account) == parse_account(account).lower()


def test_spellings_of_one_account_name_one_table() -> None:
    keys = {
        table_key(merged(MINIMAL_SPEC, snowflake={"account": account, "table": "WORK_QUEUE"}))
        for account in SPELLINGS[:5]
    }
    assert len(keys) == 1, keys


def test_a_host_does_not_make_another_table() -> None:
    """account acme-prod.x with host acme-prod.snowflakecomputing.com is acme-prod."""
    plain = merged(MINIMAL_SPEC, snowflake={"account": "acme-prod"})
    hosted = merged(
        MINIMAL_SPEC,
        snowflake={"account": "acme-prod.x", "host": "acme-prod.snowflakecomputing.com"},
    )
    assert table_key(plain) == table_key(hosted)
