"""The base of every section of the SnowflakeProcessor spec model: camelCase aliases as in
the CRD, unknown fields refused (admission strips the fields this version does not know
before validating: spec/fields.py), frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )
