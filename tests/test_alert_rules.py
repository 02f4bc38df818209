"""Tests for edgeguard.alerts.routing and edgeguard.alerts.wording: what an event turns into in the outbox
(real config files, a real SQLite outbox, and a fixed-URL stand-in for our own ImageLinks protocol)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest

from edgeguard.alerts import wording
from edgeguard.alerts.outbox import Outbox
from edgeguard.alerts.routing import Alerter
from edgeguard.alerts.wording import to_gsm7
from edgeguard.common.event_types import ROUTE_TYPES
from edgeguard.events.event import Event

GUARD = "+15551230009"
POLICE = "+15551230911"
LIAISON = "+15551230444"
LINK = "https://gate.example.net:8780/c/MTc2NDA0NjUzMTpmYWNlLmpwZw.Zm9vYmFyYmF6cXV4cXV1eA"
DAY = datetime(2026, 11, 22)


def at(hh: int, mm: int, ss: int = 0, days: int = 0) -> float:
    """A local time on the test day, as epoch seconds (bodies show local time)."""
    return (DAY + timedelta(days=days, hours=hh, minutes=mm, seconds=ss)).timestamp()


class FixedLinks:
    """An ImageLinks that hands out one fixed URL and remembers what it was asked for."""

    def __init__(self, url: str = LINK) -> None:
        self.url = url
        self.asked: list[Path] = []

    def link_for(self, path: Path) -> str | None:
        self.asked.append(path)
        return self.url


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def route(
    to: list[str], events: list[str] | None = None, categories: list[str] | None = None, hours: str = ""
) -> str:
    text = "[[alerts.route]]\nto = [" + ", ".join(f'"{n}"' for n in to) + "]\n"
    if events is not None:
        text += "events = [" + ", ".join(f'"{e}"' for e in events) + "]\n"
    if categories is not None:
        text += "categories = [" + ", ".join(f'"{c}"' for c in categories) + "]\n"
    if hours:
        text += f'hours = "{hours}"\n'
    return text


@pytest.fixture
def make(site, tmp_path):
    """make(alerts_toml, routes...) -> (Alerter, Outbox, FixedLinks, Clock) from a real config file."""
    made: list[Outbox] = []

    def build(settings: str = "", *routes: str, links: FixedLinks | None = None, location: str = ""):
        site.write_config(f"{location}[alerts]\n{settings}\n" + "".join(routes))
        config = site.config()
        outbox = Outbox(tmp_path / f"outbox{len(made)}.db")
        made.append(outbox)
        clock = Clock(at(14, 2, 11))
        links = FixedLinks() if links is None else links
        return Alerter(config, outbox, links, clock=clock), outbox, links, clock

    yield build
    for outbox in made:
        outbox.close()


def unknown(t: float, visitor: int = 1, capture: str | None = "/captures/x-face.jpg", **kw) -> Event:
    return Event(
        type="unknown_face",
        time=t,
        camera="gate",
        location=kw.pop("location", "Front Gate"),
        capture=capture,
        extra={"visitor": visitor, **kw.pop("extra", {})},
        **kw,
    )


def known(t: float, pid: str = "7", name: str = "Ana Lima", category: str | None = "wanted", **kw) -> Event:
    return Event(
        type="known_face",
        time=t,
        camera=kw.pop("camera", "gate"),
        location=kw.pop("location", "Front Gate"),
        person_id=pid,
        name=name,
        category=category,
        **kw,
    )


def bodies(outbox: Outbox, to: str | None = None) -> list[str]:
    return [m.body for m in outbox.list() if to is None or m.to_number == to]


def recipients_of(outbox: Outbox) -> list[str]:
    return [m.to_number for m in outbox.list()]


# ---------------------------------------------------------------- bodies


def test_unknown_face_body(make):
    alerter, outbox, links, _ = make("", route([GUARD]))
    ids = alerter(unknown(at(14, 2, 11), capture="/captures/20261122-140211-000-gate-face.jpg"))
    assert len(ids) == 1
    m = outbox.get(ids[0])
    assert m.body == f"EdgeGuard ALERT Front Gate: unknown person 14:02:11 {LINK}"
    assert m.to_number == GUARD and m.status == "pending" and m.media_url is None
    assert links.asked[-1] == Path("/captures/20261122-140211-000-gate-face.jpg")


def test_event_seq_is_kept_with_the_message(make):
    alerter, outbox, _, _ = make("", route([GUARD]))
    event = Event(
        type="unknown_face",
        time=at(9, 0),
        camera="gate",
        location="Front Gate",
        capture="/c/f.jpg",
        extra={"visitor": 1},
        seq=57,
    )
    (mid,) = alerter(event)
    assert outbox.get(mid).event_seq == 57


def test_known_face_body_names_the_person_id_and_category(make):
    alerter, outbox, _, _ = make("", route([GUARD]))
    alerter(known(at(9, 5, 7)))
    alerter(known(at(9, 6, 0), pid="12", name="Bo Chen", category=None))
    assert bodies(outbox) == [
        "EdgeGuard ALERT Front Gate: Ana Lima (Id 7, wanted) 09:05:07",
        "EdgeGuard ALERT Front Gate: Bo Chen (Id 12) 09:06:00",
    ]


def test_crowd_body_gives_the_count(make):
    alerter, outbox, _, _ = make("", route([GUARD]))
    alerter(Event(type="crowd", time=at(17, 30, 5), camera="gate", location="Hall B", extra={"count": 7}))
    assert bodies(outbox) == ["EdgeGuard ALERT Hall B: crowd of 7 people 17:30:05"]


def test_no_mask_body(make):
    alerter, outbox, _, _ = make("", route([GUARD], events=list(ROUTE_TYPES)))
    alerter(
        Event(
            type="no_mask",
            time=at(10, 0, 1),
            camera="gate",
            location="Lab",
            person_id="7",
            name="Ana Lima",
            category="staff",
        )
    )
    alerter(Event(type="no_mask", time=at(10, 0, 2), camera="gate", location="Lab", extra={"visitor": 4}))
    assert bodies(outbox) == [
        "EdgeGuard ALERT Lab: no mask: Ana Lima (Id 7, staff) 10:00:01",
        "EdgeGuard ALERT Lab: no mask: unknown person 10:00:02",
    ]


def test_a_route_texts_about_bare_faces_only_when_it_asks(make):
    """Not every site requires masks: the default route leaves no_mask out."""
    alerter, outbox, _, _ = make("", route([GUARD]) + route([LIAISON], events=["no_mask"]))
    alerter(Event(type="no_mask", time=at(10, 0), camera="gate", location="Lab", extra={"visitor": 4}))
    alerter(unknown(at(10, 1), visitor=5))
    assert [(m.to_number, m.body.split(": ", 1)[1][:12]) for m in outbox.list()] == [
        (LIAISON, "no mask: unk"),
        (GUARD, "unknown pers"),
    ]


def test_maps_link_only_when_coordinates_are_given(make):
    alerter, outbox, _, _ = make("", route([GUARD]))
    alerter(unknown(at(8, 0), visitor=1, latitude=51.501364, longitude=-0.14189))
    alerter(unknown(at(8, 1), visitor=2))
    with_map, without = bodies(outbox)
    assert with_map == (
        f"EdgeGuard ALERT Front Gate: unknown person 08:00:00 {LINK} "
        "map https://maps.google.com/?q=51.50136,-0.14189"
    )
    assert "map" not in without and "maps.google" not in without
    assert without.endswith(LINK)


def test_no_image_link_without_a_capture_or_without_links(make, site, tmp_path):
    alerter, outbox, links, _ = make("", route([GUARD]))
    alerter(unknown(at(8, 0), capture=None))
    assert bodies(outbox) == ["EdgeGuard ALERT Front Gate: unknown person 08:00:00"]
    assert links.asked == []
    plain = Alerter(site.config(), outbox, None, clock=Clock(at(8, 0)))
    plain(unknown(at(8, 5), visitor=9))
    assert bodies(outbox)[-1] == "EdgeGuard ALERT Front Gate: unknown person 08:05:00"


def test_no_phone_number_or_deposit_ever_appears(make, site):
    """Details.csv has phone_number and initial_deposit columns; none of it belongs in an SMS."""
    site.add_row("42", "Ana Lima", "wanted")  # phone +1555010042, deposit 100 in Details.csv
    row = site.details.read_text().splitlines()[-1].split(",")
    phone, deposit = row[2], "98765.43"
    details = {"phone_number": phone, "initial_deposit": deposit, "Phone": phone, "deposit": deposit}
    alerter, outbox, _, _ = make("mms = true", route([GUARD], events=list(ROUTE_TYPES)))
    alerter(known(at(9, 0), pid="42", extra=details))
    alerter(unknown(at(9, 1), extra=details))
    alerter(
        Event(
            type="crowd", time=at(9, 2), camera="gate", location="Front Gate", extra={"count": 3, **details}
        )
    )
    alerter(
        Event(
            type="no_mask",
            time=at(9, 3),
            camera="gate",
            location="Front Gate",
            person_id="42",
            name="Ana Lima",
            category="wanted",
            extra=details,
        )
    )
    messages = outbox.list()
    assert len(messages) == 4
    for m in messages:
        for secret in (phone, phone.lstrip("+"), deposit):
            assert secret not in m.body and secret not in (m.media_url or "")


def test_bodies_are_gsm7_only(make):
    alerter, outbox, _, _ = make("", route([GUARD]))
    alerter(known(at(9, 0), pid="8", name="Zoë Ğül 😀", category="vip", location="Café Ōsaka – Tor 2"))
    (body,) = bodies(outbox)
    bad = {ch for ch in body if ch not in wording.GSM7}
    assert not bad, bad
    assert "😀" not in body
    assert body.startswith("EdgeGuard ALERT Café Osaka ? Tor 2: Zoe Gül ? (Id 8, vip) 09:00:00")


def test_to_gsm7_keeps_gsm_text_and_replaces_the_rest():
    assert to_gsm7("Ärger über Straße in Malmö: ñ é à") == "Ärger über Straße in Malmö: ñ é à"
    assert to_gsm7("Łódź Çağ İpek ı") == "?odz Çag Ipek ?"  # Ł and ı have no GSM-7 base letter
    assert to_gsm7("😀🚨") == "??"
    assert all(ch in wording.GSM7 for ch in to_gsm7("".join(chr(c) for c in range(32, 0x3000))))


@pytest.mark.parametrize(
    "link",
    [
        "https://gate.example.net/~edgeguard/c/abc.def",  # public_url with a home-directory path
        "http://[2001:db8::5]:8780/c/abc.def",  # public_url with an IPv6 address
    ],
)
def test_image_link_in_the_body_still_leads_to_the_image(make, link):
    """The config accepts these public_url values; the link in the SMS must still work.  '~', '[' and
    ']' are not in the GSM-7 basic set, but they are in its extension table (or can be
    percent-encoded): turning them into '?' breaks the link."""
    alerter, outbox, _, _ = make("", route([GUARD]), links=FixedLinks(link))
    alerter(unknown(at(14, 2, 11)))
    (body,) = bodies(outbox)
    sent_link = body.split(" 14:02:11 ", 1)[1].split(" ")[0]
    assert unquote(sent_link) == link, body


# ---------------------------------------------------------------- routing


def test_unknown_faces_only_route_ignores_known_faces(make):
    alerter, outbox, _, _ = make("", route([GUARD], events=["unknown_face"]))
    assert alerter(known(at(9, 0))) == []
    assert (
        alerter(Event(type="crowd", time=at(9, 1), camera="gate", location="Front Gate", extra={"count": 9}))
        == []
    )
    assert outbox.list() == []
    assert len(alerter(unknown(at(9, 2)))) == 1
    assert recipients_of(outbox) == [GUARD]


def test_never_for_staff(make):
    alerter, outbox, _, _ = make('quiet_categories = ["staff"]', route([GUARD]))
    assert alerter(known(at(9, 0), pid="3", name="Sam Guard", category="staff")) == []
    assert (
        alerter(
            Event(
                type="no_mask",
                time=at(9, 1),
                camera="gate",
                location="Front Gate",
                person_id="3",
                name="Sam Guard",
                category="staff",
            )
        )
        == []
    )
    assert outbox.list() == []
    assert len(alerter(known(at(9, 2), pid="7", category="wanted"))) == 1
    assert len(alerter(known(at(9, 3), pid="9", category=None))) == 1
    assert len(bodies(outbox)) == 2 and "Sam Guard" not in " ".join(bodies(outbox))


def test_routes_by_category(make):
    alerter, outbox, _, _ = make(
        "",
        route([POLICE], events=["known_face"], categories=["wanted"]),
        route([LIAISON], events=["known_face"], categories=["missing"]),
        route([GUARD], events=["unknown_face"]),
    )
    alerter(known(at(9, 0), pid="1", name="Wanted Person", category="wanted"))
    alerter(known(at(9, 1), pid="2", name="Missing Child", category="missing"))
    alerter(unknown(at(9, 2), visitor=5))
    assert alerter(known(at(9, 3), pid="4", name="Vip Guest", category="vip")) == []
    assert alerter(known(at(9, 4), pid="5", name="No Category", category=None)) == []
    got = [(m.to_number, m.body.split(": ", 1)[1].split(" (")[0].split(" 09:")[0]) for m in outbox.list()]
    assert got == [(POLICE, "Wanted Person"), (LIAISON, "Missing Child"), (GUARD, "unknown person")]


def test_a_recipient_on_two_matching_routes_gets_one_message(make):
    alerter, outbox, _, _ = make(
        "",
        route([GUARD, POLICE], events=["known_face"]),
        route([POLICE], events=["known_face"], categories=["wanted"]),
    )
    ids = alerter(known(at(9, 0)))
    assert len(ids) == 2 and sorted(recipients_of(outbox)) == sorted([GUARD, POLICE])


def test_no_mask_only_during_opening_hours(make):
    alerter, outbox, _, _ = make("", route([GUARD], events=["no_mask"], hours="08:00-18:00"))

    def no_mask(t: float, visitor: int) -> list[int]:
        return alerter(
            Event(type="no_mask", time=t, camera="gate", location="Shop", extra={"visitor": visitor})
        )

    assert no_mask(at(7, 59), 1) == []
    assert len(no_mask(at(12, 0), 2)) == 1
    assert no_mask(at(18, 0), 3) == []  # the end of the window is closed
    assert len(no_mask(at(8, 0), 4)) == 1
    assert len(no_mask(at(17, 59), 5)) == 1
    assert alerter(unknown(at(12, 0), visitor=6)) == []  # the route is for no_mask only
    assert [b.split(" ")[-1] for b in bodies(outbox)] == ["12:00:00", "08:00:00", "17:59:00"]


def test_hours_across_midnight(make):
    alerter, outbox, _, _ = make("", route([GUARD], events=["unknown_face"], hours="22:00-06:00"))
    results = {
        label: bool(alerter(unknown(t, visitor=n, capture=None)))
        for n, (label, t) in enumerate(
            [
                ("21:59", at(21, 59)),
                ("22:00", at(22, 0)),
                ("23:30", at(23, 30)),
                ("00:10", at(0, 10, days=1)),
                ("05:59", at(5, 59, days=1)),
                ("06:00", at(6, 0, days=1)),
                ("12:00", at(12, 0, days=1)),
            ]
        )
    }
    assert results == {
        "21:59": False,
        "22:00": True,
        "23:30": True,
        "00:10": True,
        "05:59": True,
        "06:00": False,
        "12:00": False,
    }
    assert len(outbox.list()) == 4


# ---------------------------------------------------------------- cooldown


def test_cooldown_per_person_location_and_type(make):
    alerter, outbox, _, _ = make("cooldown_minutes = 5", route([GUARD], events=list(ROUTE_TYPES)))
    t = at(10, 0)
    assert len(alerter(known(t, pid="7"))) == 1
    assert alerter(known(t + 60, pid="7")) == []
    assert alerter(known(t + 299, pid="7")) == []
    assert len(alerter(known(t + 120, pid="8", name="Bo Chen"))) == 1  # a different person
    assert len(alerter(known(t + 130, pid="7", location="Back Door"))) == 1  # a different location
    assert (
        len(
            alerter(
                Event(
                    type="no_mask",
                    time=t + 140,
                    camera="gate",
                    location="Front Gate",
                    person_id="7",
                    name="Ana Lima",
                )
            )
        )
        == 1
    )  # a different event type
    assert len(alerter(known(t + 301, pid="7"))) == 1  # five minutes after the first alert
    assert alerter(known(t + 400, pid="7")) == []  # the new alert starts a new cooldown
    assert len(outbox.list()) == 5


def test_cooldown_for_the_same_unknown_visitor(make):
    alerter, outbox, _, _ = make("cooldown_minutes = 5", route([GUARD]))
    t = at(11, 0)
    assert len(alerter(unknown(t, visitor=3))) == 1
    assert alerter(unknown(t + 30, visitor=3, extra={"revisit": True})) == []
    assert len(alerter(unknown(t + 40, visitor=4))) == 1
    assert len(alerter(unknown(t + 5 * 60 + 1, visitor=3))) == 1
    assert len(outbox.list()) == 3


def test_events_nobody_receives_do_not_start_a_cooldown(make):
    alerter, outbox, _, _ = make("cooldown_minutes = 5", route([GUARD], hours="08:00-18:00"))
    assert alerter(known(at(7, 59, 30))) == []  # outside the hours: no alert
    assert len(alerter(known(at(8, 0, 10)))) == 1  # 40 s later, inside: alerts


# ---------------------------------------------------------------- hourly cap


def test_hourly_cap_holds_back_and_then_counts(make):
    alerter, outbox, _, clock = make("max_per_hour = 3", route([GUARD]))
    start = at(14, 2, 11)
    results = []
    for n in range(5):
        clock.t = start + 10 * n
        results.append(alerter(known(clock.t, pid=str(n + 1), name=f"Person {n + 1}")))
    assert [len(r) for r in results] == [1, 1, 1, 0, 0]
    assert len(outbox.list()) == 3
    held_since = datetime.fromtimestamp(start + 30).strftime("%H:%M")
    clock.t = start + 3600 + 60  # an hour later the cap has room again
    (mid,) = alerter(known(clock.t, pid="6", name="Person 6"))
    body = outbox.get(mid).body
    assert body.endswith(f" +2 more since {held_since}"), body
    assert body.startswith("EdgeGuard ALERT Front Gate: Person 6 (Id 6, wanted)")
    clock.t += 60  # the count was reported once; the next message does not repeat it
    (mid,) = alerter(known(clock.t, pid="7", name="Person 7"))
    assert "more since" not in outbox.get(mid).body


def test_hourly_cap_is_per_recipient(make):
    alerter, outbox, _, clock = make(
        "max_per_hour = 2", route([GUARD], events=["known_face"]), route([POLICE], events=["unknown_face"])
    )
    t = at(15, 0)
    for n in range(3):
        clock.t = t + n
        alerter(known(clock.t, pid=str(n + 1)))
    clock.t = t + 10
    assert len(alerter(unknown(clock.t, visitor=1))) == 1  # the police number still has room
    assert recipients_of(outbox) == [GUARD, GUARD, POLICE]


# ---------------------------------------------------------------- MMS


def test_mms_puts_the_link_in_media_url(make):
    alerter, outbox, _, _ = make("mms = true", route([GUARD]))
    (mid,) = alerter(unknown(at(9, 0), visitor=1))
    m = outbox.get(mid)
    assert m.media_url == LINK and LINK in m.body
    (mid,) = alerter(known(at(9, 1)))  # no capture: nothing to attach
    assert outbox.get(mid).media_url is None


def test_without_mms_there_is_no_media_url(make):
    alerter, outbox, _, _ = make("mms = false", route([GUARD]))
    (mid,) = alerter(unknown(at(9, 0), visitor=1))
    m = outbox.get(mid)
    assert m.media_url is None and m.body.endswith(LINK)


def test_one_message_per_recipient_with_the_same_body(make):
    alerter, outbox, _, _ = make("mms = true", route([GUARD, POLICE, LIAISON], events=["unknown_face"]))
    ids = alerter(unknown(at(9, 0), visitor=1))
    assert len(ids) == 3
    messages = outbox.list()
    assert [m.to_number for m in messages] == [GUARD, POLICE, LIAISON]
    assert len({m.body for m in messages}) == 1 and all(m.media_url == LINK for m in messages)
    assert re.fullmatch(r"EdgeGuard ALERT Front Gate: unknown person 09:00:00 \S+", messages[0].body)


# ---------------------------------------------------------------- locations and cameras

CAMERAS = (
    '[[camera]]\nname = "gate"\nlocation = "Front Gate"\n'
    '[[camera]]\nname = "door"\nlocation = "Back Door"\n'
    '[[camera]]\nname = "till"\nlocation = "Back Door"\n'
)


def test_each_location_texts_its_own_contact(make):
    alerter, outbox, _, _ = make(
        "",
        f'[[alerts.route]]\nto = ["{GUARD}"]\nlocations = ["Front Gate"]\n',
        f'[[alerts.route]]\nto = ["{LIAISON}"]\nlocations = ["Back Door"]\n',
        f'[[alerts.route]]\nto = ["{POLICE}"]\ncameras = ["till"]\nevents = ["known_face"]\n',
        location=CAMERAS,
    )
    alerter(unknown(at(9, 0), visitor=1))
    alerter(unknown(at(9, 1), visitor=2, location="Back Door"))
    alerter(known(at(9, 2), location="Back Door", camera="till"))
    assert recipients_of(outbox) == [GUARD, LIAISON, LIAISON, POLICE]
    assert bodies(outbox, GUARD) == [f"EdgeGuard ALERT Front Gate: unknown person 09:00:00 {LINK}"]


def test_the_same_visitor_alerts_once_per_location(make):
    alerter, outbox, _, _ = make("cooldown_minutes = 10", route([GUARD]), location=CAMERAS)
    alerter(unknown(at(9, 0), visitor=3))
    alerter(
        Event(
            type="unknown_face",
            time=at(9, 1),
            camera="door",
            location="Back Door",
            capture="/c/y.jpg",
            extra={"visitor": 3},
        )
    )
    alerter(
        Event(
            type="unknown_face",
            time=at(9, 2),
            camera="till",
            location="Back Door",
            capture="/c/y.jpg",
            extra={"visitor": 3, "revisit": True},
        )
    )  # walked on to the next camera at the same place
    assert [b.split(":")[0] for b in bodies(outbox)] == [
        "EdgeGuard ALERT Front Gate",
        "EdgeGuard ALERT Back Door",
    ]


def camera_event(kind: str, t: float, seconds: float, camera: str = "door") -> Event:
    return Event(
        type=kind, time=t, camera=camera, location="Back Door", extra={"seconds": seconds, "state": "stalled"}
    )


def test_camera_down_and_up_are_texted_only_when_a_route_asks(make):
    alerter, outbox, _, _ = make(
        "", route([GUARD]), route([POLICE], events=["camera_down", "camera_up"]), location=CAMERAS
    )
    alerter(camera_event("camera_down", at(3, 10), 125.0))
    alerter(camera_event("camera_up", at(3, 40), 1925.0))
    assert bodies(outbox) == [
        "EdgeGuard ALERT Back Door: camera door DOWN (stalled), no frames for 2 min 03:10:00",
        "EdgeGuard ALERT Back Door: camera door back up after 32 min 03:40:00",
    ]
    assert recipients_of(outbox) == [POLICE, POLICE]


def test_camera_events_cool_down_per_camera(make):
    alerter, outbox, _, _ = make(
        "cooldown_minutes = 30", route([GUARD], events=["camera_down"]), location=CAMERAS
    )
    alerter(camera_event("camera_down", at(3, 10), 130.0))
    alerter(camera_event("camera_down", at(3, 11), 130.0, camera="till"))
    alerter(camera_event("camera_down", at(3, 20), 130.0))  # flapping: within the cooldown
    assert [b.split(":")[1] for b in bodies(outbox)] == [
        " camera door DOWN (stalled), no frames for 2 min 03",
        " camera till DOWN (stalled), no frames for 2 min 03",
    ]
