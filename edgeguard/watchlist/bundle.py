"""The fleet's watchlist bundle: the people the hub hands a device (photos and Details rows), versioned and
signed with the hub's Ed25519 key.

On the wire a bundle is a JSON envelope `{"payload": <base64 of the payload's JSON>, "signature": <base64>}`;
the signature covers the payload's bytes exactly.  The payload is `{"format": 1, "version": N, "group": G,
"people": [{"id", "name", "category", "photos": [{"name", "data"}]}]}` (photo data base64).

A device applies a bundle as a hand edit would (`apply_bundle`): the hub's people get their folder in
TrainingImage/ and their Details.csv row (column `source` = hub); every other row is the device's own, kept
and marked `source` = local (a hub person with a local record's Id is not written); a person the hub no longer
sends is removed.  A bundle whose signature, version or contents fail is refused whole (`BundleError`) and
nothing is written; the running watchlist stays.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..common.files import private_folder, read_regular, write_private
from ..config import Config
from ..faces.photos import is_photo_name
from .details import VALID_ID, read_details, upsert_person
from .enrol import EnrolError, person_photos, remove_person

log = logging.getLogger(__name__)

FORMAT = 1
MAX_BUNDLE_BYTES = 200 * 1024 * 1024
STATE_FILE = "hub_watchlist.json"  # in TrainingImageLabel/: the version applied and the hub's Ids


class BundleError(ValueError):
    """Why a bundle is refused."""


@dataclass(frozen=True)
class Applied:
    version: int
    written: tuple[str, ...]  # the hub's Ids written
    removed: tuple[str, ...]  # the hub's Ids no longer sent
    kept_local: tuple[str, ...]  # hub Ids that are a local record here: the local one is kept


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_private(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the watchlist key is not an Ed25519 private key")
    return key


def public_text(key: Ed25519PrivateKey) -> str:
    """The public key as devices configure it ([watchlist] hub_key): base64 of its 32 raw bytes."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def seal(key: Ed25519PrivateKey, version: int, group: str, people: list[dict[str, Any]]) -> bytes:
    """The signed bundle of `people` (each with id, name, category and photos as (name, bytes) pairs)."""
    payload = {
        "format": FORMAT,
        "version": version,
        "group": group,
        "people": [
            {
                "id": p["id"],
                "name": p["name"],
                "category": p["category"],
                "photos": [{"name": n, "data": base64.b64encode(d).decode()} for n, d in p["photos"]],
            }
            for p in people
        ],
    }
    body = json.dumps(payload, separators=(",", ":")).encode()
    return json.dumps(
        {"payload": base64.b64encode(body).decode(), "signature": base64.b64encode(key.sign(body)).decode()}
    ).encode()


def open_bundle(public_key: str, data: bytes) -> dict[str, Any]:
    """The checked payload of a bundle; BundleError if its signature or contents fail."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{len(data)} bytes, more than {MAX_BUNDLE_BYTES}")
    try:
        envelope = json.loads(data)
        body = base64.b64decode(envelope["payload"], validate=True)
        signature = base64.b64decode(envelope["signature"], validate=True)
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise BundleError(f"not a signed bundle ({type(exc).__name__})") from None
    try:
        key.verify(signature, body)
    except InvalidSignature:
        raise BundleError("the signature does not match [watchlist] hub_key") from None
    payload = json.loads(body)
    _check(payload)
    return payload


def _check(payload: Any) -> None:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BundleError(f"not a bundle of format {FORMAT}")
    if not isinstance(payload.get("version"), int) or not isinstance(payload.get("people"), list):
        raise BundleError("no version or people")
    seen = set()
    for person in payload["people"]:
        pid = person.get("id") if isinstance(person, dict) else None
        if not isinstance(pid, str) or not VALID_ID.match(pid) or pid in seen:
            raise BundleError(f"a bad or repeated Id {str(pid)[:40]!r}")
        seen.add(pid)
        if not isinstance(person.get("name"), str) or not isinstance(person.get("category"), str):
            raise BundleError(f"Id {pid}: no name or category")
        for photo in person.get("photos", []):
            name = photo.get("name", "") if isinstance(photo, dict) else ""
            if "/" in name or name.startswith(".") or not is_photo_name(Path(name)):
                raise BundleError(f"Id {pid}: a bad photo name {name[:60]!r}")
            try:
                photo["bytes"] = base64.b64decode(photo.get("data", ""), validate=True)
            except (binascii.Error, ValueError):
                raise BundleError(f"Id {pid}: photo {name} is not base64") from None


def applied_state(config: Config) -> dict[str, Any]:
    path = config.paths.encodings_cache / STATE_FILE
    try:
        return json.loads(read_regular(path))
    except FileNotFoundError:
        return {"version": 0, "ids": []}


def apply_bundle(config: Config, payload: dict[str, Any]) -> Applied:
    """Write a checked bundle into the site's folders as a hand edit would; BundleError if it is not newer
    than the one applied."""
    state = applied_state(config)
    if payload["version"] <= state["version"]:
        raise BundleError(f"version {payload['version']} is not newer than {state['version']}, applied")
    hub_before = set(state["ids"])
    people, _ = read_details(config.paths.details_csv) if config.paths.details_csv.exists() else ({}, [])
    local = {pid for pid in people if pid not in hub_before}
    details = config.paths.details_csv
    for pid in sorted(local):
        if people[pid].details.get("source", "") != "local":
            upsert_person(details, pid, None, None, extra={"source": "local"})
    written, kept = [], []
    for person in payload["people"]:
        if person["id"] in local:
            kept.append(person["id"])
            continue
        _write_person(config, person)
        written.append(person["id"])
    sent = {p["id"] for p in payload["people"]}
    removed = sorted(pid for pid in hub_before - sent if pid not in local)
    for pid in removed:
        try:
            remove_person(config, pid)
        except EnrolError as exc:
            log.warning("watchlist: Id %s from the hub could not be removed: %s", pid, exc)
    config.paths.encodings_cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = {"version": payload["version"], "ids": sorted(written)}
    write_private(config.paths.encodings_cache / STATE_FILE, json.dumps(state).encode())
    return Applied(payload["version"], tuple(written), tuple(removed), tuple(kept))


def _write_person(config: Config, person: dict[str, Any]) -> None:
    """The person's folder holds exactly the bundle's photos; their row the bundle's name and category."""
    folder = config.paths.training_images / person["id"]
    private_folder(folder)
    names = {photo["name"] for photo in person["photos"]}
    for photo in person["photos"]:
        target = folder / photo["name"]
        if not target.exists() or read_regular(target) != photo["bytes"]:
            write_private(target, photo["bytes"])
    for old in person_photos(config, person["id"]):
        if old.name not in names:
            old.unlink()
    upsert_person(
        config.paths.details_csv,
        person["id"],
        person["name"],
        person["category"] or None,
        extra={"source": "hub"},
    )
