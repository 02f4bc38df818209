"""Delivering the outbox through Twilio, on a background thread, in order.

The sender takes the oldest pending message; when it is due, it sends it.
Network errors, timeouts, HTTP 429 and 5xx are retried with exponential
backoff and jitter, and the queue waits behind the message being retried so
that guards read alerts in the order they happened.  Permanent Twilio errors
(an invalid or unsubscribed number, bad credentials ...) are recorded as
failed, logged once in plain words, and not retried.  With no credentials the
sender runs dry: every message is logged and recorded as not sent.

At most once in practice: a message whose last attempt had no clear answer
(a timeout, a lost connection, the daemon stopped mid-send: the outbox marks
it `uncertain`) is looked up before it is sent again: Twilio's list of recent
messages to that number is searched for one with the same body created since
the first attempt.  If one is there, the message is recorded as sent with that
SID; if the look-up itself fails, nothing is sent and both are tried again
later.  A duplicate is then possible only if Twilio accepted the message but
does not list it yet when the look-up is made.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from ..common.phone import mask_number, mask_numbers
from ..config import TwilioConfig
from .outbox import UNREADABLE, Message, Outbox

log = logging.getLogger(__name__)

RETRY_FIRST = 2.0  # seconds before the first retry; doubles each time
RETRY_LONGEST = 300.0
DEFAULT_API = "https://api.twilio.com"

# Twilio error codes an installer can act on, in words.
PERMANENT_ERRORS = {
    20003: "Twilio refused the credentials: check account_sid and auth_token",
    20404: "Twilio does not know the resource: check account_sid and messaging_service_sid",
    21211: "the recipient is not a valid phone number",
    21408: "sending to this country is not enabled on the Twilio account (Geo permissions)",
    21606: "from_number is not a Twilio number of this account that can send messages",
    21608: (
        "a Twilio trial account can only send to verified numbers: verify this number or upgrade the account"
    ),
    21610: "the recipient replied STOP and is unsubscribed; they must text START to receive alerts again",
    21612: "Twilio cannot route a message from from_number to this recipient",
    21614: "the recipient is not a mobile number and cannot receive text messages",
    21620: "the image link is not a valid media URL (check public_url)",
}


# How many of a recipient's latest messages a look-up reads, and how far apart the
# device's and Twilio's clocks may be.
LOOKUP_MESSAGES = 50
CLOCK_SLACK = 300.0


class Transport(Protocol):
    def send(self, to: str, body: str, media_url: str | None) -> str:
        """Send one message; return its SID, or raise."""

    def find(self, to: str, body: str, since: float) -> str | None:
        """The SID of a message to `to` with `body` accepted since `since` (epoch s), if any; or raise."""


class TwilioTransport:
    """The official twilio client, with a timeout and an optional other API address."""

    def __init__(self, cfg: TwilioConfig) -> None:
        from twilio.rest import Client

        self.cfg = cfg
        self.client = Client(
            cfg.account_sid, cfg.auth_token, http_client=_http_client(cfg.api_url, cfg.timeout)
        )

    def send(self, to: str, body: str, media_url: str | None) -> str:
        sender = (
            {"messaging_service_sid": self.cfg.messaging_service_sid}
            if self.cfg.messaging_service_sid
            else {"from_": self.cfg.from_number}
        )
        media = {"media_url": [media_url]} if media_url else {}
        return self.client.messages.create(to=to, body=body, **sender, **media).sid

    def find(self, to: str, body: str, since: float) -> str | None:
        for message in self.client.messages.list(to=to, limit=LOOKUP_MESSAGES):
            created = message.date_created.timestamp() if message.date_created else since
            # Twilio may prefix a trial account's messages: the body is found inside theirs.
            if body in (message.body or "") and created >= since - CLOCK_SLACK:
                return message.sid
        return None


def _http_client(api_url: str, timeout: float):
    """A TwilioHttpClient that sends every request to `api_url`'s scheme and host.

    Rewriting each request, rather than setting the client's base URL, also
    holds when TWILIO_EDGE or TWILIO_REGION make the library build other host names.
    """
    from twilio.http.http_client import TwilioHttpClient

    target = urlsplit(api_url.rstrip("/"))

    class ApiHttpClient(TwilioHttpClient):
        def request(self, method, url, *args, **kwargs):
            if api_url.rstrip("/") != DEFAULT_API:
                parts = urlsplit(url)
                url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))
            return super().request(method, url, *args, **kwargs)

    return ApiHttpClient(timeout=timeout)


def classify(exc: BaseException) -> tuple[bool, str]:
    """(retry?, what happened in words) for an exception from a send."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if status is not None:
        if status == 429 or status >= 500:
            return True, f"Twilio answered HTTP {status}"
        words = (
            PERMANENT_ERRORS.get(code)
            or getattr(exc, "msg", None)
            or getattr(exc, "detail", None)
            or str(exc)
        )
        return False, f"Twilio error {code or status}: {mask_numbers(_first_line(words))}"
    # A connection error quotes the request's URL, the recipient's number in it: masked like Twilio's texts.
    return True, f"cannot reach Twilio: {type(exc).__name__}: {mask_numbers(_first_line(exc))}"


