"""The dashboard in a real browser: headless Chromium from the Debian packages, driven by Selenium through
Debian's chromedriver (no browser download), against the real daemon replaying the Hamilton clip.

Every page visited is saved as a screenshot in the test's folder; with EDGEGUARD_SCREENSHOTS=DIR they are
copied to DIR too (that is how the pictures in docs/ were made).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import helpers  # tests/helpers.py
import pytest
from conftest import CLIP, PEOPLE, make_site

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver (apt install chromium chromium-driver; "
        ".ci/run installs them)",
    ),
]
PASSWORD = "a long dashboard password"


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Shots:
    def __init__(self, driver, folder: Path) -> None:
        self.driver, self.folder = driver, folder
        folder.mkdir(exist_ok=True)
        self.also = (
            Path(os.environ["EDGEGUARD_SCREENSHOTS"]) if os.environ.get("EDGEGUARD_SCREENSHOTS") else None
        )

    def take(self, name: str) -> Path:
        path = self.folder / f"{name}.png"
        assert self.driver.save_screenshot(str(path)), name
        if self.also is not None:
            self.also.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.also / path.name)
        return path


def test_a_guard_logs_in_watches_reviews_enrols_and_logs_out(tmp_path, browser, daemons):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    port = helpers.free_port()
    site = make_site(
        tmp_path / "site",
        (f'[camera]\nloop = true\nrealtime = true\n[web]\nlisten = "127.0.0.1:{port}"\n'),
        people=[("1", "Lin-Manuel Miranda", "lin-manuel-miranda.png", "wanted")],
    )
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgeguard",
            "--config",
            str(site.config_path),
            "user",
            "add",
            "alice",
            "--role",
            "admin",
        ],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=helpers.clean_env(),
    )
    assert added.returncode == 0, added.stderr
    daemon = daemons(site.config_path, "--source", str(CLIP))
    daemon.wait_for_line("dashboard listening", 60)
    url = f"http://127.0.0.1:{port}"
    wait = WebDriverWait(browser, 30)
    shots = Shots(browser, tmp_path / "screenshots")

    # a wrong password is refused, with a word about it
    browser.get(f"{url}/login")
    shots.take("login")
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys("not the password")
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    assert (
        "Wrong user name or password"
        in wait.until(seen.presence_of_element_located((By.ID, "login-error"))).text
    )

    # the right one opens the overview
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait.until(seen.presence_of_element_located((By.ID, "events")))
    assert "Overview" in browser.page_source

    # Lin-Manuel's known_face appears on the overview without a reload (the clip loops: he comes back)
    first = set(_seqs(browser))
    marker = browser.execute_script("window.__still_the_same_page = true; return true;")
    assert marker
    wait.until(lambda d: any(s not in first for s in _seqs(d, "known_face")))
    # the camera's fps follows /cameras.json, also without a reload
    browser.execute_script("document.querySelector('article.camera .fps').textContent = 'x'")
    wait.until(
        lambda d: d.execute_script("return document.querySelector('article.camera .fps').textContent") != "x"
    )
    assert browser.execute_script("return window.__still_the_same_page === true")  # the page was not reloaded
    row = browser.find_element(By.CSS_SELECTOR, "#events tr.fresh.known_face")
    assert "Lin-Manuel Miranda (Id 1, wanted)" in row.text
    shots.take("overview")
    browser.set_window_size(390, 844)  # a phone: nothing wider than the screen
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    ), browser.execute_script(WIDER_THAN_THE_SCREEN)
    shots.take("overview-phone")
    browser.set_window_size(1280, 1000)

    # on the detection log, a row that arrives live is the row a reload shows: event number, review buttons
    browser.get(f"{url}/detection_logs")
    WebDriverWait(browser, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events tr.fresh"))
    fresh = browser.find_element(By.CSS_SELECTOR, "#events tr.fresh")
    seq = fresh.get_attribute("data-seq")
    assert f"event {seq}" in fresh.text and "Mark reviewed" in fresh.text
    live = browser.execute_script(
        "const row = arguments[0].cloneNode(true); row.classList.remove('fresh'); return row.outerHTML;",
        fresh,
    )
    browser.refresh()
    reloaded = browser.execute_script(
        "return document.querySelector('#events tr[data-seq=\"' + arguments[0] + '\"]').outerHTML;", seq
    )
    assert live == reloaded

    # the live view shows JPEG frames of the camera
    browser.get(f"{url}/live_feed")
    wait.until(
        lambda d: d.execute_script(
            "const i = document.querySelector('img.live'); return i && i.naturalWidth > 0;"
        )
    )
    assert browser.execute_script("return document.querySelector('img.live').naturalWidth") == 640
    shots.take("live")

    # an admin adds a person with a photo from the browser; they are enrolled
    browser.get(f"{url}/add_record")
    browser.find_element(By.NAME, "id").send_keys("3")
    browser.find_element(By.NAME, "name").send_keys("Barack Obama")
    browser.find_element(By.NAME, "category").send_keys("vip")
    browser.find_element(By.NAME, "photos").send_keys(str(PEOPLE / "obama.jpg"))
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait.until(seen.url_contains("/records/3"))
    assert "1 photo(s) added" in browser.page_source
    assert len(list((site.training / "3").iterdir())) == 1
    daemon.wait_for_line("watchlist reloaded: 2 people", 60)
    browser.get(f"{url}/view_records")
    assert browser.find_element(By.CSS_SELECTOR, 'tr[data-id="3"]').get_attribute("class") == "enrolled"
    shots.take("records")

    # an unknown face's capture opens and becomes a watchlist photo of a new person
    browser.get(f"{url}/detection_logs?type=unknown_face")
    wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "tr.unknown_face img.thumb") or d.refresh() or False
    )
    shots.take("detections")
    frame_link = browser.find_element(By.CSS_SELECTOR, "tr.unknown_face a.frame-link").get_attribute("href")
    row = browser.find_element(By.CSS_SELECTOR, "tr.unknown_face")
    row.find_element(By.CSS_SELECTOR, "details.enrol summary").click()
    row.find_element(By.NAME, "id").send_keys("9")
    row.find_element(By.NAME, "name").send_keys("Audience member")
    row.find_element(By.CSS_SELECTOR, "form.enrol-form button").click()
    wait.until(
        lambda d: "The capture is now a photo of Id 9" in d.page_source or "Not added" in d.page_source
    )
    assert "The capture is now a photo of Id 9" in browser.page_source, re.findall(
        r'class="flash[^"]*">([^<]+)', browser.page_source
    )
    assert len(list((site.training / "9").iterdir())) == 1
    browser.get(frame_link)
    assert (
        browser.execute_script("return document.images[0].naturalWidth") == 640
    )  # the full frame of the capture

    # log out: the dashboard is closed again
    browser.get(f"{url}/")
    browser.find_element(By.ID, "logout").click()
    wait.until(seen.url_contains("/login"))
    browser.get(f"{url}/detection_logs")
    assert "/login" in browser.current_url
    assert "Traceback" not in daemon.stderr


# The elements reaching past the right edge of the screen, for the failure message.
WIDER_THAN_THE_SCREEN = """
return [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)
                        + ': ' + (e.textContent || '').trim().slice(0, 60));
"""


def _seqs(driver, kind: str = "") -> list[str]:
    from selenium.webdriver.common.by import By

    return [
        r.get_attribute("data-seq")
        for r in driver.find_elements(By.CSS_SELECTOR, f"#events tbody tr{'.' + kind if kind else ''}")
    ]
