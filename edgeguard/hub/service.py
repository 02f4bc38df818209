"""`edgeguard hub`: the hub process.  It opens (and migrates) the database, subscribes to the fleet's events
in the shared subscription group `[hub] group` and to every device's availability, and stores them until
SIGTERM or SIGINT, serving its dashboard ([web] listen) meanwhile.  Its state is all in the database, so any
number of hub processes may run against one PostgreSQL and one broker."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..config import Config, topic_safe
from ..outputs.mqtt.client import Connection
from ..service.systemd import Systemd
from ..watchlist.bundle import public_text
from .ingest import AVAILABILITY_FILTER, EVENTS_FILTER, EventCheck, Ingest
from .live import LiveRows
from .site import build_hub_web
from .store import HubStore
from .thumbnails import Thumbnails
from .watchlist import FleetWatchlist, key_path, load_key

log = logging.getLogger(__name__)

EX_CONFIG = 78
STATS_SECONDS = 60.0


def client_id(config: Config) -> str:
    return f"edgeguard-hub-{config.hub.name or topic_safe(socket.gethostname())}"


def subscriptions(config: Config) -> list[tuple[str, int]]:
    """The events through the group's shared subscription (each event to one hub process); availability
    to every hub process (retained messages are not sent to shared subscriptions)."""
    return [(f"$share/{config.hub.group}/{EVENTS_FILTER}", 1), (AVAILABILITY_FILTER, 1)]


def run_hub(config: Config) -> int:
    if not config.mqtt.host:
        log.error("hub: set [mqtt] host (and port, user, TLS): the broker the devices publish to")
        return EX_CONFIG
    url = config.hub.database(config.paths.base_dir)
    try:
        store = HubStore.open(url)
    except SQLAlchemyError as exc:
        log.error("hub: cannot open the database %s: %s", _safe_url(url), str(exc).splitlines()[0][:300])
        return 1
    try:
        fleet = FleetWatchlist(store, load_key(key_path(config)))
    except (OSError, ValueError) as exc:
        log.error("hub: cannot read the watchlist key %s: %s", key_path(config), exc)
        store.close()
        return EX_CONFIG
    server = None
    if config.web.enabled:
        dashboard, server = build_hub_web(config, store, fleet)
        try:
            server.start()
        except OSError as exc:
            log.error("hub: cannot serve the dashboard on %s: %s", config.web.listen, exc)
            dashboard.users.close()
            store.close()
            return 1
    live = LiveRows(store, dashboard.events) if server is not None else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    connection = Connection(config.mqtt, client_id(config), persistent=True, manual_ack=True)
    thumbnails = Thumbnails(store)
    ingest = Ingest(
        store, EventCheck(config.hub.max_event_kb * 1024), connection.client.ack, stored=thumbnails.stored
    )
    connection.client.on_message = ingest.on_message
    fleet.connection = connection
    connection.on_connected = lambda: connection.client.subscribe(subscriptions(config))
    thumbnails.start()
    if live is not None:
        live.start()
    ingest.start()
    connection.start()
    systemd = Systemd()
    log.info("hub: %s, database %s, broker %s", client_id(config), _safe_url(url), config.mqtt.broker)
    systemd.ready(f"hub: broker {connection.state}")
    tick = min(STATS_SECONDS, systemd.watchdog_interval or STATS_SECONDS)
    logged = time.monotonic()
    try:
        while not stop.wait(tick):
            systemd.watchdog()
            systemd.status(f"hub: {ingest.counts.text()}; broker {connection.state}")
            if time.monotonic() - logged >= STATS_SECONDS:
                logged = time.monotonic()
                log.info("hub: %s; broker %s", ingest.counts.text(), connection.state)
    finally:
        systemd.stopping()
        if server is not None:
            dashboard.events.close()
            server.stop()
            dashboard.users.close()
        connection.stop()
        ingest.stop()
        thumbnails.stop()
        if live is not None:
            live.stop()
        store.close()
        log.info("hub: stopped; %s", ingest.counts.text())
    return 0


def _safe_url(url: str) -> str:
    """The database URL without its password, for logs."""
    return make_url(url).render_as_string(hide_password=True)


def add_device(config: Config, device: str, group: str) -> int:
    """`edgeguard hub --token DEVICE`: a watchlist token for the device and the hub's public key, printed
    for its [watchlist] hub_token and hub_key."""
    store = HubStore.open(config.hub.database(config.paths.base_dir))
    try:
        token = store.add_device_token(device, group)
        key = load_key(key_path(config))
    finally:
        store.close()
    print(f'[watchlist]\nhub_token = "{token}"\nhub_key = "{public_text(key)}"')
    return 0
