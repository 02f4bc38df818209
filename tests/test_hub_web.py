"""The hub's dashboard (the web package's app with the hub's pages): devices with their state and gaps, the
event log across devices with its filters, the map of sightings (Leaflet shipped in the package, tiles only
from the configured server), a person's track with the impossible-travel flag, the last known location of the
missing and wanted; the same logins and roles as a device's dashboard; in headless Chromium too."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import requests
from helpers import free_port
from hub_fleet import START, payload, sighting
from test_web import login_token

from edgeguard.config import load_config
from edgeguard.hub.site import build_hub_web
from edgeguard.hub.store import HubStore, event_row
from edgeguard.hub.track import haversine_km, legs
from edgeguard.hub.watchlist import FleetWatchlist
from edgeguard.watchlist.bundle import new_key

PASSWORD = "a long hub password"
CENTRE = ("City Centre", 51.5074, -0.1278)
AIRPORT = ("Airport", 51.4700, -0.4543)  # 23.5 km west of the centre
FAR = ("Far Town", 51.7520, -0.3360)  # 31 km north-west of the centre


def test_haversine_and_the_impossible_travel_rule():
    assert haversine_km(*CENTRE[1:], *AIRPORT[1:]) == pytest.approx(23.0, abs=1.0)
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.2, abs=0.1)
    rows = [
        {"time": 0.0, "latitude": CENTRE[1], "longitude": CENTRE[2]},
        {"time": 3600.0, "latitude": AIRPORT[1], "longitude": AIRPORT[2]},  # 23 km in an hour: fine
        {"time": 3660.0, "latitude": None, "longitude": None},  # no coordinates: no leg
        {"time": 3900.0, "latitude": FAR[1], "longitude": FAR[2]},  # 30 km in 5 minutes: impossible
        {"time": 3900.0, "latitude": FAR[1] + 0.001, "longitude": FAR[2]},  # 100 m at once: the same place
    ]
    track = legs(rows)
    assert [leg.impossible for leg in track] == [False, False, False, True, False]
    assert track[1].kmh == pytest.approx(23.0, abs=1.0) and track[2].km is None
    assert track[3].minutes == pytest.approx(5.0) and track[3].kmh > 300


def fill(store: HubStore) -> None:
    rows = [payload("shop-1", seq) for seq in (1, 2, 4)]  # seq 3 missing
    rows += [
        sighting("shop-1", 5, START + 100, CENTRE),
        sighting("shop-2", 1, START + 4000, AIRPORT),
        sighting("shop-3", 1, START + 4300, FAR),  # 5 minutes after the airport: a false match
        sighting("shop-3", 2, START + 4400, FAR, person="9"),
    ]
    rows[-1]["person"] = {"id": "9", "name": "<b>Mal</b>", "category": "missing"}
    store.add_events([event_row(e, START + 5000) for e in rows])
    store.set_availability("shop-1", True, START)
    store.set_availability("shop-2", False, START)


class HubWeb:
    def __init__(self, folder: Path, extra: str = "") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        (folder / "edgeguard.toml").write_text(
            f'[paths]\nbase_dir = "{folder}"\n[web]\nlisten = "127.0.0.1:{port}"\n[hub]\n{extra}',
            encoding="utf-8",
        )
        config = load_config(folder / "edgeguard.toml")
        self.store = HubStore.open(config.hub.database(config.paths.base_dir))
        fill(self.store)
        self.fleet = FleetWatchlist(self.store, new_key())
        self.dashboard, self.server = build_hub_web(config, self.store, self.fleet)
        self.dashboard.users.add("alice", PASSWORD, "admin")
        self.dashboard.users.add("victor", PASSWORD, "viewer")
        self.server.start()
        self.url = f"http://127.0.0.1:{port}"

    def login(self, name: str = "victor") -> requests.Session:
        http = requests.Session()
        token = login_token(http.get(f"{self.url}/login").text)
        answer = http.post(
            f"{self.url}/login",
            data={"csrf": token, "username": name, "password": PASSWORD},
            allow_redirects=False,
        )
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/"), answer.text
        return http

    def stop(self) -> None:
        self.dashboard.events.close()
        self.server.stop()
        self.dashboard.users.close()
        self.store.close()


@pytest.fixture
def hub_web(tmp_path):
    web = HubWeb(tmp_path / "hub")
    yield web
    web.stop()


def test_the_pages_need_a_login(hub_web):
    for path in ("/", "/events", "/map", "/person/7"):
        answer = requests.get(hub_web.url + path, allow_redirects=False)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], path


def test_devices_show_their_state_events_and_gaps(hub_web):
    page = hub_web.login().get(hub_web.url + "/").text
    rows = re.findall(r'<tr class="device[^"]*">(.*?)</tr>', page, re.S)
    assert len(rows) == 3
    assert "shop-1" in rows[0] and "online" in rows[0] and '<td class="gaps">3</td>' in rows[0]
    assert "offline" in rows[1] and "unknown" in rows[2]


def test_the_event_log_across_devices_with_filters(hub_web):
    http = hub_web.login()
    everything = http.get(hub_web.url + "/events").text
    assert everything.count('<tr class="event" ') == 7
    one = http.get(hub_web.url + "/events", params={"device": "shop-3"}).text
    assert one.count('<tr class="event" ') == 2
    sightings = http.get(hub_web.url + "/events", params={"type": "known_face", "person": "7"}).text
    assert sightings.count('<tr class="event" ') == 3
    assert "&lt;b&gt;Mal&lt;/b&gt;" in everything and "<b>Mal</b>" not in everything


def test_a_persons_track_flags_impossible_travel(hub_web):
    page = hub_web.login().get(hub_web.url + "/person/7").text
    legs_shown = re.findall(r'<tr class="leg([^"]*)">(.*?)</tr>', page, re.S)
    assert [("impossible" in cls) for cls, _ in legs_shown] == [False, False, True]
    assert "Far Town" in legs_shown[2][1] and "impossible travel" in legs_shown[2][1]
    assert hub_web.login().get(hub_web.url + "/person/nobody").status_code == 404


def test_the_map_ships_leaflet_and_lists_the_last_known_locations(hub_web):
    http = hub_web.login()
    answer = http.get(hub_web.url + "/map")
    page = answer.text
    assert "img-src 'self' data:;" in answer.headers["Content-Security-Policy"]  # no tiles: nothing else
    assert "/hub/static/leaflet/leaflet.js" in page and "https://" not in page.split("<main>")[0]
    assert http.get(hub_web.url + "/hub/static/leaflet/leaflet.js").status_code == 200
    last = re.search(r'<table id="last-known">(.*?)</table>', page, re.S).group(1)
    assert last.index("&lt;b&gt;Mal") < last.index("Ana Lima")  # newest first
    assert "Far Town" in last and "Airport" not in last  # Ana Lima's last sighting is at Far Town
    data = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', page, re.S).group(1)
    assert '"name": "Airport"' in data or '"name":"Airport"' in data


def test_tiles_come_only_from_the_configured_server(tmp_path):
    web = HubWeb(
        tmp_path / "tiles",
        'tile_url = "https://{s}.tile.example.net/{z}/{x}/{y}.png"\ntile_attribution = "© Example"\n',
    )
    try:
        answer = web.login().get(web.url + "/map")
        assert "img-src 'self' data: https://*.tile.example.net;" in answer.headers["Content-Security-Policy"]
        assert 'data-tile-url="https://{s}.tile.example.net/{z}/{x}/{y}.png"' in answer.text
    finally:
        web.stop()


CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")
def test_the_map_and_a_track_render_in_headless_chromium(hub_web, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(f"{hub_web.url}/login")
        driver.find_element(By.NAME, "username").send_keys("victor")
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
        wait.until(seen.presence_of_element_located((By.ID, "devices")))
        driver.get(f"{hub_web.url}/map")
        tooltips = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip") or None)
        names = sorted(t.text for t in tooltips)
        assert any(n.startswith("Airport") for n in names) and any(n.startswith("Far Town") for n in names)
        assert len(driver.find_elements(By.CSS_SELECTOR, "path.leaflet-interactive")) == 3  # three places
        assert driver.save_screenshot(str(tmp_path / "hub-map.png"))
        driver.get(f"{hub_web.url}/person/7")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")) == 3 or None)
        red = driver.find_elements(By.CSS_SELECTOR, "path[stroke='#c62828']")
        assert red, "the impossible leg is drawn in red"
        assert driver.find_element(By.CSS_SELECTOR, "tr.impossible").text.endswith("impossible travel")
        assert driver.save_screenshot(str(tmp_path / "hub-track.png"))
        logs = [entry["message"] for entry in driver.get_log("browser")]
        assert not [m for m in logs if "Content Security Policy" in m or "Uncaught" in m], logs
    finally:
        driver.quit()
