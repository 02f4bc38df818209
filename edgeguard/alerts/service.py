"""The alerting side of the daemon, started and stopped as one: outbox, sender thread, the signer of the
image links in messages (the dashboard's server serves them), and the alerter; together the SMS output of the
event bus (edgeguard.outputs.bus).

It is durable: the bus keeps its place in the event log, so an event logged
just before a crash or a power cut is handed to it again at the next start
(up to `replay_seconds` old).  An event that already has messages in the
outbox (queued just before the crash, its place not saved yet) is not queued
twice."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..config import Config
from ..events.event import Event, EventType
from ..outputs.base import Output, OutputStatus
from .link_signer import LinkSigner, SignedLinks, load_link_key
from .outbox import Outbox
from .routing import Alerter
from .sender import Sender, TwilioTransport

log = logging.getLogger(__name__)


class AlertService(Output):
    name = "sms"
    durable = True
    replay_seconds = 3600.0  # a text about an event older than an hour is noise

    def __init__(self, config: Config, make_room: Callable[[], bool] | None = None) -> None:
        self.config = config
        self.outbox = Outbox(config.paths.outbox_db, make_room, config.sealer)
        self.signer: LinkSigner | None = None
        self.links: SignedLinks | None = None  # the captures' signed links, for texts and other outputs
        key = _link_key(config) if config.alerts.public_url else None
        if key is not None:
            self.signer = LinkSigner(key, config.alerts.public_url, config.alerts.link_hours * 3600)
            self.links = SignedLinks(self.signer, config.paths.captures)
        transport = TwilioTransport(config.twilio) if config.twilio_ready else None
        self.sender = Sender(self.outbox, transport)
        self.alerter = Alerter(config, self.outbox, self.links)

    def start(self) -> None:
        if not any(route.to for route in self.config.alerts.route):
            log.warning(
                "alerts: no route, so nothing will be sent, not even as a dry run; add one to the config: "
                '[[alerts.route]] to = ["+15551230000"]'
            )
        if self.signer is not None:
            log.info("image links: %s", self.config.alerts.public_url)
        pending = self.outbox.count("pending")
        if pending:
            log.info("outbox: %d alert(s) pending from before; sending them first", pending)
        self.sender.start()

    def handle(self, event: Event) -> None:
        """Queue the texts this event calls for (on the bus's worker thread: never the frame loop's).  An
        erasure is never texted (`forget` itself deleted or blanked the messages about what it erased)."""
        if event.type == EventType.ERASED:
            return
        if event.seq is not None and self.outbox.has_event(event.seq):
            log.info("outbox: event %d already has its texts queued; not queued again", event.seq)
            return
        self.alerter(event)

    def status(self) -> OutputStatus:
        """The outbox's fault, if any, and how many texts wait to be sent."""
        return OutputStatus(self.name, self.outbox.fault, self.outbox.count("pending"))

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop; with `drain_seconds`, first give pending alerts that long to go out."""
        if drain_seconds > 0 and self.sender.drain(drain_seconds):
            log.warning("outbox: alerts still pending at exit; they are sent on the next start")
        self.sender.stop()
        if (
            not self.sender.alive
        ):  # a send still in flight records its result; the process exit closes the file
            self.outbox.close()


def _link_key(config: Config) -> bytes | None:
    """The image link key; None (texts go without links) if a new one cannot be saved (a full disk)."""
    try:
        return load_link_key(config.paths.link_key)
    except OSError as exc:
        if config.paths.link_key.exists():
            raise  # an existing key that cannot be read: the installer must look (named in the error)
        log.error(
            "image links are off until %s can be made (%s); alerts are sent without them",
            config.paths.link_key,
            exc,
        )
        return None
