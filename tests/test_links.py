"""Tests for edgeguard.alerts.link_signer and edgeguard.alerts.image_server: signed, expiring image links and
the built-in image server (real HTTP over 127.0.0.1, real JPEG files, real keys on disk)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import logging
import os
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import PEOPLE

from edgeguard.alerts.link_signer import LinkError, LinkSigner, SignedLinks, load_link_key
from edgeguard.config import Config, PathsConfig, WebConfig
from edgeguard.web.context import SiteStatus
from edgeguard.web.server import REQUEST_TIMEOUT, parse_listen
from edgeguard.web.site import build_dashboard

KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
PUBLIC = "https://gate.example.net:8780/"
TTL = 3600.0
FACE = "20261122-140211-000-gate-face.jpg"
SECRET = b"TOP-SECRET-NOT-A-CAPTURE"


class ImageServer:
    """The daemon's web server (edgeguard.web) for a captures folder, seen from the image links' side."""

    def __init__(
        self, listen: str, folder: Path, signer: LinkSigner, request_timeout: float = REQUEST_TIMEOUT
    ) -> None:
        parse_listen(listen)
        state = folder.parent / "state"
        paths = dataclasses.replace(
            PathsConfig(), captures=folder, users_db=state / "users.db", events_db=state / "events.db"
        )
        config = Config(paths=paths, web=WebConfig(listen=listen))
        self.dashboard, self.server = build_dashboard(
            config,
            status=SiteStatus,
            watchlist=lambda: None,
            event_log=None,
            outbox=None,
            engine=lambda: None,
            signer=signer,
        )
        self.server.request_timeout = request_timeout

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.dashboard.users.close()


def signer_name(signer: LinkSigner, token: str) -> str:
    """The file name a token grants (LinkError if none)."""
    return signer.check(token)[0]


@pytest.fixture(scope="module")
def jpeg() -> tuple[bytes, tuple[int, ...]]:
    image = cv2.imread(str(PEOPLE / "obama.jpg"))
    assert image is not None
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes(), image.shape


@pytest.fixture
def folder(tmp_path: Path, jpeg) -> Path:
    """A captures folder with one face image, and a secret file right beside the folder."""
    captures = tmp_path / "captures"
    captures.mkdir(mode=0o700)
    (captures / FACE).write_bytes(jpeg[0])
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return captures


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(KEY, PUBLIC, TTL)


@pytest.fixture
def server(folder: Path, signer: LinkSigner):
    srv = ImageServer("127.0.0.1:0", folder, signer)
    srv.start()
    yield srv
    srv.stop()


def fetch(srv: ImageServer, method: str, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    host, port = srv.address
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def path_of(token: str) -> str:
    return f"/c/{token}"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(key: bytes, name: str, expires: int) -> str:
    """A correctly signed token for any name at all, bypassing the signer's name checks."""
    payload = b64(f"{expires}:{name}".encode())
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
    return f"{payload}.{b64(mac)}"


def flip(text: str, index: int) -> str:
    """`text` with the character at `index` replaced by another base64url character."""
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


# --- valid links --------------------------------------------------------------------------


def test_get_returns_the_exact_jpeg_with_image_headers(server, signer, jpeg):
    status, headers, body = fetch(server, "GET", path_of(signer.token_for(FACE)))
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Length"] == str(len(jpeg[0]))
    assert headers["X-Content-Type-Options"] == "nosniff"
    cache = headers["Cache-Control"]
    assert cache.startswith("private, max-age=")
    assert TTL - 10 <= int(cache.rsplit("=", 1)[1]) <= TTL
    assert body == jpeg[0]
    decoded = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == jpeg[1]


def test_head_sends_the_same_headers_and_no_body(server, signer, jpeg):
    status, headers, _ = fetch(server, "HEAD", path_of(signer.token_for(FACE)))
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Length"] == str(len(jpeg[0]))
    # http.client never reads a body after HEAD, so look at the raw bytes up to the close.
    with socket.create_connection(server.address, timeout=5) as raw:
        raw.sendall(f"HEAD {path_of(signer.token_for(FACE))} HTTP/1.0\r\n\r\n".encode())
        reply = b"".join(iter(lambda: raw.recv(65536), b""))
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200") and rest == b""


