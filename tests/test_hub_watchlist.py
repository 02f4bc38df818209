"""One watchlist for the fleet: people edited at the hub reach the devices as a signed, versioned bundle (only
those meant for the device's group); a device applies it to its folders as a hand edit would (its own records
kept, marked local); a tampered bundle is refused with a log line and the running watchlist stays."""

from __future__ import annotations

import base64
import json
import logging
import re

import pytest
import requests
from brokers import Broker, needs_mosquitto
from conftest import CLIP, PEOPLE, WATCHLIST, make_site
from helpers import wait_for
from hub_fleet import hub_config, start_hub, stop_hub
from postgres import postgres_server_fixture  # noqa: F401  (the fixture postgres_server)
from test_hub import store  # noqa: F401  (the fixture: SQLite and PostgreSQL)
from test_hub_web import HubWeb
from test_web import login_token

from edgeguard.config import ConfigError, load_config
from edgeguard.hub.store import HubStore
from edgeguard.hub.watchlist import key_path, load_key
from edgeguard.watchlist.bundle import (
    STATE_FILE,
    BundleError,
    apply_bundle,
    new_key,
    open_bundle,
    public_text,
    seal,
)
from edgeguard.watchlist.details import read_details
from edgeguard.watchlist.sync import HubSync
from edgeguard.web.users import open_users

LIN = (PEOPLE / "lin-manuel-miranda.png").read_bytes()
OBAMA = (PEOPLE / "obama.jpg").read_bytes()


def person(pid: str, name: str, photos=(("a.png", LIN),), category: str = "missing") -> dict:
    return {"id": pid, "name": name, "category": category, "photos": list(photos)}


def tampered(bundle: bytes) -> bytes:
    envelope = json.loads(bundle)
    body = base64.b64decode(envelope["payload"]).replace(b"Lin", b"Bob")
    return json.dumps({**envelope, "payload": base64.b64encode(body).decode()}).encode()


def test_a_bundle_opens_only_with_the_hubs_key_and_untouched():
    key = new_key()
    bundle = seal(key, 3, "north", [person("h1", "Lin")])
    payload = open_bundle(public_text(key), bundle)
    assert payload["version"] == 3 and payload["people"][0]["photos"][0]["bytes"] == LIN
    with pytest.raises(BundleError, match="signature"):
        open_bundle(public_text(key), tampered(bundle))
    with pytest.raises(BundleError, match="signature"):
        open_bundle(public_text(new_key()), bundle)
    with pytest.raises(BundleError, match="not a signed bundle"):
        open_bundle(public_text(key), b"<html>proxy error</html>")
    for bad in ("../x", "x/../../y"):
        with pytest.raises(BundleError, match="Id"):
            open_bundle(public_text(key), seal(key, 4, "", [person(bad, "Evil")]))
    with pytest.raises(BundleError, match="photo name"):
        open_bundle(public_text(key), seal(key, 4, "", [person("h2", "X", [("../../evil.png", LIN)])]))


def test_a_device_applies_bundles_as_a_hand_edit_keeping_its_own_records(tmp_path):
    site = make_site(
        tmp_path / "site", people=[("1", "Local One", "obama.jpg"), ("h9", "Local Nine", "biden.jpg")]
    )
    config = site.config()
    key = new_key()

    def apply(version: int, people: list[dict]):
        return apply_bundle(config, open_bundle(public_text(key), seal(key, version, "", people)))

    done = apply(1, [person("h1", "Lin Hub", [("a.png", LIN), ("b.jpg", OBAMA)]), person("h9", "Hub Nine")])
    assert done.written == ("h1",) and done.kept_local == ("h9",)
    people, _ = read_details(config.paths.details_csv)
    assert people["h1"].name == "Lin Hub" and people["h1"].details["source"] == "hub"
    assert people["h1"].category == "missing"
    assert {people[p].details["source"] for p in ("1", "h9")} == {"local"}
    assert people["h9"].name == "Local Nine"  # the local record is kept as it was
    folder = config.paths.training_images / "h1"
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.jpg"]
    assert (folder / "a.png").read_bytes() == LIN and folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "a.png").stat().st_mode & 0o777 == 0o600

    done = apply(2, [person("h1", "Lin Hub", [("b.jpg", OBAMA)]), person("h2", "Second")])
    assert sorted(p.name for p in folder.iterdir()) == ["b.jpg"]  # the photo the hub dropped is gone
    done = apply(3, [person("h2", "Second")])
    assert done.removed == ("h1",) and not folder.exists()
    people, _ = read_details(config.paths.details_csv)
    assert set(people) == {"1", "h9", "h2"}
    with pytest.raises(BundleError, match="not newer"):
        apply(3, [])
    assert json.loads((config.paths.encodings_cache / STATE_FILE).read_text()) == {
        "version": 3,
        "ids": ["h2"],
    }


