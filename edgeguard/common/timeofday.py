"""Daily time windows such as "08:00-18:00": the pattern a config value must match, and the test."""

from __future__ import annotations

from datetime import datetime

HOURS = r"|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d"  # empty (always) or HH:MM-HH:MM
HOURS_HELP = "must be HH:MM-HH:MM, e.g. 08:00-18:00"


def in_hours(hours: str, moment: datetime) -> bool:
    """Whether a local time falls in "HH:MM-HH:MM" (a window may pass midnight); empty is always."""
    if not hours:
        return True
    start, end = hours.split("-")
    now = moment.strftime("%H:%M")
    return start <= now < end if start <= end else now >= start or now < end
