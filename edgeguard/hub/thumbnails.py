"""Thumbnails of the captures the devices keep: when the hub stores an event with a signed `capture_url`, a
worker fetches the image from the device (at most MAX_BYTES, within FETCH_SECONDS in all), checks it decodes
as an image, shrinks it to at most SIZE pixels a side and stores it beside the event, so a device going
offline later does not blank the hub's history.  A link that fails, hangs or returns garbage is logged once
(a minute, per device and reason) and skipped; ingest never waits for it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..common.ratelimit import EveryMinute
from .store import HubStore

log = logging.getLogger(__name__)

MAX_BYTES = 4 * 1024 * 1024  # a capture's image larger than this is not read
FETCH_SECONDS = 10.0  # the whole fetch, however slowly the bytes come
SIZE = 240  # a thumbnail's longer side, pixels
QUEUE = 10_000  # links waiting at most; beyond, new ones are logged and skipped


class ThumbnailError(ValueError):
    """Why a capture link gave no thumbnail."""


@dataclass(frozen=True)
class Wanted:
    event_id: str
    device: str
    url: str


def fetch(url: str, max_bytes: int = MAX_BYTES, seconds: float = FETCH_SECONDS) -> bytes:
    """The body at `url` (http or https), within `seconds` in all and at most `max_bytes`."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ThumbnailError("not an http or https link")
    deadline = time.monotonic() + seconds
    try:
        with urllib.request.urlopen(url, timeout=seconds) as response:
            chunks, size = [], 0
            while chunk := response.read1(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise ThumbnailError(f"more than {max_bytes // 1024} KB")
                if time.monotonic() > deadline:
                    raise ThumbnailError(f"not done within {seconds:.0f} s")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise ThumbnailError(f"HTTP {exc.code}") from None
    except (OSError, urllib.error.URLError) as exc:  # refused, a timeout, TLS
        raise ThumbnailError(f"cannot fetch ({getattr(exc, 'reason', exc)})") from None
    return b"".join(chunks)


def decode(data: bytes) -> np.ndarray | None:
    """The image of `data` (BGR), None if the bytes are no image OpenCV reads."""
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None


def is_image(data: bytes) -> bool:
    return decode(data) is not None


def thumbnail(data: bytes) -> bytes:
    """A JPEG of at most SIZE pixels a side of an image's bytes; ThumbnailError if they are no image."""
    image = decode(data)
    if image is None:
        raise ThumbnailError("not an image")
    scale = SIZE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ThumbnailError("cannot encode the thumbnail")
    return jpeg.tobytes()


class Thumbnails:
    """The worker threads fetching thumbnails of newly stored events."""

    def __init__(self, store: HubStore, workers: int = 4, seconds: float = FETCH_SECONDS) -> None:
        self.store = store
        self.seconds = seconds
        self._queue: queue.Queue[Wanted | None] = queue.Queue(QUEUE)
        self._logged = EveryMinute()
        self._threads = [
            threading.Thread(target=self._run, name=f"hub-thumbnails-{n}", daemon=True)
            for n in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for _ in self._threads:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout=2 * self.seconds + 1)

    def stored(self, rows: list[dict]) -> None:
        """The events just stored: their capture links queued (never waiting)."""
        for row in rows:
            if not row.get("capture_url"):
                continue
            try:
                self._queue.put_nowait(Wanted(row["event_id"], row["device"], row["capture_url"]))
            except queue.Full:
                self._skip(row["device"], "too many thumbnails waiting")

    def _run(self) -> None:
        while (wanted := self._queue.get()) is not None:
            self.take(wanted)

    def take(self, wanted: Wanted) -> bool:
        try:
            image = thumbnail(fetch(wanted.url, seconds=self.seconds))
        except ThumbnailError as exc:
            self._skip(wanted.device, str(exc))
            return False
        try:
            self.store.add_thumbnail(wanted.event_id, image)
        except Exception as exc:  # the database is away: the event is kept, its thumbnail is not
            self._skip(wanted.device, f"cannot store it ({type(exc).__name__})")
            return False
        return True

    def _skip(self, device: str, reason: str) -> None:
        if self._logged.due(f"{device} {reason.split(' ')[0]}"):
            log.warning("hub: no thumbnail for an event of %s: %s", device[:64], reason)