def test_the_hub_hands_each_device_its_groups_people_signed_for_its_token(tmp_path):
    hub = HubWeb(tmp_path / "hub")
    try:
        admin = hub.login("alice")
        csrf = re.search(r'name="csrf" value="([^"]+)"', admin.get(f"{hub.url}/watchlist").text).group(1)
        for pid, groups in (("p1", ""), ("p2", "north"), ("p3", "south")):
            answer = admin.post(
                f"{hub.url}/watchlist",
                data={
                    "csrf": csrf,
                    "id": pid,
                    "name": f"Person {pid}",
                    "category": "Missing",
                    "groups": groups,
                },
                files={"photos": ("face.png", LIN, "image/png")},
                allow_redirects=False,
            )
            assert answer.status_code == 302, answer.text
        garbage = admin.post(
            f"{hub.url}/watchlist",
            data={"csrf": csrf, "id": "p9", "name": "Person p9"},
            files={"photos": ("face.png", b"not an image", "image/png")},
        )
        assert garbage.status_code == 400 and "not an image" in garbage.text
        viewer = hub.login("victor")
        page = viewer.get(f"{hub.url}/watchlist").text
        assert "Person p3" in page and "version 3" in page
        refused = viewer.post(f"{hub.url}/watchlist", data={"csrf": csrf, "id": "p4", "name": "X"})
        assert refused.status_code == 403
        assert hub.store.watchlist_version() == 3

        token = hub.store.add_device_token("door-1", "north")
        bundle = requests.get(f"{hub.url}/api/watchlist", headers={"Authorization": f"Bearer {token}"})
        payload = open_bundle(public_text(hub.fleet.key), bundle.content)
        assert payload["version"] == 3 and payload["group"] == "north"
        assert [p["id"] for p in payload["people"]] == ["p1", "p2"]  # south's person is not handed to it
        assert payload["people"][0]["category"] == "missing"
        assert payload["people"][0]["photos"][0]["bytes"] == LIN
        for auth in ("Bearer wrong", "", f"Basic {token}"):
            answer = requests.get(f"{hub.url}/api/watchlist", headers={"Authorization": auth})
            assert answer.status_code == 401 and b"Person" not in answer.content

        hub.store.add_device_token("door-1", "south")  # a new token: the old one stops working
        assert (
            requests.get(f"{hub.url}/api/watchlist", headers={"Authorization": f"Bearer {token}"}).status_code
            == 401
        )
        assert hub.store.remove_person("p1") and hub.store.watchlist_version() == 4
        assert [p["id"] for p in hub.store.watchlist_people("south")] == ["p3"]
    finally:
        hub.stop()


def test_a_tampered_bundle_is_refused_and_the_running_watchlist_stays(tmp_path, caplog, monkeypatch):
    key = new_key()
    site = make_site(
        tmp_path / "site",
        f'[watchlist]\nhub_url = "http://127.0.0.1:9"\nhub_token = "t"\nhub_key = "{public_text(key)}"\n',
        people=[("1", "Local One", "obama.jpg")],
    )
    config = load_config(site.config_path)
    reloads = []
    sync = HubSync(config, lambda: reloads.append(1))
    before = config.paths.details_csv.read_bytes()
    monkeypatch.setattr(sync, "_fetch", lambda: tampered(seal(key, 1, "", [person("h1", "Lin")])))
    with caplog.at_level(logging.INFO, logger="edgeguard.watchlist.sync"):
        assert sync.sync() is False
    refused = [r for r in caplog.records if "refused the hub's bundle" in r.getMessage()]
    assert len(refused) == 1 and "signature" in refused[0].getMessage()
    assert config.paths.details_csv.read_bytes() == before and reloads == []
    assert not (config.paths.training_images / "h1").exists()

    monkeypatch.setattr(sync, "_fetch", lambda: seal(key, 1, "", [person("h1", "Lin")]))
    assert sync.sync().written == ("h1",) and reloads == [1]
    assert sync.sync() is False and reloads == [1]  # the same version again: nothing to do
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING, logger="edgeguard.watchlist.sync"):
        assert sync.sync() is None  # the hub cannot be reached: tried again later
    assert "cannot fetch the hub's watchlist" in caplog.text


