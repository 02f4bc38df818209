"""What the running daemon says about itself: the status line (systemd's STATUS=, the log every minute) and
what the dashboard shows of it."""

from __future__ import annotations

import time

from ..web.context import CameraStatus, SiteStatus
from .assemble import Parts


def storage_faults(parts: Parts) -> list[str]:
    """What is kept in memory and why (a full or failing disk)."""
    return [fault for fault in (parts.event_log.fault, parts.alerts.outbox.fault) if fault]


def last_event(parts: Parts) -> str:
    event = parts.site.last_event
    if event is None:
        return "none"
    return f"{event.type} {time.strftime('%H:%M:%S', time.localtime(event.time))}"


def site_status(parts: Parts) -> SiteStatus:
    cameras = [
        CameraStatus(
            run.camera.name,
            run.camera.location,
            run.source.state,
            run.source.description,
            run.current_fps(),
            run.processor.people_in_view,
        )
        for run in parts.cameras
    ]
    return SiteStatus(cameras, storage_faults(parts), last_event(parts), parts.bus.status())


def status_line(parts: Parts) -> str:
    """Cameras, people, the last event; then the outputs that are faulty or behind, and storage faults."""
    faults = "; ".join(storage_faults(parts))
    storage = f"; STORAGE: {faults} (kept in memory)" if faults else ""
    lagging = [s.text() for s in parts.bus.status() if not s.ok or s.backlog]
    outputs = f"; outputs: {', '.join(lagging)}" if lagging else ""
    cameras = ", ".join(
        f"{run.camera.name} {run.source.state} {run.current_fps():.1f} fps" for run in parts.cameras
    )
    people = sum(run.processor.people_in_view for run in parts.cameras)
    fps = sum(run.current_fps() for run in parts.cameras)
    return (
        f"{fps:.1f} fps ({cameras}), {parts.service.current.enrolled} people enrolled, {people} in view, "
        f"last event: {last_event(parts)}{outputs}{storage}"
    )
