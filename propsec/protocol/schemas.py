"""Field types shared by the query schemas (contract sections 5, 6 and 9)."""
from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict,
                      StringConstraints)

MAX_ID = 2**63 - 1


def _to_id(value: object) -> int:
    """Ids arrive as an int or a string of digits; booleans and anything else are refused."""
    if isinstance(value, bool):
        raise ValueError("must be an integer id, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError("must be an integer id (a number or a string of digits)")


def _clean_text(value: str) -> str:
    """Refuse what no database can store: NUL characters and unpaired surrogates."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def iso_day(value: str) -> date:
    if len(value) != 10:
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date as YYYY-MM-DD") from None


Id = Annotated[int, BeforeValidator(_to_id), Field(ge=1, le=MAX_ID)]
Int = Annotated[int, Strict()]
Coordinate = Annotated[int, Strict(), Field(ge=-1_000_000, le=1_000_000)]
Extent = Annotated[int, Strict(), Field(ge=1, le=100_000)]
def text(min_length: int = 0, max_length: int | None = None):
    """A string field: strict (no numbers turned into text), bounded, storable."""
    return Annotated[str, StringConstraints(strict=True, min_length=min_length,
                                            max_length=max_length), AfterValidator(_clean_text)]


Text = text()
UserId = text(1, 64)
Location = text(1, 200)
Description = text(max_length=2000)
Reason = text(max_length=200)
Search = text(max_length=200)
Limit = Annotated[int, Strict(), Field(ge=1, le=1000)]
Offset = Annotated[int, Strict(), Field(ge=0, le=2**31 - 1)]
Cursor = Annotated[int, BeforeValidator(_to_id), Field(ge=0, le=MAX_ID)]  # an eventId seen
Day = Annotated[str, Strict(), AfterValidator(iso_day)]


class Payload(BaseModel):
    """Base of every query schema: unknown fields are ignored, nothing is coerced loosely."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Empty(Payload):
    pass


class PropertyRef(Payload):
    propertyId: Id


class Page(Payload):
    limit: Limit = 10
    offset: Offset = 0
    search: Search = ""
