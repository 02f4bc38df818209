"""The fleet's watchlist at the hub: the signing key, the bundle a device's token entitles it to, and the
MQTT message (`edgeguard/<device>/watchlist`, the new version) that tells devices to fetch it again.

The key is `[hub] watchlist_key` (a PEM file, made 0600 on first start when missing): every hub process of a
fleet uses the same file, and devices are configured with its public key (`edgeguard hub --token` prints it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..common.files import read_regular, write_private
from ..config import Config
from ..watchlist.bundle import load_private, new_key, private_pem, seal
from .store import HubStore

log = logging.getLogger(__name__)


def key_path(config: Config) -> Path:
    return (
        Path(config.hub.watchlist_key)
        if config.hub.watchlist_key
        else config.paths.state_dir / "watchlist.key"
    )


def load_key(path: Path) -> Ed25519PrivateKey:
    """The hub's watchlist signing key, made (0600) when the file is missing."""
    try:
        return load_private(read_regular(path))
    except FileNotFoundError:
        key = new_key()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(path, private_pem(key))
        log.info("hub: made the watchlist signing key %s", path)
        return key


class FleetWatchlist:
    """Bundles for devices and the notice of a new version; `connection` is set once the broker client is."""

    def __init__(self, store: HubStore, key: Ed25519PrivateKey, prefix: str = "edgeguard") -> None:
        self.store = store
        self.key = key
        self.prefix = prefix
        self.connection: Any = None

    def bundle(self, token: str) -> bytes | None:
        """The signed bundle for the device of `token`, None for a token the hub does not know."""
        device = self.store.token_device(token)
        if device is None:
            return None
        _name, group = device
        return seal(self.key, self.store.watchlist_version(), group, self.store.watchlist_people(group))

    def changed(self) -> None:
        """Tell every device with a token that a new version is there (QoS 1; a device away hears it from
        its next start, when it fetches anyway)."""
        if self.connection is None:
            return
        version = str(self.store.watchlist_version()).encode()
        for device in self.store.token_devices():
            self.connection.client.publish(f"{self.prefix}/{device}/watchlist", version, qos=1)