def _first_line(exc: object) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        transport: Transport | None,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.outbox = outbox
        self.transport = transport
        self.clock = clock
        self.jitter = jitter
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.transport is None:
            log.warning(
                "Twilio is not configured (credentials and from_number): alerts run dry "
                "(logged and recorded, not sent)"
            )
        self._thread = threading.Thread(target=self._run, name="sms-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread; a send in flight may still finish (then marked sent) or not (it stays pending)."""
        self._stop.set()
        self.outbox.changed.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def drain(self, timeout: float) -> int:
        """Wait up to `timeout` s for the pending messages to go out; returns how many are left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.outbox.next_pending() is not None:
            time.sleep(0.05)
        return self.outbox.count("pending")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step()
            except Exception:  # the outbox keeps the message; the sender must outlive any one bug
                log.exception("alert sender: unexpected error; trying again in 5 s")
                wait = 5.0
            if wait > 0:
                self.outbox.changed.wait(min(wait, 1.0))
                self.outbox.changed.clear()

    def step(self) -> float:
        """Deliver the head of the queue if it is due; returns how long to wait before the next step."""
        message = self.outbox.next_pending()
        if message is None:
            return 1.0
        now = self.clock()
        if message.next_attempt > now:
            return message.next_attempt - now
        self.deliver(message)
        return 0.0

    def deliver(self, message: Message) -> str:
        """One attempt at one message; returns its status afterwards."""
        who = mask_number(message.to_number)
        if message.body == UNREADABLE:
            self.outbox.mark_failed(
                message.id, "the stored text cannot be read (damaged or another key)", self.clock()
            )
            log.error("alert %d to %s: its stored text cannot be read; not sent", message.id, who)
            return "failed"
        if self.transport is None:
            self.outbox.mark_dry_run(message.id, self.clock())
            log.info("alert (dry run, not sent) to %s: %s", who, message.listed)
            return "dry_run"
        if message.uncertain:
            try:
                sid = self.transport.find(
                    message.to_number, message.body, message.first_attempt or message.created
                )
            except Exception as exc:  # noqa: BLE001 - cannot tell whether it went out: ask again later, send nothing
                return self._failed(message, exc, who, uncertain=True)
            if sid is not None:
                self.outbox.mark_sent(message.id, sid, self.clock())
                log.info(
                    "alert %d to %s: Twilio had accepted it already (%s); not sent again",
                    message.id,
                    who,
                    sid,
                )
                return "sent"
        self.outbox.mark_attempt(message.id, self.clock())
        try:
            sid = self.transport.send(message.to_number, message.body, message.media_url)
        except Exception as exc:  # noqa: BLE001 - twilio, requests and socket errors all land here
            # Without an HTTP answer (a timeout, a lost connection) Twilio may have accepted it.
            return self._failed(message, exc, who, uncertain=getattr(exc, "status", None) is None)
        self.outbox.mark_sent(message.id, sid, self.clock())
        log.info("alert %d sent to %s (%s)", message.id, who, sid)
        return "sent"

    def _failed(self, message: Message, exc: Exception, who: str, uncertain: bool) -> str:
        retry, reason = classify(exc)
        now = self.clock()
        if not retry:
            self.outbox.mark_failed(message.id, reason, now)
            log.error("alert %d to %s not sent and not retried: %s", message.id, who, reason)
            return "failed"
        delay = min(RETRY_LONGEST, RETRY_FIRST * 2 ** min(message.attempts, 30))
        delay = delay / 2 + self.jitter() * delay / 2
        self.outbox.retry_later(message.id, reason, now + delay, uncertain)
        if message.attempts == 0:
            log.warning("alert %d to %s: %s; retrying (queue waits, order is kept)", message.id, who, reason)
        return "pending"
