"""A person's track: their sightings in time order, the distance between consecutive ones (haversine) and the
speed it implies, flagged when no one could have travelled it (a false match at one of the two places)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)
# Faster than this between two sightings is impossible for a person in a city (a car on an urban motorway
# stays well below; 50 km in 5 minutes is 600 km/h).  Below NEAR_KM apart, two places are "the same": the
# coordinates of neighbouring cameras, typed by hand, are not precise enough to judge a speed.
MAX_SPEED_KMH = 200.0
NEAR_KM = 1.0


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in km between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True)
class Leg:
    """One sighting and how it follows the one before (None for the first, or without coordinates)."""

    sighting: dict[str, Any]
    km: float | None = None
    minutes: float | None = None
    kmh: float | None = None
    impossible: bool = False


def legs(sightings: list[dict[str, Any]]) -> list[Leg]:
    """Each sighting (oldest first, rows with time, latitude, longitude) with its leg from the previous
    sighting that had coordinates."""
    out: list[Leg] = []
    previous: dict[str, Any] | None = None
    for sighting in sightings:
        if sighting["latitude"] is None or sighting["longitude"] is None:
            out.append(Leg(sighting))
            continue
        if previous is None:
            out.append(Leg(sighting))
        else:
            km = haversine_km(
                previous["latitude"], previous["longitude"], sighting["latitude"], sighting["longitude"]
            )
            hours = max(0.0, sighting["time"] - previous["time"]) / 3600
            kmh = km / hours if hours > 0 else (math.inf if km >= NEAR_KM else 0.0)
            impossible = km >= NEAR_KM and kmh > MAX_SPEED_KMH
            out.append(Leg(sighting, km, hours * 60, kmh, impossible))
        previous = sighting
    return out
