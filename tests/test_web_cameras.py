"""The dashboard with several cameras (the Flask test client, the real app, a real users.db and
event log): the overview and the live view group the cameras by location and show a camera that
is not streaming by its state; camera names with spaces and dots work in the addresses; the
detection log filters by camera and location; the overview shows the event bus's outputs."""

from __future__ import annotations

import html
import re
import time

import numpy as np
import pytest
from conftest import make_site
from flask.testing import FlaskClient
from test_web import PASSWORD, login_token  # the dashboard's test password and the login form's token

from edgeguard.events.event import Event
from edgeguard.outputs.base import OutputStatus
from edgeguard.outputs.mqtt.output import MqttStatus
from edgeguard.store.event_log import EventLog
from edgeguard.web.app import create_app
from edgeguard.web.context import CameraStatus, SiteStatus
from edgeguard.web.site import build_dashboard

CAMERAS = """
[[camera]]
name = "gate"
location = "Front Gate"
[[camera]]
name = "Gate 2.east"
location = "Front Gate"
[[camera]]
name = "lobby"
location = "Lobby"
"""
STATUS = SiteStatus(
    [
        CameraStatus("gate", "Front Gate", "streaming", "/dev/video0", 14.8, 1),
        CameraStatus("Gate 2.east", "Front Gate", "streaming", "rtsp://cam2/stream", 9.5, 0),
        CameraStatus("lobby", "Lobby", "stalled", "rtsp://lobby/stream", 0.0, 0),
    ]
)


class Board:
    """The dashboard of a site with three cameras in two locations, logged in as an admin
    through the test client."""

    def __init__(self, tmp_path) -> None:
        site = make_site(tmp_path / "site", CAMERAS, people=[])
        self.config = site.config()
        self.event_log = EventLog(self.config.paths.events_db)
        self.status = STATUS
        self.dashboard, _ = build_dashboard(
            self.config,
            status=lambda: self.status,
            watchlist=lambda: None,
            event_log=self.event_log,
            outbox=None,
            engine=lambda: None,
            signer=None,
        )
        self.dashboard.users.add("alice", PASSWORD, "admin")
        self.dashboard.users.add("victor", PASSWORD, "viewer")
        self.app = create_app(self.dashboard)
        self.client = self.login("alice")

    def login(self, name: str) -> FlaskClient:
        client = self.app.test_client()
        token = login_token(client.get("/login").text)
        answer = client.post("/login", data={"csrf": token, "username": name, "password": PASSWORD})
        assert answer.status_code == 302
        return client

    def page(self, path: str, **params) -> str:
        answer = self.client.get(path, query_string=params)
        assert answer.status_code == 200, (path, params, answer.status_code)
        return answer.text

    def close(self) -> None:
        self.event_log.close()
        self.dashboard.users.close()


@pytest.fixture
def board(tmp_path):
    board = Board(tmp_path)
    yield board
    board.close()


def locations(page: str) -> dict[str, list[str]]:
    """The page's location headings, each with the names of its cameras, in the page's order."""
    found = re.findall(r'<section class="location" data-location="([^"]*)">(.*?)</section>', page, re.S)
    return {
        html.unescape(place): [html.unescape(n) for n in re.findall(r'data-camera="([^"]*)"', body)]
        for place, body in found
    }


def card(page: str, camera: str) -> str:
    return re.search(
        rf'<article class="card camera" data-camera="{re.escape(camera)}" data-state="[a-z]+">.*?</article>',
        page,
        re.S,
    ).group(0)


def sources(page: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<img class="(?:snapshot|live)" src="([^"]+)"', page)]


@pytest.mark.parametrize("path", ["/", "/live_feed"])
def test_the_cameras_are_grouped_by_location_with_their_state_fps_and_people(board, path):
    page = board.page(path)
    assert locations(page) == {"Front Gate": ["gate", "Gate 2.east"], "Lobby": ["lobby"]}
    gate = card(page, "gate")
    assert (
        "<h3>gate</h3>" in gate
        and 'data-state="streaming"' in gate
        and '<span class="fps">14.8</span> fps' in gate
    )
    assert '<span class="people">1</span> in view' in gate and "/dev/video0" in gate


