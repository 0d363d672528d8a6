"""Identifier validation, normalisation and quoting: the only way names reach SQL text."""

from __future__ import annotations

import pytest

from snowflake_worker.identifiers import (
    InvalidIdentifier,
    TableRef,
    quote_identifier,
    validate_identifier,
)


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("queue", "QUEUE"),
        ("Work_Queue", "WORK_QUEUE"),
        ("_private", "_PRIVATE"),
        ("t1", "T1"),
        ("a$b", "A$B"),
        ("ALREADY_UPPER", "ALREADY_UPPER"),
        ("x" * 255, "X" * 255),
    ],
)
def test_valid_names_are_upper_cased_and_quoted(name: str, normalised: str) -> None:
    assert validate_identifier(name) == normalised
    assert quote_identifier(name) == f'"{normalised}"'


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1table",
        'ta"ble',
        "db.table",
        "my table",
        "table;",
        'a"; DROP TABLE x; --',
        "x" * 256,
        "tab-le",
        "naïve",
        "queue\n",
    ],
)
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        validate_identifier(name, "table")
    message = str(caught.value)
    assert "invalid table" in message
    assert repr(name) in message
    assert "letters, digits" in message
    with pytest.raises(InvalidIdentifier):
        quote_identifier(name, "table")


def test_invalid_identifier_is_a_value_error() -> None:
    # Pydantic turns ValueError raised in validators into validation errors.
    with pytest.raises(ValueError, match="invalid schema"):
        validate_identifier("bad name", "schema")


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier):
        validate_identifier(None, "database")  # type: ignore[arg-type]


def test_message_names_the_kind_of_identifier() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^invalid warehouse '9wh'"):
        validate_identifier("9wh", "warehouse")


def test_table_ref_normalises_every_part() -> None:
    ref = TableRef("analytics", "Queue", "work_items")
    assert (ref.database, ref.schema, ref.table) == ("ANALYTICS", "QUEUE", "WORK_ITEMS")
    assert ref.sql == '"ANALYTICS"."QUEUE"."WORK_ITEMS"'
    assert str(ref) == "ANALYTICS.QUEUE.WORK_ITEMS"


@pytest.mark.parametrize(
    ("parts", "what"),
    [
        (("bad db", "s", "t"), "database"),
        (("d", "s.x", "t"), "schema"),
        (("d", "s", 't"; DROP TABLE x; --'), "table"),
    ],
)
def test_table_ref_rejects_invalid_parts_naming_the_part(
    parts: tuple[str, str, str], what: str
) -> None:
    with pytest.raises(InvalidIdentifier, match=f"invalid {what} "):
        TableRef(*parts)


def test_sibling_stays_in_the_same_schema() -> None:
    ref = TableRef("db", "sch", "queue")
    sibling = ref.sibling("_stats")
    assert sibling == TableRef("DB", "SCH", "QUEUE_STATS")
    assert sibling.sql == '"DB"."SCH"."QUEUE_STATS"'
    assert str(sibling) == "DB.SCH.QUEUE_STATS"
    # the original is untouched (frozen)
    assert ref.table == "QUEUE"


def test_sibling_suffix_is_validated() -> None:
    with pytest.raises(InvalidIdentifier, match="invalid table"):
        TableRef("db", "sch", "queue").sibling('"; DROP TABLE x; --')


def test_sibling_past_the_length_limit_is_rejected() -> None:
    ref = TableRef("db", "sch", "q" * 250)
    with pytest.raises(InvalidIdentifier):
        ref.sibling("_suffix")


def test_table_ref_is_frozen_and_hashable() -> None:
    ref = TableRef("db", "sch", "queue")
    assert hash(ref) == hash(TableRef("DB", "SCH", "QUEUE"))
    with pytest.raises(AttributeError):
        ref.table = "OTHER"  # type: ignore[misc]
