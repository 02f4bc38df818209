"""Building the dashboard for a running daemon: its users, secret, hubs and server, from the configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from ..alerts.link_signer import LinkSigner
from ..alerts.outbox import Outbox
from ..capture import PushFeed
from ..config import Config
from ..faces.engine import FaceEngine
from ..store.audit import AuditLog
from ..store.event_log import EventLog
from ..store.face_captures import CaptureFolder
from ..store.face_index import FaceIndex
from ..store.strangers import StrangerStore
from ..watchlist.build import Watchlist
from .admission import body_judge
from .app import create_app
from .context import Dashboard, SiteStatus
from .events import EventHub
from .security import load_secret
from .server import WebServer
from .users import open_users
from .video import LIVE_VIEWS_PER_USER, LiveHub


def build_dashboard(
    config: Config,
    *,
    status: Callable[[], SiteStatus],
    watchlist: Callable[[], Watchlist | None],
    event_log: EventLog | None,
    outbox: Outbox | None,
    engine: Callable[[], FaceEngine],
    signer: LinkSigner | None,
    reload_watchlist: Callable[[], None] | None = None,
    push: Mapping[str, PushFeed] | None = None,
    events: EventHub | None = None,
    search: FaceIndex | None = None,
    strangers: StrangerStore | None = None,
    erase: Callable[[str], list[str]] | None = None,
) -> tuple[Dashboard, WebServer]:
    """The dashboard and the server that will serve it (not started yet); `push` the push cameras' feeds by
    name; `events` the live updates' hub (an output of the daemon's event bus), else a hub of its own;
    `search` the index the event bus keeps current, else one of its own over `event_log`."""
    web = config.web
    tls = (Path(web.tls_cert), Path(web.tls_key)) if web.tls_cert else None
    dashboard = Dashboard(
        config=config,
        users=open_users(config.paths.users_db, web.idle_minutes, web.session_hours),
        secret=load_secret(config.paths.state_dir),
        live=LiveHub(web.live_fps, web.max_live_viewers, max(LIVE_VIEWS_PER_USER, len(config.cameras))),
        events=EventHub() if events is None else events,
        status=status,
        watchlist=watchlist,
        event_log=event_log,
        outbox=outbox,
        engine=engine,
        signer=signer,
        tls=tls is not None,
        reload_watchlist=reload_watchlist,
        push={} if push is None else push,
        search=search if search is not None or event_log is None else make_search_index(config, event_log),
        strangers=strangers,
        erase=erase,
        audit=AuditLog(config.paths.audit_db),
    )
    app = create_app(dashboard)
    server = WebServer(web.listen, app, web.max_live_viewers, tls, body_judge(app, dashboard))
    return dashboard, server


def make_search_index(config: Config, event_log: EventLog) -> FaceIndex:
    """The index of the recorded faces (edgeguard.store.face_index), loaded at its first search."""
    return FaceIndex(
        event_log,
        CaptureFolder.of_config(config),
        config.match_thresholds,
        config.captures.retention_days * 86400,
    )
