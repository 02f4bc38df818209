"""A local HTTP server that answers like Twilio's Messages API, for tests and benchmarks.

POST /2010-04-01/Accounts/<sid>/Messages.json is answered from a script of
behaviours (default: accept): `"ok"` → 201 with a Message JSON; `("error",
400, 21211)` → a Twilio error JSON; `("status", 429)` or 500 → that status;
`("hang", seconds)` → answer only after that long (the message is accepted
all the same, as Twilio does when only its answer is slow).  `stop()` and a
later `start()` on the same port simulate an outage with connection refused.
Every POST is recorded with its arrival time and form fields, before it is
answered: once a client has its answer, or has exited, `received` holds all
it sent, so a test can count requests then without waiting for stragglers.

GET /2010-04-01/Accounts/<sid>/Messages.json?To=... lists the messages
accepted so far, newest first, as Twilio's list API does; each such look-up
is recorded in `lookups`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Received:
    time: float
    path: str
    form: dict[str, list[str]]
    answered: int = 0
    message: dict = field(default_factory=dict)  # the Message JSON answered, once accepted


@dataclass
class FakeTwilio:
    port: int = 0
    script: list = field(default_factory=list)  # behaviours for the next requests, consumed in order
    received: list[Received] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)  # paths with query of GET requests

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.arrived = threading.Condition(self._lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeTwilio:
        handler = _handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def next_behaviour(self):
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def record(self, item: Received) -> None:
        with self.arrived:
            self.received.append(item)
            self.arrived.notify_all()

    def accepted(self, to: str) -> list[dict]:
        """The Message JSON of every message accepted for `to`, newest first."""
        with self._lock:
            return [
                r.message for r in reversed(self.received) if r.answered == 201 and r.form.get("To") == [to]
            ]

    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.answered == 201]

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until `count` messages were accepted (201)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while sum(1 for r in self.received if r.answered == 201) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.arrived.wait(remaining)
        return True


def _handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            item = Received(time.time(), self.path, form)
            behaviour = fake.next_behaviour()
            if isinstance(behaviour, tuple) and behaviour[0] == "hang":
                item.answered, item.message = 201, _message(self.path, form)
                fake.record(item)  # accepted now; the answer is what is slow
                time.sleep(behaviour[1])
                self._json(201, item.message)
                return
            if behaviour == "ok" and self.path.endswith("/Messages.json"):
                item.answered, item.message = 201, _message(self.path, form)
                payload = item.message
            elif isinstance(behaviour, tuple) and behaviour[0] == "error":
                item.answered = behaviour[1]
                payload = {
                    "code": behaviour[2],
                    "message": f"error {behaviour[2]}",
                    "more_info": f"https://www.twilio.com/docs/errors/{behaviour[2]}",
                    "status": behaviour[1],
                }
            else:
                item.answered = behaviour[1] if isinstance(behaviour, tuple) else 404
                payload = {"code": None, "message": "fake failure", "status": item.answered}
            fake.record(
                item
            )  # before the answer: a client that has its answer (or has exited) finds it recorded
            self._json(item.answered, payload)

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            fake.lookups.append(self.path)
            if not path.endswith("/Messages.json"):
                self._json(404, {"code": 20404, "message": "not found", "status": 404})
                return
            to = parse_qs(query).get("To", [""])[0]
            self._json(
                200,
                {
                    "messages": fake.accepted(to),
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                    "uri": self.path,
                },
            )

        def _json(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _message(path: str, form: dict[str, list[str]]) -> dict:
    account = path.split("/")[3]
    return {
        "sid": "SM" + secrets.token_hex(16),
        "account_sid": account,
        "status": "queued",
        "to": form.get("To", [""])[0],
        "from": form.get("From", [None])[0],
        "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
        "body": form.get("Body", [""])[0],
        "num_media": str(len(form.get("MediaUrl", []))),
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        "uri": f"{path[:-5]}/SMxxx.json",
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        "subresource_uris": {},
    }
