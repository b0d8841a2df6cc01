"""When an allowed user may come in: weekly windows and an end date, in the site's time zone.

Contract section 14. A window `{days, from, to}` opens at `from` on each listed ISO weekday
(Monday = 1) and closes at `to` the same day, or, when `to` is not after `from`, at `to` on
the next day (a night shift; `from == to` is a whole day). Windows are read on the wall
clock of `PROPSEC_TIMEZONE`, so a window keeps its local hours across daylight-saving
changes: on the spring-forward night an hour that does not exist is simply never on the
clock, and on the fall-back night an hour that happens twice is inside a window both times.
"""
from __future__ import annotations

import json
from datetime import datetime, time, timezone
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, StringConstraints, field_validator

from .protocol.schemas import Payload

MAX_WINDOWS = 50
OUTSIDE_SCHEDULE = "outside-schedule"
UNAUTHORIZED = "unauthorized-entry"


@lru_cache(maxsize=8)
def site_zone(name: str) -> ZoneInfo:
    """The IANA zone named by PROPSEC_TIMEZONE; a name that is no zone stops the start-up."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"PROPSEC_TIMEZONE: {name!r} is not an IANA time zone name") from None


def _clock(value: object) -> time:
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
        raise ValueError("must be a time as HH:MM")
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a time as HH:MM (00:00 to 23:59)") from None


Clock = Annotated[time, BeforeValidator(_clock)]
Weekday = Annotated[int, Field(strict=True, ge=1, le=7)]


class Window(Payload):
    days: Annotated[list[Weekday], Field(min_length=1, max_length=7)]
    start: Clock = Field(alias="from")
    end: Clock = Field(alias="to")

    @field_validator("days")
    @classmethod
    def _distinct(cls, days: list[int]) -> list[int]:
        return sorted(set(days))

    def to_dict(self) -> dict:
        return {"days": self.days, "from": self.start.strftime("%H:%M"),
                "to": self.end.strftime("%H:%M")}

    def covers(self, local: datetime) -> bool:
        weekday, clock = local.isoweekday(), local.time().replace(tzinfo=None)
        if self.end > self.start:
            return weekday in self.days and self.start <= clock < self.end
        yesterday = weekday - 1 or 7
        return ((weekday in self.days and clock >= self.start)
                or (yesterday in self.days and clock < self.end))


Schedule = Annotated[list[Window], Field(max_length=MAX_WINDOWS)]
ValidUntil = Annotated[str, StringConstraints(strict=True, min_length=10, max_length=40)]


def parse_valid_until(text: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date-time; one without an offset is read on the site's clock. Returns
    naive UTC, the way every moment is stored."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO 8601 date-time such as 2027-01-31T18:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise ValueError("is out of range") from None


def dump(schedule: list[Window] | None) -> str | None:
    """Stored as JSON text; an empty list is no schedule, as is none (always allowed)."""
    return json.dumps([w.to_dict() for w in schedule]) if schedule else None


def load(stored: str | None) -> list[Window] | None:
    if stored is None:
        return None
    return [Window.model_validate(w) for w in json.loads(stored)]


def refusal(stored_schedule: str | None, valid_until: datetime | None, now: datetime,
            zone: ZoneInfo) -> str | None:
    """Why a listed user may not come in at `now` (naive UTC), or None when they may."""
    if valid_until is not None and now >= valid_until:
        return OUTSIDE_SCHEDULE
    windows = load(stored_schedule)
    if windows is None:
        return None
    local = now.replace(tzinfo=timezone.utc).astimezone(zone)
    return None if any(w.covers(local) for w in windows) else OUTSIDE_SCHEDULE
