"""`MqttOutput`: the event bus's MQTT output.  Every event goes to `<prefix>/events` and
`<prefix>/<camera>/events` (QoS 1), with the camera's retained state (last known and unknown face, crowd)
and a person's "last seen"; Home Assistant is told what the device offers (edgeguard.outputs.mqtt.discovery).

Nothing is lost: the event log is the outbox.  The bus hands over events in seq order (after a start, from
the output's cursor on); an event counts as delivered once the broker has acknowledged every message of it,
and `delivered(seq)` is called with the highest seq whose events, and all before it, are acknowledged, which
is what the bus keeps as the cursor.  What was handed over and not acknowledged when the process ends (a
broker outage, a restart, `kill -9`) is handed over again on the next start, so delivery is at least once;
consumers drop duplicates by `event_id`.  While the broker is away, paho keeps the messages and sends them
in order once it is back; at most WINDOW events wait at once, after which `handle` waits on the output's own
thread (never the frame loop's) until the broker catches up.  A message the broker refuses (a PUBACK with an
error, e.g. not authorised for the topic) is logged and sent again a minute later.

An `erased` event (edgeguard forget) goes to `<prefix>/events` for consumers (the fleet hub drops the
person's rows and thumbnails) and clears what the broker retains about the person or captures: the person's
"last seen", each camera's last known face that names them and last unknown face that shows an erased
capture (cleared too where this run does not know what the broker retains), and Home Assistant's entities of
the person (announced again without them).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...common.ratelimit import EveryMinute
from ...config import Config
from ...events.event import Event, EventType
from ...store.face_captures import CaptureError, CaptureFolder, capture_id
from ...watchlist.build import Watchlist
from ..base import Output, OutputStatus
from .client import Connection
from .discovery import Announcement, chosen_people, config_topic, device_config
from .schema import Topics, event_payload, iso_time

log = logging.getLogger(__name__)

WINDOW = 1000  # events handed to paho and not yet acknowledged, at most
RETRY_SECONDS = 60.0  # a message the broker refused is sent again after this
TICK = 1.0  # seconds between rounds of the state thread
PEOPLE_REPEAT = (
    10.0  # seconds: people in view above 0 is published again this often (Home Assistant's off_delay)
)
WATCHLIST_EVERY = 30.0  # seconds between looks at the watchlist for people to announce or remove
RETAINED_WAIT = 2.0  # seconds to wait for the earlier discovery message after connecting

Message = tuple[str, bytes, bool]  # topic, payload, retained


@dataclass(frozen=True)
class MqttStatus(OutputStatus):
    """The output's state for `edgeguard check`, the status line and the dashboard; `backlog`: events handed
    over and not yet acknowledged, `state` the connection's ("connected to host:port", "connecting",
    "refused: ...", "cannot connect: ...", "no MQTT answer: ..."), `fault` the same while it is not
    connected."""

    connected: bool = False
    delivered: int | None = None  # the seq up to which every event is acknowledged (this run)


class Delivery:
    """The events handed over and not yet acknowledged, in seq order, and how many of each one's messages
    the broker has still to acknowledge."""

    def __init__(self, delivered: Callable[[int], None]) -> None:
        self._delivered = delivered
        self._changed = threading.Condition()
        self._left: dict[int, int] = {}  # seq -> messages not acknowledged (insertion order = seq order)
        self.last: int | None = None

    def expect(self, seq: int, messages: int) -> None:
        with self._changed:
            self._left[seq] = messages

    def acknowledged(self, seq: int) -> None:
        """One message of event `seq` acknowledged; `delivered` hears of the new high-water mark, in order."""
        with self._changed:
            self._left[seq] -= 1
            advanced = False
            while self._left and self._left[first := next(iter(self._left))] == 0:
                del self._left[first]
                self.last, advanced = first, True
            if advanced:
                self._delivered(self.last)
                self._changed.notify_all()

    @property
    def backlog(self) -> int:
        with self._changed:
            return len(self._left)

    def wait_below(self, limit: int, stop: threading.Event) -> bool:
        """Wait until fewer than `limit` events wait for acknowledgement; False if `stop` came first."""
        with self._changed:
            while len(self._left) >= limit:
                if stop.is_set():
                    return False
                self._changed.wait(0.5)
            return True

    def wait_empty(self, seconds: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._left, timeout=seconds)


class MqttOutput(Output):
    """The MQTT output of the event bus: start, handle(event), status, stop (see the module docstring).

    `links` makes a capture's signed link (alerts' `SignedLinks.link_for`); `people_in_view` reports each
    camera's people in view (camera name -> count) and `watchlist` the current watchlist, both read on the
    output's own thread; without them the entities that need them are not announced.
    """

    name = "mqtt"
    durable = True
    acknowledges = True
    replay_seconds = 30 * 86400.0  # events are data: every one goes out, however long the broker was away

    def __init__(
        self,
        config: Config,
        delivered: Callable[[int], None] | None = None,
        links: Callable[[Path], str | None] | None = None,
        people_in_view: Callable[[], Mapping[str, int]] | None = None,
        watchlist: Callable[[], Watchlist] | None = None,
        new_watchlist: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.new_watchlist = new_watchlist  # the fleet hub says it has a newer watchlist bundle
        self.settings = config.mqtt
        self.device = config.mqtt.device_id
        self.topics = Topics(config.mqtt.topic_prefix)
        self.links = links
        self.people_in_view = people_in_view
        self.watchlist = watchlist
        self.delivery = Delivery(delivered or (lambda seq: None))
        self.connection = Connection(
            config.mqtt, f"edgeguard-{self.device}", self.topics.availability, on_connected=self._connected
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mqtt-state", daemon=True)
        self._lock = threading.Lock()  # guards the state below, shared with paho's thread
        self._retry: list[tuple[float, int, Message]] = []  # (when, seq, message) refused by the broker
        self._announce_at: float | None = None
        self._announced: dict[str, Any] = {}  # the components of the last discovery message
        self._people: dict[str, tuple[int, float]] = {}  # camera -> (count published, when)
        self._crowd: dict[str, bool] = {}
        self._persons: tuple = ()
        self._erased: set[str] = (
            set()
        )  # Ids erased this run, kept out of discovery while the watchlist has them
        self._last_known: dict[str, str] = {}  # camera -> Id of its retained last known face (this run)
        self._last_unknown: dict[str, str] = {}  # camera -> capture id of its retained last unknown face
        self._next_watchlist = 0.0
        self._logged = EveryMinute()
        self._max_people = {camera.name: camera.max_people for camera in config.cameras}

    # --- the bus's interface ------------------------------------------------------------------

    def start(self) -> None:
        log.info(
            "mqtt: publishing to %s as %s under %s", self.settings.broker, self.device, self.topics.prefix
        )
        self.connection.start()
        self._thread.start()

    def handle(self, event: Event) -> None:
        """Hand one stored event to the broker (waits, on the caller's thread, while WINDOW events wait)."""
        if event.seq is None:
            raise ValueError("MqttOutput.handle: the event has no seq (it is not from the event log)")
        if not self.delivery.wait_below(WINDOW, self._stop):
            return  # stopping: the event stays after the cursor and is handed over again on the next start
        messages = self._messages(event)
        self.delivery.expect(event.seq, len(messages))
        for message in messages:
            self._send(event.seq, message)

    def bind(self, delivered: Callable[[int], None]) -> None:
        """The bus's cursor: moved as the broker acknowledges (see the module docstring)."""
        self.delivery = Delivery(delivered)

    def status(self) -> MqttStatus:
        connected = self.connection.connected.is_set()
        return MqttStatus(
            self.name,
            fault="" if connected else self.connection.state,
            backlog=self.delivery.backlog,
            state=self.connection.state,
            connected=connected,
            delivered=self.delivery.last,
        )

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop; with `drain_seconds`, first give what is not yet acknowledged that long."""
        if drain_seconds > 0 and not self.delivery.wait_empty(drain_seconds):
            log.warning(
                "mqtt: %d event(s) not acknowledged by the broker at exit; published again on the next start",
                self.delivery.backlog,
            )
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.connection.stop()

    # --- events -------------------------------------------------------------------------------

    def _messages(self, event: Event) -> list[Message]:
        """The messages of one event: the event on both topics, then the retained state it changes."""
        url = self._link(event)
        body = _json(event_payload(event, self.device, url))
        if event.type == EventType.ERASED:
            return self._erased_messages(event, body)
        camera = event.camera
        out: list[Message] = [
            (self.topics.events, body, False),
            (self.topics.camera(camera, "events"), body, False),
        ]
        if event.type == "unknown_face":
            self._last_unknown[camera] = capture_id(event.capture) or ""
            out.append((self.topics.camera(camera, "last_unknown"), body, True))
            if url:
                out.append((self.topics.camera(camera, "last_unknown/url"), url.encode(), True))
            image = self._face_image(event)
            if image is not None:
                out.append((self.topics.camera(camera, "last_unknown/image"), image, True))
        elif event.type == "known_face" and event.person_id:
            self._last_known[camera] = event.person_id
            out.append((self.topics.camera(camera, "last_known"), body, True))
            if event.category in self.settings.person_categories:
                out.append((self.topics.last_seen(event.person_id), _json(_last_seen(event)), True))
        elif event.type == "crowd":
            with self._lock:
                self._crowd[camera] = True
            out.append((self.topics.camera(camera, "crowd"), b"ON", True))
        return out

    def _erased_messages(self, event: Event, body: bytes) -> list[Message]:
        """The erasure for consumers, and empty retained messages (which the broker deletes) for what it
        retains about the erased person or captures; the person's entities leave Home Assistant."""
        out: list[Message] = [(self.topics.events, body, False)]
        person, captures = event.person_id, set(event.extra.get("captures", ()))
        for camera in (c.name for c in self.config.cameras):
            if person and self._last_known.get(camera, person) == person:
                self._last_known.pop(camera, None)
                out.append((self.topics.camera(camera, "last_known"), b"", True))
            if captures and self._last_unknown.get(camera, next(iter(captures))) in captures:
                self._last_unknown.pop(camera, None)
                out += [
                    (self.topics.camera(camera, what), b"", True)
                    for what in ("last_unknown", "last_unknown/url", "last_unknown/image")
                ]
        if person:
            out.append((self.topics.last_seen(person), b"", True))
            with self._lock:
                self._erased.add(person)
                kept = tuple(p for p in self._persons if p.id != person)
                if kept != self._persons:
                    self._persons, self._announce_at = kept, time.monotonic()
        return out

    def _link(self, event: Event) -> str | None:
        if (
            self.links is None
            or not event.capture
            or event.type not in ("unknown_face", "known_face", "no_mask")
        ):
            return None
        return self.links(Path(event.capture))

    def _face_image(self, event: Event) -> bytes | None:
        """The face image bytes, only where [mqtt] face_images allows them on the broker."""
        if not self.settings.face_images or not event.capture:
            return None
        capture = CaptureFolder.of_config(self.config).of(event.capture)
        if capture is None:
            return None
        try:
            return capture.read("face")  # opened with the data key when captures are encrypted
        except (OSError, CaptureError) as exc:
            if self._logged.due("image"):
                log.warning("mqtt: cannot read the face image of event %s for the broker: %s", event.seq, exc)
            return None

    def _send(self, seq: int, message: Message) -> None:
        topic, payload, retain = message
        try:
            self.connection.publish(
                topic, payload, retain, done=lambda ok, why: self._acked(seq, message, ok, why)
            )
        except OSError as exc:
            self._refused(seq, message, str(exc))

    def _acked(self, seq: int, message: Message, ok: bool, reason: str) -> None:
        if ok:
            self.delivery.acknowledged(seq)
        else:
            self._refused(seq, message, f"the broker refused it: {reason}")

    def _refused(self, seq: int, message: Message, reason: str) -> None:
        if self._logged.due(f"refused {reason}"):
            log.error(
                "mqtt: event %s to %s not delivered (%s); trying again every %d s",
                seq,
                message[0],
                reason,
                RETRY_SECONDS,
            )
        with self._lock:
            self._retry.append((time.monotonic() + RETRY_SECONDS, seq, message))

    # --- the state thread: retries, people in view, crowd, discovery ------------------------

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self._round(time.monotonic())
            except Exception:  # a bug here must not end the thread (events go on without the state)
                if self._logged.due("round"):
                    log.exception("mqtt: the state thread failed a round")

    def _round(self, now: float) -> None:
        with self._lock:
            due = [r for r in self._retry if r[0] <= now]
            self._retry = [r for r in self._retry if r[0] > now]
        for _, seq, message in due:
            self._send(seq, message)
        if not self.connection.connected.is_set():
            return
        if self.people_in_view is not None:
            self._publish_people(self.people_in_view(), now)
        if self.settings.discovery:
            self._look_at_watchlist(now)
            with self._lock:
                announce = self._announce_at is not None and now >= self._announce_at
            if announce:
                self._announce()

    def _publish_people(self, counts: Mapping[str, int], now: float) -> None:
        """People in view per camera: on a change, and every PEOPLE_REPEAT s while someone is there; the
        crowd goes off once the count is back within the camera's max_people."""
        for camera, count in counts.items():
            last = self._people.get(camera)
            if last is None or last[0] != count or (count > 0 and now - last[1] >= PEOPLE_REPEAT):
                self.connection.publish(
                    self.topics.camera(camera, "people"), str(count).encode(), retain=True
                )
                self._people[camera] = (count, now)
            with self._lock:
                crowd_over = self._crowd.get(camera) and count <= self._max_people.get(camera, 0)
                if crowd_over:
                    self._crowd[camera] = False
            if crowd_over:
                self.connection.publish(self.topics.camera(camera, "crowd"), b"OFF", retain=True)

    def _look_at_watchlist(self, now: float) -> None:
        if self.watchlist is None or now < self._next_watchlist:
            return
        self._next_watchlist = now + WATCHLIST_EVERY
        people = self.watchlist().people.values()
        with self._lock:
            self._erased &= {p.id for p in people}  # gone from the watchlist: nothing left to keep out
            erased = set(self._erased)
        persons = chosen_people((p for p in people if p.id not in erased), self.settings.person_categories)
        with self._lock:
            if persons != self._persons:
                self._persons = persons
                self._announce_at = now

    # --- Home Assistant -----------------------------------------------------------------------

    def _connected(self) -> None:
        """On paho's thread, after each connect: listen for the fleet hub's notice of a new watchlist, for
        Home Assistant's birth message and for the device's own earlier discovery message (to remove what
        is gone), then announce."""
        if self.new_watchlist is not None:
            notice = f"edgeguard/{self.device}/watchlist"
            self.connection.client.message_callback_add(notice, lambda *_: self.new_watchlist())
            self.connection.client.subscribe(notice, qos=1)
            self.new_watchlist()  # a notice sent while the device was away is not kept for it: look now
        if not self.settings.discovery:
            return
        client = self.connection.client
        own = config_topic(self.settings.discovery_prefix, self.device)
        status = f"{self.settings.discovery_prefix}/status"
        client.message_callback_add(own, self._earlier_announcement)
        client.message_callback_add(status, self._home_assistant_status)
        client.subscribe([(own, 1), (status, 1)])
        with self._lock:
            self._announce_at = time.monotonic() + RETAINED_WAIT

    def _earlier_announcement(self, client: Any, _userdata: Any, message: Any) -> None:
        """The retained discovery message: the components announced before (by this or an earlier run)."""
        client.unsubscribe(message.topic)
        try:
            components = json.loads(message.payload or b"{}").get("cmps", {})
        except (ValueError, AttributeError):
            components = {}
        with self._lock:
            if isinstance(components, dict):
                self._announced = {**components, **self._announced}
            self._announce_at = time.monotonic()

    def _home_assistant_status(self, _client: Any, _userdata: Any, message: Any) -> None:
        if message.payload == b"online":
            log.info("mqtt: Home Assistant came online; announcing the device again")
            with self._lock:
                self._announce_at = time.monotonic()

    def _announce(self) -> None:
        with self._lock:
            self._announce_at = None
            previous, persons = self._announced, self._persons
        what = Announcement(
            self.device,
            self.topics,
            self.config.cameras,
            people_in_view=self.people_in_view is not None,
            image="url" if self.links is not None else ("image" if self.settings.face_images else ""),
            people=persons,
        )
        payload = device_config(what, previous)
        with self._lock:
            self._announced = {k: v for k, v in payload["cmps"].items() if len(v) > 1}
        topic = config_topic(self.settings.discovery_prefix, self.device)
        self.connection.publish(topic, _json(payload), retain=True)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _last_seen(event: Event) -> dict[str, Any]:
    return {
        "time": iso_time(event.time),
        "location": event.location,
        "camera": event.camera,
        "latitude": event.latitude,
        "longitude": event.longitude,
    }
