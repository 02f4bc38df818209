"""Tests for edgeguard.alerts.sender: the Sender and TwilioTransport talking to the real twilio client over
loopback to FakeTwilio (tests/fake_twilio.py), with a real SQLite outbox and a hand-driven clock."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

import pytest
from fake_twilio import FakeTwilio  # tests/fake_twilio.py
from helpers import threads_named, wait_for

from edgeguard.alerts.outbox import Outbox
from edgeguard.alerts.sender import RETRY_FIRST, RETRY_LONGEST, Sender, TwilioTransport, classify
from edgeguard.common.phone import mask_number
from edgeguard.config import TwilioConfig

SID = "AC" + "1" * 32
TOKEN = "tok-" + "9f" * 14
FROM = "+15551230000"
TO = "+15551230009"
SERVICE = "MG" + "2" * 32
MEDIA = "https://gate.example.net:8780/c/MTc2NDA0NjUzMTpmYWNlLmpwZw.Zm9vYmFyYmF6cXV4cXV1eA"
SM_SID = re.compile(r"SM[0-9a-f]{32}")


class Clock:
    """Simulated time, moved by hand."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _start() -> FakeTwilio:
    return FakeTwilio().start()


def _stop_in_background(server: FakeTwilio) -> None:
    # FakeTwilio.stop() waits out serve_forever's 0.5 s poll; nothing in a test depends on it
    threading.Thread(target=server.stop, daemon=True).start()


@pytest.fixture
def fake():
    server = _start()
    yield server
    _stop_in_background(server)


@pytest.fixture
def own_fake():
    """A server the test stops and restarts itself."""
    server = _start()
    yield server
    server.stop()


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def twilio_config(fake: FakeTwilio, **kw) -> TwilioConfig:
    values = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": FROM,
        "api_url": fake.url,
        "timeout": 5.0,
    }
    values.update(kw)
    return TwilioConfig(**values)


def sender_for(fake: FakeTwilio, outbox: Outbox, clock: Clock, **kw) -> Sender:
    return Sender(outbox, TwilioTransport(twilio_config(fake, **kw)), clock=clock, jitter=lambda: 0.5)


def last_response_sid(sender: Sender) -> str:
    """The SID in the body of the last answer the twilio client got."""
    response = sender.transport.client.http_client._test_only_last_response
    return json.loads(response.text)["sid"]


def requests(fake: FakeTwilio, count: int, timeout: float = 5.0) -> list:
    """The requests the server recorded, once there are `count` (it records each before answering)."""
    deadline = time.monotonic() + timeout
    with fake.arrived:
        while len(fake.received) < count and time.monotonic() < deadline:
            fake.arrived.wait(0.05)
        got = list(fake.received)
    assert len(got) == count, [(r.answered, r.form.get("Body")) for r in got]
    return got


def run_until_idle(sender: Sender, clock: Clock, limit: int = 200) -> None:
    """Step, moving the clock to each due time, until nothing is pending."""
    for _ in range(limit):
        if sender.outbox.next_pending() is None:
            return
        wait = sender.step()
        if wait > 0:
            clock.advance(wait)
    raise AssertionError("messages still pending")


def edgeguard_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("edgeguard")]


# ---------------------------------------------------------------- one message


def test_an_alert_is_delivered_exactly_once(fake, outbox, clock):
    sender = sender_for(fake, outbox, clock)
    mid = outbox.add(TO, "EdgeGuard ALERT Front Gate: unknown person 14:02:11", None, 5, now=clock())
    assert sender.step() == 0.0
    assert [r.answered for r in requests(fake, 1)] == [201]
    m = outbox.get(mid)
    assert m.status == "sent" and m.attempts == 1 and m.finished == clock()
    assert SM_SID.fullmatch(m.sid) and m.sid == last_response_sid(sender)
    for _ in range(3):  # stepping again sends nothing more
        assert sender.step() > 0
        clock.advance(60)
    assert len(requests(fake, 1)) == 1
    assert outbox.list(["pending"]) == []