def test_the_fleet_watchlist_in_either_database(store):  # noqa: F811
    assert store.watchlist_version() == 0 and store.watchlist_people() == []
    assert store.put_person("a", "Ann", "missing", (), [("a.png", LIN)]) == 1
    assert store.put_person("b", "Ben", "wanted", ("north", "east"), [("b.jpg", OBAMA), ("c.jpg", LIN)]) == 2
    assert store.put_person("a", "Ann Lee", "missing", ()) == 3  # no photos given: hers are kept
    assert [(p["id"], p["name"], len(p["photos"])) for p in store.watchlist_people("north")] == [
        ("a", "Ann Lee", 1),
        ("b", "Ben", 2),
    ]
    assert [p["id"] for p in store.watchlist_people("south")] == ["a"]
    assert store.remove_person("b") and not store.remove_person("b") and store.watchlist_version() == 4
    assert [p["id"] for p in store.watchlist_people("north")] == ["a"]
    token = store.add_device_token("door-1", "north")
    assert store.token_device(token) == ("door-1", "north") and store.token_device("x") is None
    assert store.token_devices() == ["door-1"]


def test_a_hub_url_needs_its_token_and_key(tmp_path):
    path = tmp_path / "edgeguard.toml"
    for text, why in (
        ('hub_url = "https://hub.example.net"\nhub_token = "t"\n', "needs hub_token and hub_key"),
        ('hub_url = "hub.example.net"\nhub_token = "t"\nhub_key = "k"\n', "must start with https://"),
    ):
        path.write_text(f'[paths]\nbase_dir = "{tmp_path}"\n[watchlist]\n{text}', encoding="utf-8")
        path.chmod(0o600)
        with pytest.raises(ConfigError, match=why):
            load_config(path)


@pytest.mark.slow
@needs_mosquitto
def test_a_person_added_at_the_hub_reaches_a_device_and_is_recognised_on_its_replay(tmp_path, daemons):
    """A real broker, the real hub and the real daemon replaying the clip without Lin-Manuel Miranda on its
    watchlist: an admin adds him at the hub, the hub tells the device, the device fetches and applies the
    signed bundle, reloads, and its next sightings of him are known faces, at the hub too."""
    broker = Broker(tmp_path / "broker").start()
    hub_toml = hub_config(tmp_path / "hub", broker.port, "hub-a")
    config = load_config(hub_toml)
    hub_store = HubStore.open(config.hub.database(config.paths.base_dir))
    token = hub_store.add_device_token("door-1", "north")
    public = public_text(load_key(key_path(config)))
    users = open_users(config.paths.users_db)
    users.add("alice", "a long hub password", "admin")
    users.close()
    hub = start_hub(hub_toml, tmp_path / "hub.log")
    url = f"http://{config.web.listen}"
    site = make_site(
        tmp_path / "site",
        "[camera]\nloop = true\nrealtime = true\n[web]\nenabled = false\n"
        f'[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "door-1"\n'
        "keepalive = 5\ndiscovery = false\n"
        f'[watchlist]\nhub_url = "{url}"\nhub_token = "{token}"\nhub_key = "{public}"\n',
        people=WATCHLIST[1:],
    )
    try:
        wait_for(lambda: _up(url), 60, lambda: (tmp_path / "hub.log").read_text())
        daemon = daemons(site.config_path, "--source", str(CLIP))
        wait_for(lambda: hub_store.count() >= 1, 90, lambda: f"a first event at the hub:\n{daemon.stderr}")
        assert not hub_store.track("1")  # not on the device's watchlist: an unknown face

        admin = requests.Session()
        answer = admin.post(
            f"{url}/login",
            data={
                "csrf": login_token(admin.get(f"{url}/login").text),
                "username": "alice",
                "password": "a long hub password",
            },
            allow_redirects=False,
        )
        assert answer.status_code == 302
        csrf = re.search(r'name="csrf" value="([^"]+)"', admin.get(f"{url}/watchlist").text).group(1)
        answer = admin.post(
            f"{url}/watchlist",
            data={"csrf": csrf, "id": "1", "name": "Lin-Manuel Miranda", "category": "missing"},
            files={"photos": ("lin.png", LIN, "image/png")},
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.text
        wait_for(lambda: hub_store.track("1"), 120, lambda: f"a known face at the hub:\n{daemon.stderr}")
        sighting = hub_store.track("1")[0]
        assert sighting["device"] == "door-1" and sighting["person_name"] == "Lin-Manuel Miranda"
        assert sighting["category"] == "missing"
        assert "applied the hub's version 1" in daemon.stderr
        people, _ = read_details(site.config().paths.details_csv)
        assert people["1"].details["source"] == "hub"
        assert {people[p].details["source"] for p in ("2", "3", "4")} == {"local"}
    finally:
        stop_hub(hub)
        hub_store.close()
        broker.stop()


def _up(url: str) -> bool:
    try:
        return requests.get(f"{url}/login", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False
