"""Wrong names corrected from the dashboard (real HTTP, the real Flask app, a real event log and captures
written by the events stage): the detection log's "Not <name>" and "This is…" buttons, the same row pushed
live, and the negatives on the records pages."""

from __future__ import annotations

import re

import pytest
from conftest import PEOPLE, lfw_photos, make_site
from recorded import Recorded  # tests/recorded.py
from test_web import Board  # the dashboard on a free port, with an admin (alice) and a viewer (victor)

from edgeguard.config import RecognitionConfig
from edgeguard.faces.engine import FaceEngine
from edgeguard.watchlist.build import build_watchlist, open_cache
from edgeguard.watchlist.negatives import folder_of, read_negatives

BLAIR = lfw_photos("Tony_Blair")


@pytest.fixture(scope="module")
def engine() -> FaceEngine:
    engine = FaceEngine(RecognitionConfig())
    engine.warm_up()
    return engine


class FeedbackBoard(Board):
    """The test dashboard with the site's watchlist (for the "This is…" chooser) and a reload hook that
    counts."""

    def __init__(self, site, engine: FaceEngine) -> None:
        super().__init__(site)
        self.reloads = 0
        watchlist = build_watchlist(self.config, engine, open_cache(self.config))
        self.dashboard.watchlist = lambda: watchlist
        self.dashboard.reload_watchlist = self._reload
        self.recorded = Recorded(site, engine, f'[web]\nlisten = "127.0.0.1:{self.port}"\n')
        self.folder = folder_of(self.config)

    def _reload(self) -> None:
        self.reloads += 1

    def post(self, http, path: str, data: dict, page: str = "/detection_logs"):
        return http.post(self.url + path, data={"csrf": self.csrf(http, page), **data})


PEOPLE_OF_SITE = [("1", "Barack Obama", "obama.jpg"), ("5", "Tony Blair", BLAIR[1])]


@pytest.fixture(scope="module")
def template(tmp_path_factory, engine):
    """A site whose encoding cache the boards' sites borrow (saves encoding the photos for every test)."""
    site = make_site(tmp_path_factory.mktemp("template") / "site", people=PEOPLE_OF_SITE)
    build_watchlist(site.config(), engine, open_cache(site.config()))
    return site


@pytest.fixture
def board(tmp_path, engine, template):
    site = make_site(tmp_path / "site", people=PEOPLE_OF_SITE, cache_from=template)
    board = FeedbackBoard(site, engine)
    yield board
    board.stop()


def row(page: str, seq: int) -> str:
    """The detection log's table row of event `seq`."""
    return re.search(rf'<tr data-seq="{seq}".*?</tr>', page, re.S).group(0)


def test_an_admin_sees_the_buttons_on_known_and_unknown_faces_with_a_capture(board):
    known = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    unknown = board.recorded.event("unknown_face", BLAIR[0], distance=0.7)
    http, _ = board.login()
    page = http.get(f"{board.url}/detection_logs").text
    assert "Not Barack Obama" in row(page, known.seq) and "This is…" in row(page, known.seq)
    assert f"event {known.seq}" in row(page, known.seq)
    assert "not-person" not in row(page, unknown.seq) and "This is…" in row(page, unknown.seq)
    # the chooser offers the other people of the watchlist, by name and Id
    chooser = re.search(r'<select name="id".*?</select>', row(page, known.seq), re.S).group(0)
    assert "Tony Blair (Id 5)" in chooser and "Barack Obama (Id 1)" not in chooser
    viewer, _ = board.login("victor")
    page = viewer.get(f"{board.url}/detection_logs").text
    assert "Not Barack Obama" not in page and "This is…" not in page


