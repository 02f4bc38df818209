"""What the dashboard sees of the daemon: handed to the app factory, read by the pages, never the other
way."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..alerts.link_signer import LinkSigner
from ..alerts.outbox import Outbox
from ..capture import PushFeed
from ..config import Config
from ..faces.engine import FaceEngine
from ..outputs.base import OutputStatus
from ..store.audit import AuditLog
from ..store.event_log import EventLog
from ..store.face_index import FaceIndex
from ..store.strangers import StrangerStore
from ..watchlist.build import Watchlist
from .events import EventHub
from .users import UserStore
from .video import LiveHub


@dataclass(frozen=True)
class CameraStatus:
    name: str
    location: str
    state: str  # "streaming", "reconnecting", "stalled", "ended" ...
    description: str  # what was opened, never credentials
    fps: float
    people: int


@dataclass(frozen=True)
class SiteStatus:
    cameras: list[CameraStatus] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)  # faults: what is kept in memory and why
    last_event: str = "none"
    outputs: list[OutputStatus] = field(default_factory=list)  # each output of the event bus: fault, backlog


@dataclass
class Dashboard:
    config: Config
    users: UserStore
    secret: bytes
    live: LiveHub
    events: EventHub
    status: Callable[[], SiteStatus]
    watchlist: Callable[[], Watchlist | None]
    event_log: EventLog | None
    outbox: Outbox | None
    engine: Callable[[], FaceEngine]  # for checking uploaded photos as the watchlist will
    signer: LinkSigner | None  # the image links of alerts
    tls: bool = False
    reload_watchlist: Callable[[], None] | None = (
        None  # ask the running watchlist to reload now (after feedback)
    )
    push: Mapping[str, PushFeed] = field(
        default_factory=dict
    )  # push cameras' feeds by name (/upload_frame/<name>)
    search: FaceIndex | None = None  # the Search page's index of the recorded faces (None: no event log)
    strangers: StrangerStore | None = None  # the Strangers page's (None: not kept by this dashboard)
    # Erase a person everywhere (the code behind `edgeguard forget ID`): the lines of what was removed;
    # ValueError with the reason when there is nothing to erase (nothing changed).
    erase: Callable[[str], list[str]] | None = None
    audit: AuditLog | None = None  # who changed what (edgeguard.store.audit)
