"""Events and captures written by the real events stage (EventRecorder, EventLog, CaptureStore) from real
photos, for the feedback tests; and `edgeguard feedback` / `edgeguard analyze` on such a site."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import helpers  # tests/helpers.py
from conftest import Site

from edgeguard.capture import Frame
from edgeguard.config import Config
from edgeguard.events.event import Event
from edgeguard.events.recorder import SiteEvents
from edgeguard.faces.engine import FaceEngine
from edgeguard.live.pipeline import Observation
from edgeguard.live.track import Sample, Track
from edgeguard.live.vote import Verdict
from edgeguard.store.event_log import EventLog
from edgeguard.store.face_captures import CaptureStore
from edgeguard.watchlist.details import read_details


class Recorded:
    """A site whose event log and captures are written by the real EventRecorder from real photos."""

    def __init__(self, site: Site, engine: FaceEngine, extra: str = "") -> None:
        site.write_config(
            '[captures]\nknown_categories = ["*"]\n[alerts]\nquiet_categories = ["staff"]\n' + extra
        )
        self.site, self.engine = site, engine
        self.config: Config = site.config()
        self.tracks = 0

    def event(self, kind: str, photo: Path, person_id: str | None = None, distance: float = 0.4) -> Event:
        """A known_face (naming `person_id`) or unknown_face event of the face in `photo`,
        decided by two samples."""
        people, _ = read_details(self.config.paths.details_csv)
        person = people[person_id] if person_id else None
        bgr = cv2.imread(str(photo))
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        height, width = rgb.shape[:2]
        box = min(
            (d.box for d in self.engine.find_in_photo(rgb)),  # the subject (LFW centres it), not a bystander
            key=lambda b: (b.center[0] - width / 2) ** 2 + (b.center[1] - height / 2) ** 2,
        )
        [encoding] = self.engine.encoder.encode(rgb, [box])
        self.tracks += 1
        now = time.time()
        frame = Frame(bgr, 10 * self.tracks, None, now)
        track = Track(self.tracks, box, now)
        track.offer_view(frame, box, 200.0)
        label = person.id if person else Verdict.UNKNOWN
        for n in range(2):
            track.add_sample(Sample(label, distance, encoding + n * 1e-3), now)
        log = EventLog(self.config.paths.events_db)
        try:
            site = SiteEvents(self.config, log, CaptureStore(self.config.paths.captures, 30, 1024))
            recorder = site.recorder(self.config.cameras[0])
            return recorder.handle(Observation(kind, frame, track, person, distance))
        finally:
            log.close()

    def append(self, event: Event) -> Event:
        log = EventLog(self.config.paths.events_db)
        try:
            return log.append(event)
        finally:
            log.close()

    def feedback(self, *args: str):
        return helpers.edgeguard(self.site.config_path, "feedback", *args, timeout=120)

    def analyze(self, *photos: Path) -> dict | list[dict]:
        """`edgeguard analyze --json` on photos of one person each: the face nearest the centre (a list of
        them for several photos; LFW centres its subject, a bystander may be found beside)."""
        result = helpers.edgeguard(self.site.config_path, "analyze", "--json", *map(str, photos))
        assert result.returncode == 0, result.stderr
        faces = []
        for line, photo in zip(result.stdout.splitlines(), photos):
            height, width = cv2.imread(str(photo)).shape[:2]
            faces.append(
                min(
                    json.loads(line)["faces"],
                    key=lambda f: (
                        ((f["box"][0] + f["box"][2]) / 2 - height / 2) ** 2
                        + ((f["box"][1] + f["box"][3]) / 2 - width / 2) ** 2
                    ),
                )
            )
        return faces[0] if len(photos) == 1 else faces