def test_not_person_from_the_dashboard_keeps_the_negative_and_reloads(board):
    event = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    http, _ = board.login()
    answer = board.post(http, f"/detection_logs/{event.seq}/feedback", {"action": "not_person"})
    assert answer.status_code == 200 and answer.url.endswith("/detection_logs")
    assert (
        f"Event {event.seq}: 2 sample(s) of its face kept as a negative for Barack Obama (Id 1)"
        in answer.text
    )
    [kept] = read_negatives(board.folder, "1")
    assert kept.event == event.seq and kept.by == "alice"
    assert board.reloads == 1
    assert "reviewed by alice" in row(answer.text, event.seq)
    # the same again: said so, nothing written, no reload
    again = board.post(http, f"/detection_logs/{event.seq}/feedback", {"action": "not_person"})
    assert "already" in again.text and len(read_negatives(board.folder, "1")) == 1 and board.reloads == 1


def test_this_is_from_the_dashboard_adds_the_capture_as_a_photo(board):
    event = board.recorded.event("unknown_face", BLAIR[0], distance=0.7)
    http, _ = board.login()
    answer = board.post(http, f"/detection_logs/{event.seq}/feedback", {"action": "is", "id": "5"})
    assert f"Event {event.seq}: its capture is now a photo of Id 5" in answer.text
    assert len(list((board.site.training / "5").iterdir())) == 2 and board.reloads == 1


@pytest.mark.parametrize(
    "seq,data,message",
    [
        (999, {"action": "not_person"}, "there is no event 999 in the event log"),
        (None, {"action": "is", "id": "42"}, "Id 42 is not on the watchlist"),
        (None, {"action": "is", "id": ""}, "choose who this is"),
        (None, {"action": "is", "id": "1"}, "names Id 1 already"),
    ],
)
def test_bad_input_is_refused_with_the_reason_and_changes_nothing(board, seq, data, message):
    event = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    http, _ = board.login()
    answer = board.post(http, f"/detection_logs/{seq or event.seq}/feedback", data)
    assert answer.status_code == 200 and 'class="flash error"' in answer.text
    flashed = re.search(r'<p class="flash error">(.*?)</p>', answer.text).group(1)
    assert flashed.startswith("Not corrected: ") and message in flashed
    assert not board.folder.exists() or not list(board.folder.iterdir())
    assert len(list((board.site.training / "5").iterdir())) == 1 and board.reloads == 0


def test_an_unknown_action_is_a_bad_request(board):
    event = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    http, _ = board.login()
    assert board.post(http, f"/detection_logs/{event.seq}/feedback", {"action": "forget"}).status_code == 400


def test_a_viewer_cannot_correct_and_every_correction_needs_the_csrf_token(board):
    event = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    path = f"{board.url}/detection_logs/{event.seq}/feedback"
    viewer, _ = board.login("victor")
    for data in ({"action": "not_person"}, {"action": "is", "id": "5"}):
        assert board.post(viewer, f"/detection_logs/{event.seq}/feedback", data).status_code == 403
    admin, _ = board.login()
    assert admin.post(path, data={"action": "not_person"}).status_code == 403
    assert admin.post(path, data={"action": "not_person", "csrf": "forged"}).status_code == 403
    assert not board.folder.exists() or not list(board.folder.iterdir())
    assert len(list((board.site.training / "5").iterdir())) == 1 and board.reloads == 0


