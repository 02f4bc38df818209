"""The live view: the latest frame of each camera with its tracked faces, as JPEG, only while someone watches.

The frame loop hands over its frame and what it knows of the faces in it
(`publish`, a few dictionary assignments: no copy, no encoding) when somebody
watches or a snapshot is due; the viewers' threads draw the boxes and encode
the JPEG, once per frame for all viewers, at most `live_fps` times a second.
So nobody watching costs the frame loop nothing, and viewers cost it nothing
but the CPU their encoding takes from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..detect import Box
from ..live.track import Track
from ..live.vote import Verdict
from ..store.face_captures import encode_jpeg
from ..watchlist.details import Person
from .slots import Slots

SNAPSHOT_EVERY = 2.0  # seconds between the overview's still frames when nobody watches live
# Live views one user may hold at once: two (a second tab or device), or one per camera where there are more,
# as the live page shows every camera at once; below `[web] max_live_viewers`, that leaves room for others.
LIVE_VIEWS_PER_USER = 2
JPEG_QUALITY = 75
COLOURS = {"known": (60, 200, 60), "unknown": (40, 40, 230), "deciding": (200, 200, 200)}


@dataclass(frozen=True)
class FaceLabel:
    box: Box
    text: str  # "Lin-Manuel Miranda, no mask", "unknown, mask", "..." while deciding
    kind: str  # "known", "unknown" or "deciding"


@dataclass
class _Camera:
    image: np.ndarray | None = None
    faces: list[FaceLabel] = field(default_factory=list)
    seq: int = 0
    taken: float = 0.0
    jpeg: bytes = b""
    jpeg_seq: int = -1


class LiveHub:
    def __init__(self, live_fps: float, max_viewers: int, per_user: int = LIVE_VIEWS_PER_USER) -> None:
        self.live_fps = live_fps
        self.max_viewers = max_viewers
        self._cond = threading.Condition()
        self._cameras: dict[str, _Camera] = {}
        self._viewers = Slots(max_viewers, per_user)
        self._closed = False

    @property
    def viewers(self) -> int:
        return self._viewers.taken

    def wants(self, camera: str, now: float) -> bool:
        """Whether the frame loop should publish this camera's frame now (cheap: called on every frame)."""
        cam = self._cameras.get(camera)
        return self._viewers.taken > 0 or cam is None or now - cam.taken >= SNAPSHOT_EVERY

    def publish(self, camera: str, image: np.ndarray, faces: list[FaceLabel], now: float) -> None:
        with self._cond:
            cam = self._cameras.setdefault(camera, _Camera())
            cam.image, cam.faces, cam.taken = image, faces, now
            cam.seq += 1
            self._cond.notify_all()

    def join(self, user: str) -> None:
        """Take a viewer's place for `user`; SlotsFull when max_viewers are watching already, or when the user
        holds their share of the places."""
        self._viewers.take(user)

    def leave(self, user: str) -> None:
        self._viewers.give_back(user)

    def snapshot(self, camera: str) -> bytes | None:
        """The latest frame of `camera` as JPEG, or None before the first one."""
        with self._cond:
            cam = self._cameras.get(camera)
            if cam is None or cam.image is None:
                return None
        return self._encoded(cam)

    def frames(self, camera: str, stop: threading.Event):
        """JPEG frames of `camera` as they come, at most live_fps a second, until `stop` is set."""
        last = -1
        interval = 1.0 / self.live_fps
        while not (stop.is_set() or self._closed):
            started = time.monotonic()
            with self._cond:
                self._cond.wait_for(
                    lambda last=last: stop.is_set() or self._closed or self._seq(camera) != last, timeout=1.0
                )
                cam = self._cameras.get(camera)
                if cam is None or cam.image is None or cam.seq == last:
                    continue
                last = cam.seq
            yield self._encoded(cam)
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def close(self) -> None:
        """End every live view now (the daemon is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _seq(self, camera: str) -> int:
        cam = self._cameras.get(camera)
        return cam.seq if cam is not None else -1

    def _encoded(self, cam: _Camera) -> bytes:
        with self._cond:
            if cam.jpeg_seq == cam.seq:
                return cam.jpeg
            seq, image, faces = cam.seq, cam.image, cam.faces
        assert image is not None
        jpeg = encode_jpeg(_draw(image, faces), JPEG_QUALITY)
        with self._cond:
            if cam.seq == seq:
                cam.jpeg, cam.jpeg_seq = jpeg, seq
        return jpeg


def _draw(image: np.ndarray, faces: list[FaceLabel]) -> np.ndarray:
    out = image.copy()
    for face in faces:
        b, colour = face.box, COLOURS[face.kind]
        cv2.rectangle(out, (b.left, b.top), (b.right, b.bottom), colour, 2)
        text = face.text.encode("ascii", "replace").decode()
        (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        y = max(h + 4, b.top)
        cv2.rectangle(out, (b.left, y - h - 4), (b.left + w + 4, y), colour, -1)
        cv2.putText(out, text, (b.left + 2, y - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def face_labels(tracks: Iterable[Track], people: Mapping[str, Person]) -> list[FaceLabel]:
    """What the live view writes on each tracked face: who (or unknown, or ... while deciding), mask or no
    mask."""
    labels = []
    for track in tracks:
        if track.decided is None:
            text, kind = "...", "deciding"
        elif track.decided is Verdict.UNKNOWN:
            text, kind = "unknown", "unknown"
        else:
            person = people.get(track.decided)
            text, kind = (person.name if person else str(track.decided)), "known"
        if track.masked is not None:
            text += ", mask" if track.masked else ", no mask"
        labels.append(FaceLabel(track.box, text, kind))
    return labels
