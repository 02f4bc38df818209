"""Push cameras (edgeguard.sources.push): no reader thread.

`start()` attaches the reader to the camera's `PushFeed`, and the web worker
that received and decoded a frame puts it into the slot (newest wins).  The
state is worked out from the time of the last pushed frame whenever it is asked
for (or `read()` finds nothing), so it is right even while the pipeline is
busy; a push camera never ends.
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote

import numpy as np

from ..config import CameraConfig
from .base import Frame, SourceError
from .push import PushFeed
from .reader import Reader
from .slot import FrameSlot
from .spec import SourceSpec
from .status import SourceStatus

log = logging.getLogger("edgeguard.capture")


class PushReader(Reader):
    def __init__(
        self,
        cfg: CameraConfig,
        spec: SourceSpec,
        slot: FrameSlot,
        stop: threading.Event,
        status: SourceStatus,
        feed: PushFeed | None,
    ) -> None:
        super().__init__(cfg, spec, slot, stop, status)
        self.feed = feed
        self.path = "/upload_frame/" + quote(cfg.name, safe="")

    def start(self) -> None:
        if self.feed is None:
            raise SourceError(
                f"camera {self.cfg.name}: source push takes frames from the dashboard's server, "
                "but no push feed was given"
            )
        self.status.describe(f"push {self.path} (waiting for pushed frames)")
        log.info("camera %s: waiting for pushed frames at %s", self.cfg.name, self.path)
        self.feed.attach(self._deliver)

    def detach(self) -> None:
        if self.feed is not None:
            self.feed.detach(self._deliver)

    def join(self, timeout: float) -> None:
        """Nothing to wait for: a push camera has no thread of its own."""

    def refresh(self) -> None:
        """Streaming becomes stalled once no frame was pushed for read_timeout; the change is logged once."""
        if self.status.stall_after(self.cfg.read_timeout):
            log.warning(
                "camera %s: no pushed frame for %g s at %s", self.cfg.name, self.cfg.read_timeout, self.path
            )

    def _deliver(self, image: np.ndarray, arrived: float) -> int | None:
        """Called by a web worker for each decoded frame: replace whatever is in the slot; its number."""
        height, width = image.shape[:2]
        arrival = self.status.arrived(f"push {self.path} (last {width}x{height})")
        if arrival is None:
            return None
        number, was, gap = arrival
        if not self.slot.put(Frame(image, number, None, arrived), wait=False):
            return None
        if was == "opening":
            log.info("camera %s: receiving pushed frames (%dx%d)", self.cfg.name, width, height)
        elif gap is not None and gap > self.cfg.read_timeout:
            log.info("camera %s: pushed frames again after %.1f s without", self.cfg.name, gap)
        return number
