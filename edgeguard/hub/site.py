"""The hub's dashboard: the web package's app with the hub's pages, its users (`edgeguard user`, users.db in
the hub's base_dir) and secret, served by the same server as a device's dashboard."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..web.admission import body_judge
from ..web.app import create_app
from ..web.context import Dashboard, SiteStatus
from ..web.events import EventHub
from ..web.security import load_secret
from ..web.server import WebServer
from ..web.users import open_users
from ..web.video import LiveHub
from . import pages
from .store import HubStore
from .watchlist import FleetWatchlist


def build_hub_web(config: Config, store: HubStore, fleet: FleetWatchlist) -> tuple[Dashboard, WebServer]:
    """The hub's dashboard and its server (not started)."""
    web = config.web
    tls = (Path(web.tls_cert), Path(web.tls_key)) if web.tls_cert else None
    dashboard = Dashboard(
        config=config,
        users=open_users(config.paths.users_db, web.idle_minutes, web.session_hours),
        secret=load_secret(config.paths.state_dir),
        live=LiveHub(web.live_fps, 0),
        events=EventHub(),
        status=SiteStatus,
        watchlist=lambda: None,
        event_log=None,
        outbox=None,
        engine=_no_photos,
        signer=None,
        tls=tls is not None,
    )
    app = create_app(
        dashboard,
        parts=(pages.bp,),
        home="hub.devices",
        layout="hub_base.html",
        open_endpoints=frozenset({"hub.watchlist_bundle"}),
    )
    app.extensions["edgeguard.hub"] = pages.HubView(store, config.hub, fleet)
    return dashboard, WebServer(
        web.listen, app, 0, tls, body_judge(app, dashboard, frozenset({"hub.put_person"}))
    )


def _no_photos():
    raise RuntimeError("the hub's pages check no watchlist photos")
