"""Times as people and sites write them: ISO 8601 dates and times, UTC where no zone
is given, compared in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

from .errors import BadInput


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 date or time as a timezone-aware UTC datetime (a time with another
    zone is converted, one without is taken as UTC); :class:`BadInput` naming ``what``."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise BadInput(f"bad {what} {text!r}: use ISO 8601, e.g. 2020-02-01 or 2020-02-01T10:45Z") from None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def naive_utc(text: str, what: str = "time") -> datetime:
    """:func:`parse_time` without its zone: the UTC wall time, as entry times are kept."""
    return parse_time(text, what).replace(tzinfo=None)


def is_date(text: str) -> bool:
    """Whether ``text`` is a date alone (a whole day), not a time of one."""
    try:
        date.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return True
