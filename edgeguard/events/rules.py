"""Which of the pipeline's facts become events: decisions always; bare faces once each, within the
mask hours; a crowd once it has lasted `crowd_min_seconds`.

The pipeline (edgeguard.live) says what it sees on each frame; the rules here
remember what was already reported.  A bare face is reported once per episode
of its track (edgeguard.live.track.Track.mask_episode: a new one starts when
the face is voted masked again, or someone else takes the track's place), and
only when the frame's local time is within `[mask] hours`: a face bare at 07:59
and still bare at 08:01, with hours from 08:00, gets its event at 08:01.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from ..common.timeofday import in_hours
from ..config import CameraConfig, EventsConfig, MaskConfig
from ..live.pipeline import FrameReport, Observation
from .event import EventType

# Bare-face episodes remembered as reported; tracks are short-lived, so the latest few suffice.
REMEMBERED_EPISODES = 256


class EventRules:
    """One camera's rules; with `camera`, its own crowd size and mask events (else the sections')."""

    def __init__(self, events: EventsConfig, mask: MaskConfig, camera: CameraConfig | None = None) -> None:
        self.events = events
        self.mask = mask
        self.max_people = camera.max_people if camera else events.max_people
        self.mask_events = camera.mask_events if camera else mask.events
        self._bare_reported: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._crowd_since: float | None = None
        self._crowd_reported = False

    def due(self, report: FrameReport) -> list[Observation]:
        """The observations of this frame that are events, in order: decisions, bare faces, a crowd."""
        crowd = self._crowd(report)
        return report.decisions + self._no_mask(report) + ([crowd] if crowd else [])

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
