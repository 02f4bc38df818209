"""How a source's frames reach the pipeline: the interface of the three strategies FrameSource uses.

Each reader hands frames to the one-frame slot (edgeguard.sources.slot) and
keeps the source's state (edgeguard.sources.status) current: a video file
(`FileReader`, sources/file_reader.py), a live source reconnected with backoff
(`LiveReader`, sources/live_reader.py) or a push camera (`PushReader`,
sources/push_reader.py).  `FrameSource` (edgeguard.capture) owns the slot, the
stop event and the status, and chooses the reader by the kind of source.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod

from ..config import CameraConfig
from .slot import FrameSlot
from .spec import SourceSpec
from .status import SourceStatus

STOP_TIMEOUT = 2.0  # FrameSource.stop() returns after at most about this long


class Reader(ABC):
    """One way of reading a source into the slot."""

    def __init__(
        self,
        cfg: CameraConfig,
        spec: SourceSpec,
        slot: FrameSlot,
        stop: threading.Event,
        status: SourceStatus,
    ) -> None:
        self.cfg = cfg
        self.spec = spec
        self.slot = slot
        self.stop = stop
        self.status = status

    @abstractmethod
    def start(self) -> None:
        """Begin delivering frames; SourceError if the source can never work."""

    @abstractmethod
    def detach(self) -> None:
        """Stop taking frames from others (called by FrameSource.stop() before the slot is cancelled)."""

    @abstractmethod
    def join(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the reader's own thread, if it has one, to end."""

    @abstractmethod
    def refresh(self) -> None:
        """Bring a state that depends on the time since the last frame up to date."""


class ThreadReader(Reader):
    """A reader with a thread of its own, which ends when the stop event is set."""

    _thread: threading.Thread | None = None

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"capture-{self.cfg.name}", daemon=True)
        self._thread.start()

    @abstractmethod
    def run(self) -> None:
        """The reader thread."""

    def detach(self) -> None:
        """Nothing to detach: the thread reads the source itself and ends with the stop event."""

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def refresh(self) -> None:
        """Nothing to do: the thread sets the state as frames come or stop coming."""