def test_the_cameras_states_for_the_pages_to_follow(board):
    answer = board.client.get("/cameras.json")
    assert answer.status_code == 200
    states = {c["name"]: (c["location"], c["state"]) for c in answer.get_json()}
    assert states == {
        "gate": ("Front Gate", "streaming"),
        "Gate 2.east": ("Front Gate", "streaming"),
        "lobby": ("Lobby", "stalled"),
    }
    board.client.delete_cookie("edgeguard_session")
    assert board.client.get("/cameras.json").status_code in (302, 403)  # not without a login


def outputs(page: str) -> dict[str, tuple[str, str, int]]:
    """The overview's outputs: name -> (ok or fault, what it says, how many events wait)."""
    found = re.findall(
        r'<li data-output="([^"]+)" data-state="(ok|fault)"><strong>[^<]+</strong>:\s*'
        r'<span class="[a-z]+">([^<]*)</span>(?: · <strong>(\d+)</strong> waiting)?</li>',
        page,
    )
    return {name: (state, html.unescape(text), int(n or 0)) for name, state, text, n in found}


def test_the_overview_shows_each_output_with_its_state_and_backlog_to_admins_and_viewers(board):
    outbox = board.config.paths.outbox_db
    board.status = SiteStatus(
        STATUS.cameras,
        outputs=[
            OutputStatus("sms", fault=f"cannot write {outbox}: disk I/O error", backlog=2),
            OutputStatus("dashboard"),
            MqttStatus("mqtt", state="connected to broker.example.net:8883", connected=True, backlog=3),
        ],
    )
    assert outputs(board.page("/")) == {
        "sms": ("fault", f"cannot write {outbox}: disk I/O error", 2),
        "dashboard": ("ok", "ok", 0),
        "mqtt": ("ok", "connected to broker.example.net:8883", 3),
    }
    viewer = board.login("victor").get("/").text
    assert outputs(viewer)["sms"] == ("fault", f"cannot write {outbox.name}: disk I/O error", 2)
    assert outputs(viewer)["mqtt"] == ("ok", "connected to broker.example.net:8883", 3)
    assert str(outbox) not in viewer  # no file system path for a viewer
    board.status = SiteStatus(STATUS.cameras)  # no outputs known (a dashboard outside the daemon): no card
    assert 'id="outputs"' not in board.page("/")


@pytest.mark.parametrize("path,kind", [("/", "snapshot"), ("/live_feed", "live")])
def test_a_stalled_camera_shows_its_state_instead_of_a_picture(board, path, kind):
    page = board.page(path)
    lobby = card(page, "lobby")
    assert '<p class="no-picture stalled"><strong>stalled</strong>' in lobby and "<img" not in lobby
    assert f'<img class="{kind}"' in card(page, "gate")
    assert len(sources(page)) == 2  # no picture asked of the stalled camera (nor a live viewer's place taken)


def test_a_camera_name_with_a_space_and_a_dot_works_in_the_addresses(board):
    board.dashboard.live.publish("Gate 2.east", np.full((48, 64, 3), 128, np.uint8), [], time.time())
    snapshot = [src for src in sources(board.page("/")) if "Gate" in src]
    assert snapshot == ["/snapshot/Gate%202.east.jpg"]
    answer = board.client.get(snapshot[0])
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg" and answer.data[:2] == b"\xff\xd8"
    live = [src for src in sources(board.page("/live_feed")) if "Gate" in src]
    assert live == ["/video_feed/Gate%202.east"]
    answer = board.client.get(live[0], buffered=False)
    try:
        assert answer.status_code == 200 and answer.mimetype == "multipart/x-mixed-replace"
        assert b"Content-Type: image/jpeg" in next(answer.response)
    finally:
        answer.close()
    assert board.dashboard.live.viewers == 0  # the viewer's place was given back


@pytest.mark.parametrize(
    "path",
    [
        "/snapshot/nowhere.jpg",
        "/video_feed/nowhere",
        "/snapshot/Gate%202.jpg",
        "/video_feed/gate%202.east",
        "/snapshot/..%2Fgate.jpg",
    ],
)
def test_an_unknown_camera_is_a_404(board, path):
    assert board.client.get(path).status_code == 404


def test_a_camera_that_has_sent_no_frame_yet_has_no_snapshot(board):
    assert board.client.get("/snapshot/gate.jpg").status_code == 404


