"""The fleet hub's watchlist on a device: with `[watchlist] hub_url`, the newest signed bundle is fetched at
start and when the hub says there is a newer one (`poke`: the MQTT notice on `edgeguard/<device>/watchlist`,
and each connection to the broker), checked against `[watchlist] hub_key` and applied to the site's folders
(`bundle.apply_bundle`), then the watchlist reloads as after a hand edit.  A bundle that fails is refused
with one log line and the running watchlist stays.  All of it runs on its own thread, never on the frame
loop; a hub that cannot be reached is tried again every RETRY_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from ..config import Config
from .bundle import MAX_BUNDLE_BYTES, Applied, BundleError, applied_state, apply_bundle, open_bundle

log = logging.getLogger(__name__)

FETCH_SECONDS = 60.0  # the whole request
RETRY_SECONDS = 300.0  # after a failed fetch


class HubSync:
    def __init__(self, config: Config, reload: Callable[[], None]) -> None:
        self.config = config
        self.settings = config.watchlist
        self.reload = reload
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hub-watchlist", daemon=True)

    def start(self) -> None:
        self._wake.set()
        self._thread.start()

    def poke(self) -> None:
        """The hub has a new version: fetch it (from any thread, never waiting)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        retry = None
        while True:
            self._wake.wait(retry)
            if self._stop.is_set():
                return
            self._wake.clear()
            retry = RETRY_SECONDS if self.sync() is None else None

    def sync(self) -> Applied | bool | None:
        """Fetch and apply the newest bundle: what was applied, False when refused or not newer, None when the
        hub could not be reached (tried again later)."""
        try:
            data = self._fetch()
        except (OSError, urllib.error.URLError, ValueError) as exc:
            log.warning("watchlist: cannot fetch the hub's watchlist from %s: %s", self.settings.hub_url, exc)
            return None
        try:
            payload = open_bundle(self.settings.hub_key, data)
            if payload["version"] <= applied_state(self.config)["version"]:
                return False
            applied = apply_bundle(self.config, payload)
        except BundleError as exc:
            log.error("watchlist: refused the hub's bundle: %s; the running watchlist stays", exc)
            return False
        except OSError as exc:
            log.error("watchlist: cannot write the hub's bundle into the site folders: %s", exc)
            return False
        log.info(
            "watchlist: applied the hub's version %d: %d people from the hub, %d removed%s",
            applied.version,
            len(applied.written),
            len(applied.removed),
            f", {len(applied.kept_local)} Ids kept as local records" if applied.kept_local else "",
        )
        self.reload()
        return applied

    def _fetch(self) -> bytes:
        request = urllib.request.Request(
            self.settings.hub_url.rstrip("/") + "/api/watchlist",
            headers={"Authorization": f"Bearer {self.settings.hub_token}"},
        )
        with urllib.request.urlopen(request, timeout=FETCH_SECONDS) as response:
            data = response.read(MAX_BUNDLE_BYTES + 1)
        if len(data) > MAX_BUNDLE_BYTES:
            raise ValueError(f"the bundle is larger than {MAX_BUNDLE_BYTES} bytes")
        return data
