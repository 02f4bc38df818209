"""The events stage: each frame's report becomes events (edgeguard.events.rules says which),
with captures for unknown faces.

For an unknown face it first asks whether this is a visitor seen within the
revisit window (then the earlier capture is referenced and nothing new is
saved), otherwise it saves a capture.  A no_mask event on an unknown face
points at that face's capture.  Every event is written to the event log and
logged as one line without personal details beyond the name; then the
listeners (alerts) get it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..config import Config
from ..live.pipeline import FrameReport, Observation
from ..live.track import BestView
from ..live.vote import Verdict
from ..store.capture_store import CaptureStore, SavedCapture
from ..store.event_log import EventLog
from .event import Event
from .rules import EventRules
from .visitors import UnknownVisitors

log = logging.getLogger(__name__)

# A no_mask event on an unknown face reuses its unknown_face event's capture;
# tracks are short-lived, so only the latest few need remembering.
RECENT_UNKNOWN_TRACKS = 64


class EventRecorder:
    def __init__(self, config: Config, event_log: EventLog, captures: CaptureStore,
                 listeners: list[Callable[[Event], None]] | None = None) -> None:
        self.camera = config.camera.name
        self.location = config.location
        self.event_log = event_log
        self.captures = captures
        self.rules = EventRules(config.events, config.mask)
        self.visitors = UnknownVisitors(config.events.revisit_minutes * 60, config.recognition.tolerance)
        self.listeners = listeners or []
        self._unknown_tracks: dict[int, tuple[str | None, int | None]] = {}  # track id -> capture, visitor

    def record(self, report: FrameReport) -> list[Event]:
        """The events of one frame, recorded and handed to the listeners."""
        return [self.handle(obs) for obs in self.rules.due(report)]

    def handle(self, obs: Observation) -> Event:
        fields: dict[str, Any] = {}
        if obs.kind == "unknown_face":
            fields = self._unknown(obs)
        elif obs.kind == "known_face" and obs.person is not None:
            fields = {"person_id": obs.person.id, "name": obs.person.name, "category": obs.person.category or None,
                      "extra": {"box": obs.track.box.as_list()}}
        elif obs.kind == "no_mask":
            fields = self._no_mask(obs)
        elif obs.kind == "crowd":
            fields = {"extra": {"count": obs.count}}
        event = self.event_log.append(self._event(obs, **fields))
        if obs.kind == "unknown_face" and obs.track is not None:
            self._remember_unknown(obs.track.id, event)
        log.info("event %s", event.summary())
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a bug in one listener must not stop the camera
                log.exception("event %s (%s) is in the event log, but handling it failed", event.seq, event.type)
        return event

    def _no_mask(self, obs: Observation) -> dict[str, Any]:
        """Who wears no mask: the person, or the unknown face's visitor and capture (the unknown_face
        event of the same track comes first), so the alert can show the face."""
        assert obs.track is not None
        fields: dict[str, Any] = {"extra": {"box": obs.track.box.as_list()}}
        if obs.person is not None:
            fields.update(person_id=obs.person.id, name=obs.person.name, category=obs.person.category or None)
        elif obs.track.id in self._unknown_tracks:
            capture, visitor = self._unknown_tracks[obs.track.id]
            fields["capture"] = capture
            fields["extra"]["visitor"] = visitor
        return fields

    def _remember_unknown(self, track: int, event: Event) -> None:
        self._unknown_tracks[track] = (event.capture, event.extra.get("visitor"))
        while len(self._unknown_tracks) > RECENT_UNKNOWN_TRACKS:
            self._unknown_tracks.pop(next(iter(self._unknown_tracks)))

    def _unknown(self, obs: Observation) -> dict[str, Any]:
        track = obs.track
        assert track is not None
        encodings = track.encodings_for(Verdict.UNKNOWN)
        if len(encodings) == 0:  # decided unknown for want of a majority: use every sample
            encodings = track.all_encodings()
        visitor = self.visitors.recall(encodings, obs.frame.time)
        if visitor is not None:
            return {"capture": visitor.capture,
                    "extra": {"visitor": visitor.id, "revisit": True, "box": track.box.as_list()}}
        best = track.take_view()  # saved or not, the track no longer needs the frame
        assert best is not None  # an undecided track that was sampled has a best view
        saved = self.captures.save(best.frame.time, self.camera, best.crop, best.frame.image, self._sidecar(obs, best))
        capture = str(saved.face) if isinstance(saved, SavedCapture) else None
        visitor = self.visitors.remember(encodings, capture, obs.frame.time)
        extra: dict[str, Any] = {"visitor": visitor.id, "box": track.box.as_list()}
        if not isinstance(saved, SavedCapture):
            extra["capture_error"] = saved
        else:
            extra["frame_image"] = str(saved.frame)
        return {"capture": capture, "extra": extra}

    def _sidecar(self, obs: Observation, best: BestView) -> dict[str, Any]:
        """What the capture shows: the best view's frame, box and time, and the decision's distance."""
        assert obs.track is not None
        return {
            "time": best.frame.time,
            "camera": self.camera,
            "location": {"name": self.location.name, "latitude": self._lat(), "longitude": self._lon()},
            "box": best.box.as_list(),
            "distance": obs.distance,
            "frame": best.frame.number,
            "pos_ms": best.frame.pos_ms,
            "track": obs.track.id,
            "decided_at_frame": obs.frame.number,
        }

    def _event(self, obs: Observation, **fields: Any) -> Event:
        return Event(
            type=obs.kind, time=obs.frame.time, camera=self.camera, location=self.location.name,
            latitude=self._lat(), longitude=self._lon(), distance=obs.distance,
            frame=obs.frame.number, pos_ms=obs.frame.pos_ms, track=obs.track.id if obs.track else None,
            **fields,
        )

    def _lat(self) -> float | None:
        return self.location.latitude if (self.location.latitude, self.location.longitude) != (0.0, 0.0) else None

    def _lon(self) -> float | None:
        return self.location.longitude if (self.location.latitude, self.location.longitude) != (0.0, 0.0) else None