@pytest.fixture
def logged(board):
    """Events of each camera: 3 at the gate, 2 at Gate 2.east (both Front Gate), 1 in the lobby."""
    now = time.time()
    for n, camera in enumerate(["gate", "gate", "gate", "Gate 2.east", "Gate 2.east", "lobby"]):
        location = "Lobby" if camera == "lobby" else "Front Gate"
        board.event_log.append(Event("unknown_face", now - n, camera, location))
    return board


def rows(page: str) -> list[tuple[str, str]]:
    """The detection log's rows as (camera, location)."""
    cells = [
        re.findall(r"<td>(.*?)</td>", row, re.S)[3]
        for row in re.findall(r"<tr data-seq=.*?</tr>", page, re.S)
    ]
    return [
        tuple(
            html.unescape(v) for v in re.fullmatch(r'(.*)<br><small class="muted">(.*)</small>', c).groups()
        )
        for c in cells
    ]


def options(page: str, name: str) -> tuple[list[str], list[str]]:
    """A select box's choices and the chosen ones."""
    select = re.search(rf'<select name="{name}">(.*?)</select>', page, re.S).group(1)
    choices = re.findall(r'<option value="([^"]*)" ?(selected)?>', select)
    return [html.unescape(v) for v, _ in choices], [html.unescape(v) for v, chosen in choices if chosen]


def test_the_log_offers_the_configured_cameras_and_locations(logged):
    page = logged.page("/detection_logs")
    assert options(page, "camera") == (["", "gate", "Gate 2.east", "lobby"], [])
    assert options(page, "location") == (["", "Front Gate", "Lobby"], [])
    assert "6 in all" in page and len(rows(page)) == 6


def test_the_log_filters_by_camera(logged):
    page = logged.page("/detection_logs", camera="Gate 2.east")
    assert rows(page) == [("Gate 2.east", "Front Gate")] * 2 and "2 in all" in page
    assert options(page, "camera")[1] == ["Gate 2.east"]
    csv = re.search(r'<a href="([^"]+)">CSV</a>', page).group(1)
    assert html.unescape(csv) == "/detection_logs.csv?camera=Gate+2.east"  # kept with the other filters
    assert logged.client.get(html.unescape(csv)).text.count("\n") == 3  # the header and the two events


def test_the_log_filters_by_location_and_with_the_other_filters(logged):
    page = logged.page("/detection_logs", location="Front Gate")
    assert rows(page) == [("Gate 2.east", "Front Gate")] * 2 + [("gate", "Front Gate")] * 3
    assert options(page, "location")[1] == ["Front Gate"]
    page = logged.page("/detection_logs", location="Lobby", camera="lobby", type="unknown_face")
    assert rows(page) == [("lobby", "Lobby")]
    assert rows(logged.page("/detection_logs", location="Lobby", camera="gate")) == []


def test_the_log_pages_keep_the_camera(logged):
    for n in range(60):
        logged.event_log.append(Event("unknown_face", time.time() - 100 - n, "Gate 2.east", "Front Gate"))
    page = logged.page("/detection_logs", camera="Gate 2.east")
    assert "62 in all" in page and "page 1 of 2" in page
    older = html.unescape(re.search(r'<a href="([^"]+)">older</a>', page).group(1))
    page = logged.client.get(older).text
    assert "page 2 of 2" in page and set(rows(page)) == {("Gate 2.east", "Front Gate")}


@pytest.mark.parametrize(
    "value", ["nowhere", "<script>alert(1)</script>", '"><img src=x>', "gate\0", "x" * 5000]
)
@pytest.mark.parametrize("name", ["camera", "location"])
def test_an_unknown_camera_or_location_finds_nothing_and_is_never_reflected_unescaped(logged, name, value):
    page = logged.page("/detection_logs", **{name: value})
    assert "0 in all" in page and rows(page) == []
    assert "<script>alert" not in page and "<img src=x>" not in page
    assert options(page, name)[1] == [value]  # offered, escaped, as what the page shows: no rows of it


def test_a_camera_no_longer_configured_still_finds_its_events(logged):
    logged.event_log.append(Event("unknown_face", time.time(), "old porch", "Porch"))
    assert "old porch" not in options(logged.page("/detection_logs"), "camera")[0]
    page = logged.page("/detection_logs", camera="old porch")
    assert rows(page) == [("old porch", "Porch")] and options(page, "camera")[1] == ["old porch"]