def test_a_query_string_is_ignored_and_only_capture_images_are_served(server, signer, folder, jpeg):
    status, headers, body = fetch(server, "GET", path_of(signer.token_for(FACE)) + "?utm=1")
    assert (status, headers["Content-Type"], body) == (200, "image/jpeg", jpeg[0])
    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    (folder / "x-face.png").write_bytes(png.tobytes())  # captures are JPEG: a PNG is not one of their files
    assert fetch(server, "GET", path_of(signer.token_for("x-face.png")))[0] == 404


def test_url_for_trims_the_slash_and_verifies_back_to_the_name(signer):
    url = signer.url_for(FACE)
    assert url.startswith("https://gate.example.net:8780/c/")
    token = url.rsplit("/", 1)[1]
    assert signer_name(signer, token) == FACE
    assert FACE not in url  # the name is not readable in the link


def test_signed_links_only_for_files_in_the_folder(signer, folder, tmp_path):
    links = SignedLinks(signer, folder)
    url = links.link_for(folder / FACE)
    assert url is not None and signer_name(signer, url.rsplit("/", 1)[1]) == FACE
    assert links.link_for(tmp_path / "secret.txt") is None
    assert links.link_for(folder / "sub" / FACE) is None
    assert links.link_for(folder / "20261122-140211-000-gate.json") is None  # a sidecar is never linked
    assert links.link_for(folder / "notes.jpg") is None  # nor a file that is not a capture's image
    frame = links.link_for(folder / "20261122-140211-000-gate-frame.jpg")
    assert frame is not None and signer_name(signer, frame.rsplit("/", 1)[1]).endswith("-frame.jpg")


# --- expiry and tampering -----------------------------------------------------------------


def test_expiry_boundary_in_check():
    now = 1_800_000_000.0
    clock = [now]
    signer = LinkSigner(KEY, PUBLIC, TTL, clock=lambda: clock[0])
    token = signer.token_for(FACE)
    clock[0] = now + TTL - 1
    assert signer_name(signer, token) == FACE
    clock[0] = now + TTL
    with pytest.raises(LinkError, match="expired"):
        signer_name(signer, token)


def test_link_signed_in_the_past_is_refused(server, jpeg):
    old = LinkSigner(KEY, PUBLIC, TTL, clock=lambda: time.time() - TTL - 5)
    status, _, body = fetch(server, "GET", path_of(old.token_for(FACE)))
    assert status == 403 and jpeg[0] not in body


def test_link_checked_after_its_time_is_refused(folder, signer):
    future = ImageServer(
        "127.0.0.1:0", folder, LinkSigner(KEY, PUBLIC, TTL, clock=lambda: time.time() + TTL + 5)
    )
    future.start()
    try:
        assert fetch(future, "GET", path_of(signer.token_for(FACE)))[0] == 403
    finally:
        future.stop()


def test_tampered_tokens_are_refused(server, signer):
    token = signer.token_for(FACE)
    payload, mac = token.split(".")
    other_payload = signer.token_for("20261122-140211-000-gate-frame.jpg").split(".")[0]
    tampered = {
        "payload first char": f"{flip(payload, 0)}.{mac}",
        "payload last char": f"{flip(payload, len(payload) - 1)}.{mac}",
        "signature first char": f"{payload}.{flip(mac, 0)}",
        "signature last char": f"{payload}.{flip(mac, len(mac) - 1)}",
        "swapped payload": f"{other_payload}.{mac}",
        "other key": LinkSigner(OTHER_KEY, PUBLIC, TTL).token_for(FACE),
        "no signature": payload,
        "short signature": f"{payload}.{mac[:-2]}",
    }
    for what, bad in tampered.items():
        status, _, body = fetch(server, "GET", path_of(bad))
        assert status == 403, what
        assert not body.startswith(b"\xff\xd8"), what
    assert fetch(server, "GET", path_of(token))[0] == 200  # the untouched token still works


@pytest.mark.parametrize(
    "token, reason",
    [
        ("", "malformed"),
        ("abc", "malformed"),
        ("a.b.c", "malformed"),
        ("ab+/.cd", "malformed"),
        ("x" * 2000 + ".y", "malformed"),
    ],
)
def test_malformed_tokens_give_a_reason(signer, token, reason):
    with pytest.raises(LinkError, match=reason):
        signer_name(signer, token)


def test_bad_signature_reason(signer):
    payload, mac = signer.token_for(FACE).split(".")
    with pytest.raises(LinkError, match="signature"):
        signer_name(signer, f"{payload}.{flip(mac, 3)}")


