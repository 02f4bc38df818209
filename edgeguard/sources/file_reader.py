"""Video files: the reader thread decodes the file and puts each frame into the slot.

Not realtime, it waits until the pipeline has taken the previous frame, so
every frame is delivered in order.  Realtime, it paces itself by the file's fps
and overwrites a frame the pipeline has not taken yet, like a camera.  With
`loop = true` it starts again at frame 0 at the end.
"""

from __future__ import annotations

import logging
import threading
import time

import cv2

from ..config import CameraConfig
from .base import BadFrames, Frame, SourceError
from .reader import ThreadReader
from .slot import FrameSlot
from .spec import SourceSpec
from .status import SourceStatus
from .video_file import VideoFile, frame_number, next_image, open_video_file

log = logging.getLogger("edgeguard.capture")


class FileReader(ThreadReader):
    def __init__(
        self,
        cfg: CameraConfig,
        spec: SourceSpec,
        slot: FrameSlot,
        stop: threading.Event,
        status: SourceStatus,
        realtime: bool,
    ) -> None:
        super().__init__(cfg, spec, slot, stop, status)
        self.realtime = realtime
        self._video: VideoFile | None = None

    def start(self) -> None:
        self._video = open_video_file(self.spec.target)
        self.status.opened(self._video.description)
        self.start_thread()

    def run(self) -> None:
        video = self._video
        assert video is not None  # start() opened it
        try:
            while self._play(video) and self.cfg.loop and not self.stop.is_set():
                log.debug("camera %s: end of file, starting again at frame 0", self.cfg.name)
                video = self._rewound(video)
        except SourceError as exc:  # the file vanished or changed between passes
            log.error("camera %s: %s", self.cfg.name, exc)
        finally:
            video.cap.release()
        self.slot.finish()
        if self.slot.wait_drained():
            self.status.set_state("ended", f"end of video file {self.spec.target}")

    def _rewound(self, video: VideoFile) -> VideoFile:
        """The file at frame 0 again: by seeking, else opened anew.  Seeking first matters with several
        cameras: OpenCV opens FFmpeg captures one at a time, so a stream hanging in its open (a camera
        being reconnected) would hold up the reopening of this file for as long."""
        if video.cap.set(cv2.CAP_PROP_POS_FRAMES, 0) and video.cap.get(cv2.CAP_PROP_POS_FRAMES) == 0:
            return video
        video.cap.release()
        return open_video_file(self.spec.target)

    def _play(self, video: VideoFile) -> int:
        """Deliver one pass over the file; how many frames were delivered."""
        fps = video.fps or float(self.cfg.fps)
        playing = f"playing {video.description}" + (" in real time" if self.realtime else "")
        bad = BadFrames(self.cfg.name)
        shape: tuple[int, ...] | None = None
        start: float | None = None  # real time of frame 0, once the pipeline took the first frame
        number = -1
        delivered = 0
        while not self.stop.is_set():
            image = next_image(video.cap, shape)
            if image is None:
                break
            shape = image.shape
            pos_ms = video.cap.get(cv2.CAP_PROP_POS_MSEC)
            previous, number = number, frame_number(pos_ms, video.fps, number)
            if number > previous + 1:  # the frames in between were unreadable or dropped by the decoder
                bad.skipped(number - previous - 1)
            if (
                self.realtime
                and start is not None
                and self.stop.wait(max(0.0, start + number / fps - time.monotonic()))
            ):
                break
            if not self.slot.put(Frame(image, number, pos_ms, time.time()), wait=not self.realtime):
                break
            if self.realtime and start is None:
                # The replay clock starts when the pipeline takes its first frame, so
                # that a slow start-up does not skip the opening of the footage.
                if not self.slot.wait_drained():
                    break
                start = time.monotonic() - number / fps
            delivered += 1
            self.status.set_state("streaming", playing)
        if not self.stop.is_set() and 0 <= number < video.frame_count - 1:
            log.warning(
                "camera %s: %s ends unreadable after frame %d of %d",
                self.cfg.name, self.spec.target, number, video.frame_count,
            )  # fmt: skip
        return delivered