def test_request_carries_to_from_body_and_media(fake, outbox, clock):
    sender = sender_for(fake, outbox, clock)
    outbox.add(TO, "EdgeGuard ALERT Front Gate: unknown person 14:02:11 " + MEDIA, MEDIA, 1, now=clock())
    outbox.add(TO, "EdgeGuard ALERT Front Gate: Ana Lima (Id 7, wanted) 14:03:00", None, 2, now=clock())
    run_until_idle(sender, clock)
    first, second = requests(fake, 2)
    assert first.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert first.form["To"] == [TO] and first.form["From"] == [FROM]
    assert first.form["Body"] == ["EdgeGuard ALERT Front Gate: unknown person 14:02:11 " + MEDIA]
    assert first.form["MediaUrl"] == [MEDIA]
    assert "MessagingServiceSid" not in first.form
    assert "MediaUrl" not in second.form and second.form["Body"] == [
        "EdgeGuard ALERT Front Gate: Ana Lima (Id 7, wanted) 14:03:00"
    ]


def test_messaging_service_instead_of_from_number(fake, outbox, clock):
    sender = sender_for(fake, outbox, clock, from_number="", messaging_service_sid=SERVICE)
    mid = outbox.add(TO, "via the service", None, None, now=clock())
    sender.step()
    (req,) = requests(fake, 1)
    assert req.form["MessagingServiceSid"] == [SERVICE] and "From" not in req.form
    assert req.form["To"] == [TO] and req.form["Body"] == ["via the service"]
    assert outbox.get(mid).status == "sent"


def test_api_url_wins_over_twilio_edge_and_region(fake, outbox, clock, monkeypatch):
    """With TWILIO_EDGE/TWILIO_REGION the library builds api.sydney.au1.twilio.com; the request
    must still go to [twilio] api_url (an outbound proxy, or here the local server)."""
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    sender = sender_for(fake, outbox, clock)
    assert (sender.transport.client.edge, sender.transport.client.region) == ("sydney", "au1")
    mid = outbox.add(TO, "edge and region set", MEDIA, None, now=clock())
    assert sender.step() == 0.0
    (req,) = requests(fake, 1)
    assert req.path == f"/2010-04-01/Accounts/{SID}/Messages.json" and req.form["MediaUrl"] == [MEDIA]
    assert outbox.get(mid).status == "sent"
    assert outbox.get(mid).sid == last_response_sid(sender)


def test_credentials_are_sent_as_basic_auth_and_not_stored(fake, outbox, clock):
    sender = sender_for(fake, outbox, clock)
    mid = outbox.add(TO, "auth", None, None, now=clock())
    sender.step()
    request = sender.transport.client.http_client._test_only_last_request
    assert request.auth == (SID, TOKEN)
    stored = repr(outbox.get(mid))
    assert TOKEN not in stored


# ---------------------------------------------------------------- outage


