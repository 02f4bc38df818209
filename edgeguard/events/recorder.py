"""The events stage: each frame's report becomes events (edgeguard.events.rules says which),
with captures of the faces.

One `SiteEvents` serves every camera of the device: the event log, the
captures, the event bus and the memory of visitors and sightings are shared,
so an unknown visitor who walks from one camera to the next is the same
visitor.  Each camera has its own `EventRecorder` (`SiteEvents.recorder`) with
its own rules (crowd timing, bare faces reported) and tracks; recorders run on
their cameras' threads and take the site's lock only while they record an
event (rare), never while the pipeline works.

For an unknown face it first asks whether this is a visitor seen within the
revisit window: one capture per visit and location, so at a location where
the visitor was already captured the earlier capture is referenced and
nothing new is saved, and elsewhere a new capture shows that location's
contact the face.  A watchlist person of a captured
category (`[captures] known_categories`) is captured the same way, once per
sighting: seen again within `[alerts] cooldown_minutes` at the same location,
the earlier capture is referenced.  The face crop of such a capture is
captioned as the camera's picture, so that nobody mistakes it for the enrolled
photo.  The sidecar keeps the encodings of the samples that voted for the
decision (rounded to 6 places): feedback on the event ("not this person",
edgeguard.review.feedback) reads them from there.  A no_mask event points
at the capture of the same face.  Every event is written to the event log and
logged as one line without personal details beyond the name; then it is
published on the event bus (edgeguard.outputs.bus), which hands it to the
outputs (alerts, the dashboard's live updates) on their own threads.

With a stranger store (edgeguard.events.strangers, kept by edgeguard.store.strangers) every unknown face
is also a remembered stranger, named in the event's `extra`; the first sighting of a new visit that the
rules call a return visit is followed by a `return_visit` event.  A `loitering` event (the rules' stays)
shows the capture of the face's decision on this camera.

How close a match is, in words a guard understands (`match_words`): "strong"
or "possible", by the one match rule (edgeguard.common.match_rule).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from ..common.match_rule import MatchThresholds
from ..config import CameraConfig, Config
from ..live.pipeline import FrameReport, Observation
from ..live.track import BestView, Track
from ..live.vote import Verdict
from .caption import captioned
from .event import DECISIONS, Event, EventType
from .rules import EventRules
from .storage import CaptureWriter, EventWriter
from .strangers import StrangerKeeper, StrangerSighting
from .visitors import UnknownVisitors, Visitor

log = logging.getLogger(__name__)

# A no_mask event reuses its face's capture; tracks are short-lived, so only the latest few need remembering.
RECENT_TRACKS = 64
LOGGED_ELSEWHERE_BATCH = 100  # events written by other processes taken up at a time


class Publisher(Protocol):
    """Where a logged event goes next: the event bus (edgeguard.outputs.bus.EventBus)."""

    def publish(self, event: Event) -> None: ...


class SiteEvents:
    """What every camera's events share: the event log, captures, the bus, visitors and sightings; it counts
    the events recorded (for the daemon's status)."""

    def __init__(
        self,
        config: Config,
        event_log: EventWriter,
        captures: CaptureWriter,
        bus: Publisher | None = None,
        strangers: StrangerKeeper | None = None,
    ) -> None:
        self.config = config
        self.event_log = event_log
        self.captures = captures
        self.bus = bus
        self.strangers = strangers  # None: strangers are not remembered beyond a visit
        self.recorded = 0  # events recorded since the start
        self.last_event: Event | None = None
        self.visitors = UnknownVisitors(config.events.revisit_minutes * 60, config.match_thresholds)
        self.sightings: dict[
            tuple[str, str], tuple[float, str | None]
        ] = {}  # (person Id, location) -> last capture
        self.lock = threading.Lock()
        self._logged = event_log.last_seq()  # the newest seq published (by this process or taken up)

    def recorder(self, camera: CameraConfig) -> EventRecorder:
        """The events stage of one camera."""
        return EventRecorder(self, camera)

    def append(self, event: Event) -> Event:
        """Write an event to the log, log it in one line and publish it on the bus (with the lock held: the
        bus gets the events in the event log's order, and publishing never waits)."""
        event = self.event_log.append(event)
        log.info("event %s", event.summary())
        self.recorded += 1
        self.last_event = event
        self._logged = max(self._logged, event.seq or 0)
        if self.bus is not None:
            self.bus.publish(event)
        return event

    def take_up_logged_elsewhere(self) -> int:
        """Publish the events another process wrote to the event log since (`edgeguard forget`'s erased
        event while the daemon runs), so the outputs get them at once; how many."""
        with self.lock:
            found = self.event_log.after(self._logged, LOGGED_ELSEWHERE_BATCH)
            for event in found:
                log.info("event %s (logged by another process)", event.summary())
                self._logged = event.seq or self._logged
                if self.bus is not None:
                    self.bus.publish(event)
            return len(found)

    def camera_event(
        self, camera: CameraConfig, kind: EventType, when: float, extra: dict[str, Any]
    ) -> Event:
        """A camera_down or camera_up event (edgeguard.events.camera_watch)."""
        event = Event(
            type=kind,
            time=when,
            camera=camera.name,
            location=camera.location,
            latitude=_position(camera, 0),
            longitude=_position(camera, 1),
            extra=extra,
        )
        with self.lock:
            return self.append(event)


class EventRecorder:
    def __init__(self, site: SiteEvents, camera: CameraConfig) -> None:
        config = site.config
        self.site = site
        self.camera = camera
        self.captures = site.captures
        self.rules = EventRules(config.events, config.mask, camera, visitor_of=self._visitor_of)
        self.visitors = site.visitors
        self.known_categories = config.captures.known_categories
        self.quiet_categories = config.alerts.quiet_categories
        self.sighting_seconds = config.alerts.cooldown_minutes * 60
        self.thresholds = config.match_thresholds
        self._track_captures: dict[int, tuple[str | None, int | None]] = {}  # track id -> capture, visitor
        self._follow_ups: list[Event] = []  # events that followed one `handle` recorded (return visits)

    def record(self, report: FrameReport) -> list[Event]:
        """The events of one frame, recorded and published."""
        due = self.rules.due(report)
        if not due:
            return []
        with self.site.lock:
            events = []
            for obs in due:
                events.append(self.handle(obs))
                events += self._follow_ups
                self._follow_ups = []
            return events

    def handle(self, obs: Observation) -> Event:
        """Record the event of one observation (and a return visit after an unknown face, if it is one)."""
        fields: dict[str, Any] = {}
        sighting: StrangerSighting | None = None
        if obs.kind == EventType.UNKNOWN_FACE:
            fields, sighting = self._unknown(obs)
        elif obs.kind == EventType.KNOWN_FACE and obs.person is not None:
            fields = self._known(obs)
        elif obs.kind == EventType.NO_MASK:
            fields = self._no_mask(obs)
        elif obs.kind == EventType.CROWD:
            fields = {"extra": {"count": obs.count}}
        elif obs.kind == EventType.LOITERING:
            fields = self._loitering(obs)
        event = self.site.append(self._event(obs, **fields))
        if obs.kind in DECISIONS and obs.track is not None:
            self._remember_capture(obs.track.id, event)
        if sighting is not None and sighting.new_visit:
            visits = self.rules.returned(sighting.visits, obs.frame.time)
            if visits:
                self._follow_ups.append(self._return_visit(obs, event, sighting.stranger, visits))
        return event

    def _return_visit(self, obs: Observation, seen: Event, stranger: int, visits: list[float]) -> Event:
        """A stranger back for another visit: their capture of now, and the start of each visit counted."""
        extra = {"stranger": stranger, "visits": [round(v, 3) for v in visits], "event": seen.seq}
        if "visitor" in seen.extra:
            extra["visitor"] = seen.extra["visitor"]
        return self.site.append(
            replace(self._event(obs), type=EventType.RETURN_VISIT, capture=seen.capture, extra=extra)
        )

    def _no_mask(self, obs: Observation) -> dict[str, Any]:
        """Who wears no mask: the person, or the unknown face's visitor and capture (the unknown_face
        event of the same track comes first), so the alert can show the face."""
        assert obs.track is not None
        fields: dict[str, Any] = {"extra": {"box": obs.track.box.as_list()}}
        if obs.person is not None:
            fields.update(person_id=obs.person.id, name=obs.person.name, category=obs.person.category or None)
        if obs.track.id in self._track_captures:
            capture, visitor = self._track_captures[obs.track.id]
            fields["capture"] = capture
            if visitor is not None:
                fields["extra"]["visitor"] = visitor
        return fields

    def _loitering(self, obs: Observation) -> dict[str, Any]:
        """Who stayed, for how long, and the capture of their face (the decision's, on this camera)."""
        assert obs.track is not None and obs.since is not None
        minutes = round((obs.frame.media_time - obs.since) / 60, 1)
        fields: dict[str, Any] = {"extra": {"minutes": minutes, "box": obs.track.box.as_list()}}
        if obs.person is not None:
            fields.update(person_id=obs.person.id, name=obs.person.name, category=obs.person.category or None)
        capture, visitor = self._track_captures.get(obs.track.id, (None, None))
        fields["capture"] = capture
        if visitor is not None:
            fields["extra"]["visitor"] = visitor
        return fields

    def _visitor_of(self, track: int) -> int | None:
        """The unknown visitor a track of this camera was recalled or remembered as."""
        return self._track_captures.get(track, (None, None))[1]

    def _remember_capture(self, track: int, event: Event) -> None:
        self._track_captures[track] = (event.capture, event.extra.get("visitor"))
        while len(self._track_captures) > RECENT_TRACKS:
            self._track_captures.pop(next(iter(self._track_captures)))

    def _known(self, obs: Observation) -> dict[str, Any]:
        """A watchlist person: who, how close a match, and the capture of this sighting if their category is
        captured."""
        track, person = obs.track, obs.person
        assert track is not None and person is not None
        best = track.take_view()  # captured or not, the track no longer needs the frame
        extra: dict[str, Any] = {
            "box": track.box.as_list(),
            "match": match_words(track, person.id, self.thresholds),
        }
        fields: dict[str, Any] = {
            "person_id": person.id,
            "name": person.name,
            "category": person.category or None,
            "extra": extra,
        }
        if not self._captured(person.category) or best is None:
            return fields
        last = self.site.sightings.get((person.id, self.camera.location))
        if last is not None and obs.frame.time - last[0] < self.sighting_seconds:
            fields["capture"] = last[1]  # the same sighting: its capture
            return fields
        crop = captioned(
            best.crop, f"{self.camera.location} {datetime.fromtimestamp(best.frame.time):%H:%M:%S}"
        )
        sidecar = {
            **self._sidecar(obs, best, track.encodings_for(person.id)),
            "person": {"id": person.id, "name": person.name, "category": person.category or None},
        }
        fields["capture"] = self._save(best, crop, sidecar, extra)
        self.site.sightings[(person.id, self.camera.location)] = (obs.frame.time, fields["capture"])
        return fields

    def _captured(self, category: str) -> bool:
        if "*" in self.known_categories:
            return category not in self.quiet_categories
        return category in self.known_categories

    def _save(
        self, best: BestView, crop: np.ndarray, sidecar: dict[str, Any], extra: dict[str, Any]
    ) -> str | None:
        """Write a capture; its face image's path, or None (the reason goes into `extra`)."""
        saved = self.captures.save(best.frame.time, self.camera.name, crop, best.frame.image, sidecar)
        if isinstance(saved, str):
            extra["capture_error"] = saved
            return None
        extra["frame_image"] = str(saved.frame)
        return str(saved.face)

    def _unknown(self, obs: Observation) -> tuple[dict[str, Any], StrangerSighting | None]:
        """An unknown face: its visitor (a capture per visit and location) and the stranger they are."""
        track = obs.track
        assert track is not None
        encodings = track.encodings_for(Verdict.UNKNOWN)
        if len(encodings) == 0:  # decided unknown for want of a majority: use every sample
            encodings = track.all_encodings()
        where, when = self.camera.location, obs.frame.time
        visitor = self.visitors.recall(encodings, when)
        if visitor is not None and where in visitor.captures:
            capture = visitor.captures[where]
            extra: dict[str, Any] = {"visitor": visitor.id, "revisit": True, "box": track.box.as_list()}
            return {"capture": capture, "extra": extra}, self._stranger(
                visitor, encodings, when, capture, 0, extra
            )
        best = track.take_view()  # saved or not, the track no longer needs the frame
        assert best is not None  # an undecided track that was sampled has a best view
        extra = {"box": track.box.as_list()}
        capture = self._save(best, best.crop, self._sidecar(obs, best, encodings), extra)
        if visitor is None:
            visitor = self.visitors.remember(encodings, when)
        visitor.captures[where] = capture
        extra["visitor"] = visitor.id
        sighting = self._stranger(visitor, encodings, when, capture, best.box.size, extra)
        return {"capture": capture, "extra": extra}, sighting

    def _stranger(
        self,
        visitor: Visitor,
        encodings: np.ndarray,
        when: float,
        capture: str | None,
        size: int,
        extra: dict[str, Any],
    ) -> StrangerSighting | None:
        """Which remembered stranger the visitor is (once per visit: later sightings of the visit are theirs
        too), kept in the stranger store; its id goes into the event's `extra`."""
        if self.site.strangers is None:
            return None
        place = (self.camera.name, self.camera.location)
        if visitor.stranger is None:
            sighting = self.site.strangers.sighted(encodings, when, *place, capture, size)
            visitor.stranger = sighting.stranger
        else:
            sighting = self.site.strangers.seen_again(visitor.stranger, when, *place, capture)
        extra["stranger"] = sighting.stranger
        return sighting

    def _sidecar(self, obs: Observation, best: BestView, encodings: np.ndarray) -> dict[str, Any]:
        """What the capture shows: the best view's frame, box and time, the decision's distance, and the
        encodings of the samples that voted for it."""
        assert obs.track is not None
        return {
            "time": best.frame.time,
            "camera": self.camera.name,
            "location": {
                "name": self.camera.location,
                "latitude": _position(self.camera, 0),
                "longitude": _position(self.camera, 1),
            },
            "box": best.box.as_list(),
            "distance": obs.distance,
            "frame": best.frame.number,
            "pos_ms": best.frame.pos_ms,
            "track": obs.track.id,
            "decided_at_frame": obs.frame.number,
            "encodings": [[round(float(x), 6) for x in encoding] for encoding in encodings],
        }

    def _event(self, obs: Observation, **fields: Any) -> Event:
        return Event(
            type=obs.kind,
            time=obs.frame.time,
            camera=self.camera.name,
            location=self.camera.location,
            latitude=_position(self.camera, 0),
            longitude=_position(self.camera, 1),
            distance=obs.distance,
            frame=obs.frame.number,
            pos_ms=obs.frame.pos_ms,
            track=obs.track.id if obs.track else None,
            **fields,
        )


def _position(camera: CameraConfig, axis: int) -> float | None:
    """The camera's latitude (axis 0) or longitude (1), None when its position is not given."""
    return (camera.latitude, camera.longitude)[axis] if camera.has_position else None


def match_words(track: Track, person_id: str, thresholds: MatchThresholds) -> str:
    """ "strong" or "possible" (`MatchThresholds.words`) from the median distance of the samples that named
    `person_id`: not the nearest one, which gets nearer the more samples happen to be in, nor a pooled
    decision's distance (a mean encoding's, nearer than any sample's), so that the same face in the same
    frames is worded alike however many samples the vote took.  A match named by pooling alone, with no
    sample of its own, is "possible"."""
    own = [s.distance for s in track.samples if s.label == person_id and s.distance is not None]
    others = any(isinstance(s.label, str) and s.label != person_id for s in track.samples)
    return thresholds.words(float(np.median(own)) if own else None, others)
