"""Which of the pipeline's facts become events: decisions always; bare faces once each, within the
mask hours; a crowd once it has lasted `crowd_min_seconds`; a face that stays in view longer than the
camera's `loiter_minutes`, once per stay; a stranger's return visit (`return_visit`).

The pipeline (edgeguard.live) says what it sees on each frame; the rules here
remember what was already reported.  A bare face is reported once per episode
of its track (edgeguard.live.track.Track.mask_episode: a new one starts when
the face is voted masked again, or someone else takes the track's place), and
only when the frame's local time is within `[mask] hours`: a face bare at 07:59
and still bare at 08:01, with hours from 08:00, gets its event at 08:01.

A stay is one face in view of one camera: a watchlist person by their Id, an
unknown face by its visitor (edgeguard.events.visitors, handed over as
`visitor_of`), so a track that breaks (a turn of the head, a looping clip)
does not start a new stay; the stay ends when the face has been out of view
STAY_GAP_SECONDS.  A return visit is a new visit of a stranger
(edgeguard.events.strangers) whose visits within `return_window_days`, this
one included, reach `return_visits`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..common.timeofday import in_hours
from ..config import CameraConfig, EventsConfig, MaskConfig
from ..live.pipeline import FrameReport, Observation
from .event import EventType

# Bare-face episodes remembered as reported; tracks are short-lived, so the latest few suffice.
REMEMBERED_EPISODES = 256
# A face out of view this long (media time) has left: seen again, it is a new stay.
STAY_GAP_SECONDS = 30.0


@dataclass
class Stay:
    start: float
    last: float
    reported: bool = False


class EventRules:
    """One camera's rules; with `camera`, its own crowd size and mask events (else the sections')."""

    def __init__(
        self,
        events: EventsConfig,
        mask: MaskConfig,
        camera: CameraConfig | None = None,
        visitor_of: Callable[[int], int | None] = lambda track: None,
    ) -> None:
        self.events = events
        self.mask = mask
        self.max_people = camera.max_people if camera else events.max_people
        self.mask_events = camera.mask_events if camera else mask.events
        self.loiter_seconds = (camera.loiter_minutes if camera else events.loiter_minutes) * 60
        self.return_visits = camera.return_visits if camera else events.return_visits
        self.return_window = (camera.return_window_days if camera else events.return_window_days) * 86400
        self.visitor_of = visitor_of  # an unknown track's visitor (the recorder's), for its stay
        self._stays: dict[tuple[str, object], Stay] = {}
        self._clock = (float("-inf"), 0.0)  # (last media time, what a file's loops added to it)
        self._bare_reported: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._crowd_since: float | None = None
        self._crowd_reported = False

    def due(self, report: FrameReport) -> list[Observation]:
        """The observations of this frame that are events, in order: decisions, bare faces, a crowd,
        faces that stayed too long."""
        crowd = self._crowd(report)
        return report.decisions + self._no_mask(report) + ([crowd] if crowd else []) + self._loitering(report)

    def returned(self, visits: list[float], now: float) -> list[float]:
        """The visits that make a stranger's new visit at `now` a return visit (those within the window,
        this one last), or [] when it is not one: `visits` are the start times of their visits, this one
        included."""
        recent = [start for start in visits if now - start <= self.return_window]
        return recent if self.return_visits and len(recent) >= self.return_visits else []

    def _loitering(self, report: FrameReport) -> list[Observation]:
        if not self.loiter_seconds:
            return []
        now = self._stay_time(report.frame.media_time)
        out = []
        for face in report.decided:
            track = face.track
            if face.person is not None:
                key: tuple[str, object] = ("person", face.person.id)
            else:
                visitor = self.visitor_of(track.id)
                key = ("visitor", visitor) if visitor is not None else ("track", track.id)
            stay = self._stays.get(key)
            if stay is None or now - stay.last > STAY_GAP_SECONDS:
                stay = self._stays[key] = Stay(now, now)
            stay.last = now
            if not stay.reported and now - stay.start >= self.loiter_seconds:
                stay.reported = True
                out.append(
                    Observation(EventType.LOITERING, report.frame, track, face.person, since=stay.start)
                )
        self._stays = {k: s for k, s in self._stays.items() if now - s.last <= STAY_GAP_SECONDS}
        return out

    def _stay_time(self, media_time: float) -> float:
        """Media time that keeps counting when a looping file starts again (its position goes back)."""
        last, added = self._clock
        if media_time < last:
            added += last - media_time
        self._clock = (media_time, added)
        return media_time + added

    def _no_mask(self, report: FrameReport) -> list[Observation]:
        if not report.bare or not self.mask_events:
            return []
        if not in_hours(self.mask.hours, datetime.fromtimestamp(report.frame.time)):
            return []
        out = []
        for bare in report.bare:
            key = (bare.track.id, bare.track.mask_episode)
            if key in self._bare_reported:
                continue
            self._bare_reported[key] = None
            while len(self._bare_reported) > REMEMBERED_EPISODES:
                self._bare_reported.popitem(last=False)
            out.append(Observation(EventType.NO_MASK, report.frame, bare.track, bare.person))
        return out

    def _crowd(self, report: FrameReport) -> Observation | None:
        now = report.frame.media_time
        if report.people <= self.max_people:
            self._crowd_since, self._crowd_reported = None, False
            return None
        if self._crowd_since is None:
            self._crowd_since = now
        if self._crowd_reported or now - self._crowd_since < self.events.crowd_min_seconds:
            return None
        self._crowd_reported = True
        return Observation(EventType.CROWD, report.frame, count=report.people)
