"""Data formats: detection from the columns, validation, and parsing of one row into a `ParsedRow`."""

from .common import ChatRenderer, Layout, ParsedRow, RowSchema
from .pairwise import PAIRWISE, PAIRWISE_SCHEMA, split_implicit_prompt
from .ranked import RANKED, RANKED_SCHEMA
from .rated import RATED, RATED_SCHEMA

SCHEMAS = {PAIRWISE: PAIRWISE_SCHEMA, RATED: RATED_SCHEMA, RANKED: RANKED_SCHEMA}

__all__ = [
    "PAIRWISE",
    "PAIRWISE_SCHEMA",
    "RANKED",
    "RANKED_SCHEMA",
    "RATED",
    "RATED_SCHEMA",
    "SCHEMAS",
    "ChatRenderer",
    "Layout",
    "ParsedRow",
    "RowSchema",
    "split_implicit_prompt",
]