# --- names and traversal ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "sub/x.jpg", "a\\b.jpg", ".hidden", "a\0.jpg", ""])
def test_signing_refuses_names_that_are_not_plain(signer, name):
    with pytest.raises(ValueError):
        signer.token_for(name)


def test_forged_helper_matches_the_signer(server):
    expires = int(time.time() + TTL)
    token = forge(KEY, FACE, expires)
    assert token == LinkSigner(KEY, PUBLIC, TTL, clock=lambda: expires - TTL).token_for(FACE)
    assert fetch(server, "GET", path_of(token))[0] == 200


@pytest.mark.parametrize(
    "name",
    ["../secret.txt", "../outside.jpg", "/etc/passwd", "sub/x.jpg", ".hidden.jpg", "..", "..\\secret.txt"],
)
def test_correctly_signed_bad_names_never_serve_a_file(server, folder, name):
    (folder.parent / "outside.jpg").write_bytes(SECRET)
    (folder / ".hidden.jpg").write_bytes(SECRET)
    (folder / "sub").mkdir()
    (folder / "sub" / "x.jpg").write_bytes(SECRET)
    status, _, body = fetch(server, "GET", path_of(forge(KEY, name, int(time.time() + TTL))))
    assert status in (403, 404)
    assert SECRET not in body and b"root:" not in body


def test_symlinks_out_of_the_folder_are_not_followed(server, signer, folder, tmp_path, jpeg):
    (tmp_path / "outside.jpg").write_bytes(SECRET)
    (folder / "escape-face.jpg").symlink_to(tmp_path / "outside.jpg")
    (folder / "secret-face.jpg").symlink_to(tmp_path / "secret.txt")
    for name in ("escape-face.jpg", "secret-face.jpg"):
        status, _, body = fetch(server, "GET", path_of(signer.token_for(name)))
        assert status in (403, 404) and SECRET not in body, name


def test_sidecars_folders_and_pipes_are_not_served(server, signer, folder):
    (folder / "20261122-140211-000-gate.json").write_text('{"location": "Front Gate"}')
    (folder / "dir.jpg").mkdir()
    os.mkfifo(folder / "pipe.jpg")
    for name in ("20261122-140211-000-gate.json", "dir.jpg", "pipe.jpg"):
        status, _, body = fetch(server, "GET", path_of(signer.token_for(name)))
        assert status == 404 and b"Front Gate" not in body, name


def test_file_deleted_after_signing_is_not_found(server, signer, folder):
    token = signer.token_for(FACE)
    (folder / FACE).unlink()
    assert fetch(server, "GET", path_of(token))[0] == 404
    assert fetch(server, "HEAD", path_of(token))[0] == 404


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/c",
        "/c/",
        "/index",
        "/index.html",
        "/c/..%2F..%2Fetc%2Fpasswd",
        "/c/../x",
        "/c/../secret.txt",
        f"/Unknown_Face_Captures/{FACE}",
        f"/{FACE}",
        f"/captures/{FACE}",
        "/?list=1",
        "/x?y=1",
    ],
)
def test_other_paths_are_not_found_and_never_listed(server, path):
    status, headers, body = fetch(server, "GET", path)
    assert status in (302, 403, 404)  # the dashboard's pages send a stranger to the login
    assert FACE.encode() not in body and SECRET not in body and b"Index of" not in body


def test_a_valid_token_under_another_prefix_is_not_found(server, signer):
    token = signer.token_for(FACE)
    for path in (f"/x/c/{token}", f"/c/{token}/", f"/c//{token}", f"/c/{token}/{FACE}"):
        assert fetch(server, "GET", path)[0] == 404, path


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_not_allowed(server, signer, method):
    status, headers, body = fetch(server, method, path_of(signer.token_for(FACE)))
    assert status == 405
    assert sorted(headers["Allow"].split(", ")) == ["GET", "HEAD"]
    assert not body.startswith(b"\xff\xd8")


# --- logging ------------------------------------------------------------------------------


