"""Turning events into alert messages: who gets what, worded short and plain, never a flood.

For each event: categories in `quiet_categories` never alert; a cooldown
allows one alert per (person or unknown visitor, location, event type) per
`cooldown_minutes` (a camera's own events: per camera); the routes whose event
types, categories, locations, cameras and hours match name the recipients, so
each location's contact gets that location's alerts; each recipient gets at most `max_per_hour` messages an
hour, and what the cap held back is counted and mentioned in the next message
that does go out ("+3 more since 14:02").  Messages go into the outbox; the
sender delivers them on its own thread, so none of this waits on the network.

The wording is edgeguard.alerts.wording's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..common.timeofday import in_hours
from ..config import Config, RouteConfig
from ..events.event import CAMERA_EVENTS, Event, EventType
from .link_signer import ImageLinks
from .outbox import Outbox
from .wording import alert_body

log = logging.getLogger(__name__)


class Alerter:
    """Queues the alert messages of an event in the outbox (called by AlertService, the event bus's "sms"
    output, on its worker thread)."""

    def __init__(
        self, config: Config, outbox: Outbox, links: ImageLinks | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg = config.alerts
        self.outbox = outbox
        self.links = links
        self.clock = clock
        self._last_alert: dict[tuple[str, str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> list[int]:
        """Queue the messages this event calls for; returns their outbox ids."""
        with self._lock:
            return self._alert(event)

    def _alert(self, event: Event) -> list[int]:
        if event.category and event.category in self.cfg.quiet_categories:
            return []
        recipients = self.recipients(event)
        if not recipients or not self._cooled_down(event):
            return []
        link = self._link(event)
        body = alert_body(event, link)
        media = link if self.cfg.mms else None
        return [mid for to in recipients if (mid := self._queue(to, body, media, event)) is not None]

    def recipients(self, event: Event) -> list[str]:
        moment = datetime.fromtimestamp(event.time)
        numbers: list[str] = []
        for route in self.cfg.route:
            if self._matches(route, event, moment):
                numbers += [n for n in route.to if n not in numbers]
        return numbers

    @staticmethod
    def _matches(route: RouteConfig, event: Event, moment: datetime) -> bool:
        if event.type not in route.events or not in_hours(route.hours, moment):
            return False
        if (route.locations and event.location not in route.locations) or (
            route.cameras and event.camera not in route.cameras
        ):
            return False
        if route.categories:
            return event.type != EventType.CROWD and event.category in route.categories
        return True

    def _cooled_down(self, event: Event) -> bool:
        who = event.person_id or (f"visitor {event.extra['visitor']}" if "visitor" in event.extra else "")
        if event.type in CAMERA_EVENTS:
            who = f"camera {event.camera}"
        key = (who, event.location, event.type)
        last = self._last_alert.get(key)
        if last is not None and event.time - last < self.cfg.cooldown_minutes * 60:
            log.debug("alert for %s %s held by the cooldown", event.type, who or event.location)
            return False
        self._last_alert[key] = event.time
        return True

    def _link(self, event: Event) -> str | None:
        if not event.capture or self.links is None:
            return None
        return self.links.link_for(Path(event.capture))

    def _queue(self, to: str, body: str, media: str | None, event: Event) -> int | None:
        now = self.clock()
        if self.outbox.sent_since(to, now - 3600) >= self.cfg.max_per_hour:
            self.outbox.hold(to, now)
            return None
        held = self.outbox.take_held(to)
        if held:
            count, since = held
            body = f"{body} +{count} more since {datetime.fromtimestamp(since).strftime('%H:%M')}"
        return self.outbox.add(to, body, media, event.seq, now)
