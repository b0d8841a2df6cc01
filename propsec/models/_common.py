"""Column helpers shared by the models."""
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Integer

# BIGINT on PostgreSQL, but INTEGER on SQLite so that the key stays an alias of rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Naive UTC: stored without a zone, rendered with a trailing Z."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