def test_logs_have_reasons_but_no_tokens_and_nothing_goes_to_stderr(server, signer, caplog, capfd):
    caplog.set_level(logging.DEBUG, logger="edgeguard.web.image_links")
    good = signer.token_for(FACE)
    old = LinkSigner(KEY, PUBLIC, TTL, clock=lambda: time.time() - 2 * TTL).token_for(FACE)
    assert fetch(server, "GET", path_of(good))[0] == 200
    assert fetch(server, "GET", path_of(old))[0] == 403
    assert fetch(server, "GET", "/nothing")[0] == 404
    for token in (good, old):
        for part in token.split("."):
            assert part not in caplog.text
    refusals = [r for r in caplog.records if r.levelno == logging.INFO and "refused" in r.getMessage()]
    assert any("expired" in r.getMessage() for r in refusals)
    assert any(r.levelno == logging.DEBUG and FACE in r.getMessage() for r in caplog.records)
    assert capfd.readouterr().err == ""


# --- the server itself --------------------------------------------------------------------


def test_twenty_concurrent_requests_all_get_the_right_bytes(server, signer, folder, jpeg):
    names = [f"2026-{n:02d}-face.jpg" for n in range(20)]
    for n, name in enumerate(names):
        (folder / name).write_bytes(jpeg[0] + bytes([n]))  # a different body per file
    barrier = threading.Barrier(20)
    idle = socket.create_connection(server.address, timeout=5)  # a stalled client must not block the others

    def one(n: int) -> tuple[int, bytes]:
        barrier.wait(timeout=5)
        status, _, body = fetch(server, "GET", path_of(signer.token_for(names[n])))
        return status, body

    with idle, ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    assert [status for status, _ in results] == [200] * 20
    assert all(body == jpeg[0] + bytes([n]) for n, (_, body) in enumerate(results))


def test_start_on_a_port_in_use_names_the_address(folder, signer):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        srv = ImageServer(f"127.0.0.1:{port}", folder, signer)
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            srv.start()


@pytest.mark.slow  # asserts on elapsed time
def test_a_silent_client_is_dropped_after_the_timeout(folder, signer):
    srv = ImageServer("127.0.0.1:0", folder, signer, request_timeout=0.3)
    srv.start()
    try:
        with socket.create_connection(srv.address, timeout=5) as idle:
            started = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server, not by our 5 s timeout
            assert time.monotonic() - started < 3
        assert fetch(srv, "HEAD", path_of(signer.token_for(FACE)))[0] == 200
    finally:
        srv.stop()


def test_stop_closes_the_port(folder, signer):
    srv = ImageServer("127.0.0.1:0", folder, signer)
    srv.start()
    address = srv.address
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1).close()


@pytest.mark.parametrize("listen", ["8780", "host:", "host:http", "host:70000"])
def test_bad_listen_is_refused(folder, signer, listen):
    with pytest.raises(ValueError, match="host:port"):
        ImageServer(listen, folder, signer)


# --- the key ------------------------------------------------------------------------------


def test_key_is_made_once_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "state" / "link.key"
    key = load_link_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == key
    assert load_link_key(path) == key
    assert load_link_key(tmp_path / "other.key") != key  # random, not a constant


def test_credential_wins_over_the_file(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "edgeguard_link_key").write_bytes(OTHER_KEY)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = tmp_path / "link.key"
    path.write_bytes(KEY)
    assert load_link_key(path) == OTHER_KEY
    assert load_link_key(tmp_path / "missing.key") == OTHER_KEY
    assert not (tmp_path / "missing.key").exists()


def test_empty_credential_falls_back_to_the_file(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "edgeguard_link_key").write_bytes(b"")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = tmp_path / "link.key"
    path.write_bytes(KEY)
    assert load_link_key(path) == KEY


def test_short_key_is_an_error_naming_the_file_and_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "link.key"
    path.write_bytes(b"abc")
    with pytest.raises(ValueError, match=str(path)):
        load_link_key(path)
    assert path.read_bytes() == b"abc"  # not silently replaced: old links keep their meaning


def test_short_credential_is_an_error_naming_it(tmp_path, monkeypatch):
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "edgeguard_link_key").write_bytes(b"abc")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    with pytest.raises(ValueError, match="edgeguard_link_key"):
        load_link_key(tmp_path / "link.key")


def test_unreadable_key_is_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    path = tmp_path / "link.key"
    path.mkdir()  # reading a folder fails even as root
    with pytest.raises(OSError, match=str(path)):
        load_link_key(path)


def test_signer_refuses_weak_settings():
    with pytest.raises(ValueError):
        LinkSigner(b"short", PUBLIC, TTL)
    with pytest.raises(ValueError):
        LinkSigner(KEY, "", TTL)
    with pytest.raises(ValueError):
        LinkSigner(KEY, PUBLIC, 0)