def test_the_records_pages_show_the_negatives_and_an_admin_removes_one(board):
    first = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    second = board.recorded.event("known_face", PEOPLE / "obama3.jpg", "1")
    http, _ = board.login()
    for event in (first, second):
        board.post(http, f"/detection_logs/{event.seq}/feedback", {"action": "not_person"})
    records = http.get(f"{board.url}/view_records").text
    obama = re.search(r'<tr data-id="1".*?</tr>', records, re.S).group(0)
    assert '<td class="negatives-count"><a href="/records/1#negatives">2</a></td>' in obama
    page = http.get(f"{board.url}/records/1").text
    for event in (first, second):
        item = re.search(rf'<li data-event="{event.seq}">.*?</li>', page, re.S).group(0)
        assert f"event {event.seq}</a>" in item and "2 sample(s)" in item and "by alice" in item
        assert f"/records/1/negatives/{event.seq}/delete" in item and "Remove" in item
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", item)  # when the event happened

    viewer, _ = board.login("victor")
    seen = viewer.get(f"{board.url}/records/1").text
    assert f"event {first.seq}</a>" in seen and "/negatives/" not in seen  # listed, no button
    assert board.post(viewer, f"/records/1/negatives/{first.seq}/delete", {}, "/records/1").status_code == 403
    assert (
        http.post(f"{board.url}/records/1/negatives/{first.seq}/delete").status_code == 403
    )  # no CSRF token

    reloads = board.reloads
    answer = board.post(http, f"/records/1/negatives/{first.seq}/delete", {}, "/records/1")
    assert f"The negative from event {first.seq} is removed" in answer.text
    assert [n.event for n in read_negatives(board.folder, "1")] == [
        second.seq
    ] and board.reloads == reloads + 1
    answer = board.post(http, f"/records/1/negatives/{first.seq}/delete", {}, "/records/1")
    assert f"Id 1 has no negative from event {first.seq}" in answer.text


def test_a_damaged_negatives_file_is_shown_on_the_record_page_not_a_crash(board):
    board.folder.mkdir(parents=True)
    (board.folder / "1.json").write_text("{ not json")
    http, _ = board.login()
    assert http.get(f"{board.url}/view_records").status_code == 200
    page = http.get(f"{board.url}/records/1")
    assert (
        page.status_code == 200
        and "not a negatives file" in page.text
        and str(board.folder / "1.json") in page.text
    )


def test_deleting_a_person_from_the_dashboard_deletes_their_negatives(board):
    event = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    http, _ = board.login()
    board.post(http, f"/detection_logs/{event.seq}/feedback", {"action": "not_person"})
    assert (board.folder / "1.json").exists()
    answer = board.post(http, "/records/1/delete", {"confirm": "1"}, "/records/1")
    assert "deleted, with its photos and negatives" in answer.text
    assert not (board.folder / "1.json").exists() and not (board.site.training / "1").exists()


def test_the_detection_log_opens_at_one_event(board):
    first = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
    board.recorded.event("unknown_face", BLAIR[0], distance=0.7)
    http, _ = board.login("victor")
    page = http.get(f"{board.url}/detection_logs", params={"event": first.seq}).text
    assert "1 in all" in page and f'data-seq="{first.seq}"' in page


def next_row(lines) -> str:
    """The next row pushed on an event stream (the data lines of its next `row` event, joined)."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif line == "" and data:
            return "\n".join(data)
    raise AssertionError("the stream ended without a row")


@pytest.mark.parametrize("who", ["alice", "victor"])
def test_a_live_row_is_the_row_a_reload_shows(board, who):
    http, _ = board.login(who)
    for page, path in (("logs", "/detection_logs"), ("overview", "/")):
        with http.get(f"{board.url}/events/stream", params={"page": page}, stream=True, timeout=20) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            lines = stream.iter_lines(decode_unicode=True)
            assert next(lines) == "retry: 1000"
            event = board.recorded.event("known_face", PEOPLE / "obama2.jpg", "1")
            board.dashboard.events.handle(event)  # the event bus hands the recorded event to the hub
            live = next_row(lines)
        reloaded = row(http.get(board.url + path).text, event.seq)
        assert live.strip() == reloaded, (who, page)
        assert f"event {event.seq}" in live and f"/captures/{event.capture.rsplit('/', 1)[-1]}" not in live
        assert re.search(rf'src="/captures/[^"/]+/face\.jpg" alt="face of event {event.seq}"', live)
        review_buttons = "Mark reviewed" in live and "Not Barack Obama" in live and "This is…" in live
        assert review_buttons == (who == "alice" and page == "logs"), (who, page)