def test_ten_minute_outage_loses_nothing_and_keeps_order(own_fake, outbox, clock, caplog):
    fake = own_fake
    caplog.set_level(logging.INFO)
    sender = sender_for(fake, outbox, clock)
    port = fake.port
    fake.stop()  # connection refused from now on
    bodies = [f"EdgeGuard ALERT Front Gate: unknown person 14:0{n}:00" for n in range(5)]
    ids = [outbox.add(TO, body, None, n, now=clock()) for n, body in enumerate(bodies)]
    start = clock()
    attempts: list[tuple[float, float]] = []  # (when tried, next attempt)
    while clock() - start < 600:
        head = outbox.next_pending()
        before = head.attempts
        wait = sender.step()
        after = outbox.get(head.id)
        if after.attempts > before:
            attempts.append((clock(), after.next_attempt))
            assert after.status == "pending" and after.last_error.startswith("cannot reach Twilio")
        clock.advance(max(wait, 0.5))
    assert [m.id for m in outbox.list(["pending"])] == ids  # nothing lost
    assert outbox.next_pending().id == ids[0]  # only the head was tried; the rest wait behind it
    assert all(outbox.get(i).attempts == 0 for i in ids[1:])
    gaps = [nxt - when for when, nxt in attempts]
    assert len(gaps) >= 8
    # exponential: each wait is twice the one before (jitter fixed at 0.5), until the cap
    assert gaps[:8] == pytest.approx([0.75 * RETRY_FIRST * 2**k for k in range(8)])
    assert all(b >= a for a, b in zip(gaps, gaps[1:]))
    assert max(gaps) <= RETRY_LONGEST and gaps[-1] == pytest.approx(0.75 * RETRY_LONGEST)
    # the outage is logged once, not on every retry
    warnings = [r for r in edgeguard_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "retrying" in warnings[0].getMessage()

    restarted = FakeTwilio(port=port).start()
    try:
        run_until_idle(sender, clock)
        got = requests(restarted, 5)
        assert [r.form["Body"][0] for r in got] == bodies  # in queue order, once each
        assert all(r.answered == 201 for r in got)
        assert [outbox.get(i).status for i in ids] == ["sent"] * 5
        assert len({outbox.get(i).sid for i in ids}) == 5
        for _ in range(3):
            sender.step()
            clock.advance(RETRY_LONGEST)
        assert len(requests(restarted, 5)) == 5
    finally:
        restarted.stop()


def test_a_weekend_long_outage_does_not_break_the_sender(own_fake, outbox, clock):
    """A device offline over a weekend keeps retrying at the longest interval.  After about
    1024 attempts (~64 hours at the 225-300 s cap) the backoff 2.0 * 2 ** attempts no longer fits
    in a float; step() must still work (on the sender thread an exception ends the thread)."""
    fake = own_fake
    sender = sender_for(fake, outbox, clock)
    port = fake.port
    fake.stop()
    mid = outbox.add(TO, "still pending after the weekend", None, None, now=clock())
    start = clock()
    for _ in range(2100):  # one step tries, the next finds it not due yet
        if outbox.get(mid).attempts >= 1030:
            break
        wait = sender.step()
        clock.advance(max(wait, 0.0))
    m = outbox.get(mid)
    assert m.status == "pending" and m.attempts >= 1030
    assert clock() - start > 60 * 3600
    assert m.next_attempt - clock() <= RETRY_LONGEST
    restarted = FakeTwilio(port=port).start()
    try:
        run_until_idle(sender, clock)
        assert [r.form["Body"][0] for r in requests(restarted, 1)] == ["still pending after the weekend"]
    finally:
        restarted.stop()


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limit_and_server_errors_are_retried_then_delivered(fake, outbox, clock, status):
    fake.script = [("status", status), ("status", status), "ok"]
    sender = sender_for(fake, outbox, clock)
    mid = outbox.add(TO, "try again", None, None, now=clock())
    sender.step()
    m = outbox.get(mid)
    assert m.status == "pending" and m.attempts == 1 and m.last_error == f"Twilio answered HTTP {status}"
    assert m.next_attempt == pytest.approx(clock() + 0.75 * RETRY_FIRST)
    assert sender.step() == pytest.approx(0.75 * RETRY_FIRST)  # not due yet: nothing sent
    assert len(requests(fake, 1)) == 1
    run_until_idle(sender, clock)
    assert [r.answered for r in requests(fake, 3)] == [status, status, 201]
    m = outbox.get(mid)
    assert m.status == "sent" and m.attempts == 3 and m.sid == last_response_sid(sender)


@pytest.mark.slow  # asserts on how long the attempt took
def test_a_hang_longer_than_the_timeout_is_retried(own_fake, outbox):
    fake = own_fake
    clock = Clock(time.time())  # the look-up compares with the fake's real time stamps
    fake.script = [("hang", 3)]
    sender = sender_for(fake, outbox, clock, timeout=1.0)
    mid = outbox.add(TO, "slow network", None, None, now=clock())
    started = time.monotonic()
    sender.step()
    took = time.monotonic() - started
    assert 0.9 <= took < 2.5  # given up after [twilio] timeout, not after the server's 3 s
    m = outbox.get(mid)
    assert m.status == "pending" and m.attempts == 1 and m.uncertain
    assert m.last_error.startswith("cannot reach Twilio") and "Timeout" in m.last_error
    run_until_idle(sender, clock)
    m = outbox.get(mid)
    # Twilio had accepted it, only its answer was late: the retry finds it and sends nothing again.
    [accepted] = fake.delivered()
    assert m.status == "sent" and m.attempts == 2 and m.sid == accepted.message["sid"] and not m.uncertain
    assert len(fake.received) == 1 and len(fake.lookups) == 1


def test_an_uncertain_message_that_twilio_never_got_is_sent_after_the_look_up(own_fake, outbox):
    fake = own_fake
    clock = Clock(time.time())
    fake.script = [("status", 500)]
    sender = sender_for(fake, outbox, clock)
    mid = outbox.add(TO, "first try", None, None, now=clock())
    outbox.mark_attempt(mid, clock())  # as if the daemon had stopped mid-send before Twilio got it
    run_until_idle(sender, clock)
    m = outbox.get(mid)
    assert m.status == "sent" and not m.uncertain and len(fake.delivered()) == 1
    assert len(fake.lookups) == 1  # asked once; the 500 answer after it was a clear "not accepted"


def test_a_failing_look_up_sends_nothing_and_is_tried_again(own_fake, outbox):
    fake = own_fake
    clock = Clock(time.time())
    sender = sender_for(fake, outbox, clock)
    mid = outbox.add(TO, "unknown fate", None, None, now=clock())
    outbox.mark_attempt(mid, clock())
    fake.stop()  # Twilio unreachable: the look-up fails
    assert sender.step() == 0.0
    m = outbox.get(mid)
    assert m.status == "pending" and m.uncertain and m.attempts == 1 and fake.received == []
    fake.start()
    run_until_idle(sender, clock)
    assert outbox.get(mid).status == "sent" and len(fake.delivered()) == 1


# ---------------------------------------------------------------- permanent errors

PERMANENT = [
    (21211, 400, "+15551230011", "not a valid phone number"),
    (21614, 400, "+15551230022", "not a mobile number"),
    (21610, 400, "+15551230033", "replied STOP"),
    (21608, 400, "+15551230044", "verif"),
    (20003, 401, "+15551230055", "credentials"),
]


def test_permanent_errors_are_not_retried_and_logged_once(fake, outbox, clock, caplog):
    caplog.set_level(logging.DEBUG)
    fake.script = [("error", status, code) for code, status, _, _ in PERMANENT] + ["ok"]
    sender = sender_for(fake, outbox, clock)
    ids = [
        outbox.add(number, f"alert for {code}", None, None, now=clock()) for code, _, number, _ in PERMANENT
    ]
    last = outbox.add(TO, "goes out after the failures", None, None, now=clock())
    run_until_idle(sender, clock)
    for _ in range(5):  # later steps retry nothing
        sender.step()
        clock.advance(RETRY_LONGEST)
    got = requests(fake, len(PERMANENT) + 1)
    assert [r.answered for r in got] == [s for _, s, _, _ in PERMANENT] + [201]
    assert [r.form["To"][0] for r in got] == [n for _, _, n, _ in PERMANENT] + [TO]
    errors = [r for r in edgeguard_records(caplog) if r.levelno >= logging.ERROR]
    assert len(errors) == len(PERMANENT)
    for mid, (code, _, number, words), record in zip(ids, PERMANENT, errors):
        m = outbox.get(mid)
        assert m.status == "failed" and m.attempts == 1 and m.sid is None
        assert m.last_error.startswith(f"Twilio error {code}: ") and words in m.last_error
        text = record.getMessage()
        assert record.levelno == logging.ERROR and record.name == "edgeguard.alerts.sender"
        assert mask_number(number) in text and words in text
        assert number[-3:] in text and "*" * 9 + number[-3:] in text
    assert outbox.get(last).status == "sent"
    for number in [n for _, _, n, _ in PERMANENT] + [TO]:
        for record in edgeguard_records(caplog):
            assert number[1:-3] not in record.getMessage()  # only the last 3 digits, ever


def test_classify_words():
    class HttpError(Exception):
        def __init__(self, status, code=None, msg=""):
            self.status, self.code, self.msg = status, code, msg

    assert classify(HttpError(429)) == (True, "Twilio answered HTTP 429")
    assert classify(HttpError(503)) == (True, "Twilio answered HTTP 503")
    retry, words = classify(HttpError(400, 21610, "Attempt to send to unsubscribed recipient"))
    assert not retry and "START" in words
    retry, words = classify(HttpError(400, 21999, "Some new Twilio rule"))
    assert not retry and words == "Twilio error 21999: Some new Twilio rule"
    retry, words = classify(ConnectionRefusedError(111, "Connection refused"))
    assert retry and words.startswith("cannot reach Twilio: ConnectionRefusedError")


def test_mask_number_shows_only_the_last_three_digits():
    assert mask_number("+15551230009") == "*********009"
    assert mask_number("+447700900123") == "**********123"
    assert mask_number("12") == "12"


# ---------------------------------------------------------------- dry run


def test_dry_run_without_credentials(fake, outbox, clock, caplog):
    caplog.set_level(logging.INFO)
    sender = Sender(outbox, None, clock=clock, jitter=lambda: 0.5)
    mid = outbox.add(TO, "EdgeGuard ALERT Front Gate: unknown person 14:02:11", None, None, now=clock())
    assert sender.step() == 0.0
    m = outbox.get(mid)
    assert m.status == "dry_run" and m.sid is None and "no Twilio credentials" in m.last_error
    assert outbox.next_pending() is None
    assert requests(fake, 0, timeout=0.2) == []
    lines = [r.getMessage() for r in edgeguard_records(caplog) if "dry run" in r.getMessage()]
    assert len(lines) == 1
    assert "*********009" in lines[0] and "unknown person" in lines[0]
    assert all("5551230" not in r.getMessage() for r in edgeguard_records(caplog))


# ---------------------------------------------------------------- the background thread


@pytest.mark.slow  # asserts on how long delivering and stopping took
def test_background_thread_delivers_promptly_and_stops_promptly(fake, outbox):
    sender = Sender(outbox, TwilioTransport(twilio_config(fake)), jitter=lambda: 0.5)
    before = set(threading.enumerate())
    sender.start()
    [thread] = [t for t in threads_named("sms-sender") if t not in before]
    try:
        time.sleep(0.3)  # pacing: the thread has found nothing to send and waits for work
        assert fake.received == []
        added = time.monotonic()
        mid = outbox.add(TO, "added after start", None, None)
        assert fake.wait_for(1, 2.0), "not delivered within 2 s"
        assert time.monotonic() - added < 2.0
        wait_for(lambda: outbox.get(mid).status == "sent", 2, "marked sent")
        assert outbox.get(mid).status == "sent"
    finally:
        stopping = time.monotonic()
        sender.stop()
        stopped_in = time.monotonic() - stopping
    assert stopped_in < 1.5  # generous, but short of the 2 s its join may wait
    assert not thread.is_alive() and not sender.alive
    # the thread is gone: nothing more can be sent, so this one request is all there will be
    assert [r.form["Body"] for r in requests(fake, 1)] == [["added after start"]]
