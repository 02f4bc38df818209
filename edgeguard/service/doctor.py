"""`edgeguard check`: a doctor for installers.

Each check prints one line, "ok", "WARN" or "FAIL", with what it found and,
when something is wrong, what to do.  The exit code is 1 when any check
failed, so an install script or a person can tell at a glance.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import ssl
import stat
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from ..alerts.outbox import finished_span
from ..capture import (
    SourceError,
    device_node,
    open_source,
    parse_source,
    push_token_location,
    ways_forward,
)
from ..config import CameraConfig, Config
from ..detect import Box, DetectorError
from ..faces.encode import FaceEncoder
from ..faces.engine import FaceEngine
from ..faces.opencv_encoder import EncoderModelError
from ..mask import MaskClassifier, MaskModelError
from ..outputs.mqtt.probe import probe
from ..store.audit import span as audit_span
from ..store.event_log import event_span, output_positions
from ..store.space import DiskSpace
from ..store.sqlite import DamagedDatabase, connect_readonly
from ..store.strangers import kept_in
from ..watchlist.build import build_watchlist, open_cache
from .privacy_migrate import plain_left

LOW_SPACE_MB = 64  # below this much free space the storage check warns


@dataclass(frozen=True)
class Finding:
    level: str  # "ok", "WARN" or "FAIL"
    what: str
    detail: str


@dataclass(frozen=True)
class Check:
    """One check: what it finds, and for a slow one what it waits for (said before it starts)."""

    run: Callable[[Config], list[Finding]]
    waiting: str | None = None


def run_checks(
    config: Config, source: str | None, live: bool, out: Callable[[str], None] | None = None
) -> int:
    """Run every check, printing each line as its check finishes; the exit code."""
    say = out or (lambda line: print(line, flush=True))
    findings: list[Finding] = []

    def report(finding: Finding) -> None:
        findings.append(finding)
        say(f"[{finding.level:>4}] {finding.what}: {finding.detail}")

    report(Finding("ok", "configuration", str(config.source or "built-in defaults (no file)")))
    for check in _checks(config, source, live):
        if check.waiting:
            say(f"  ... {check.waiting}")
        for finding in check.run(config):
            report(finding)
    for note in config.notes:
        report(Finding("WARN", "configuration", note))
    failed = sum(f.level == "FAIL" for f in findings)
    say(f"{len(findings)} checks, {failed} failed, {sum(f.level == 'WARN' for f in findings)} warnings")
    return 1 if failed else 0


def _checks(config: Config, source: str | None, live: bool) -> list[Check]:
    cameras = config.cameras if source is None else (dataclasses.replace(config.cameras[0], source=source),)
    return [
        Check(check_folders),
        Check(check_privacy),
        Check(check_storage),
        Check(check_strangers),
        Check(check_retention),
        Check(check_encryption),
        *(
            Check(
                lambda c, camera=camera: [_check_one_camera(c, camera)],
                None
                if camera.pushed or _absent_device(camera)
                else f"camera {camera.name}: waiting up to {camera.open_timeout + camera.read_timeout:g} s "
                "for a first frame",
            )
            for camera in cameras
        ),
        Check(check_dlib),
        Check(check_detector, "face detector: loading and timing it"),
        Check(check_encoder, "face encoder: loading and timing it"),
        Check(check_watchlist, "watchlist: reading the photos (new ones are encoded, a second or so each)"),
        Check(check_masks, "masks: loading the model"),
        Check(lambda c: check_twilio(c, live), "twilio: asking Twilio's API (up to 30 s)" if live else None),
        Check(check_web),
        Check(
            check_public_url,
            "image links: asking the address in public_url" if config.alerts.public_url else None,
        ),
        Check(
            check_mqtt,
            f"mqtt: connecting to {config.mqtt.host}:{config.mqtt.port}" if config.mqtt.enabled else None,
        ),
    ]


def from_checkout(config: Config) -> bool:
    """Whether the site folders are a source checkout (the quick start) rather than an installed service."""
    return (config.paths.base_dir / ".git").exists()


def check_folders(config: Config) -> list[Finding]:
    p = config.paths
    out = []
    for name, folder in (
        ("training photos", p.training_images),
        ("captures", p.captures),
        ("encoding cache", p.encodings_cache),
        ("event log", p.events_db.parent),
        ("outbox", p.outbox_db.parent),
    ):
        problem = _writable(folder)
        out.append(
            Finding("FAIL", f"folder for {name}", f"{folder}: {problem}")
            if problem
            else Finding("ok", f"folder for {name}", f"{folder} is writable")
        )
    return out


def check_privacy(config: Config) -> list[Finding]:
    """Photos, captures and Details.csv are biometric and personal: nobody but the service may read them."""
    p = config.paths
    out = []
    for name, path, fix in (
        ("training photos", p.training_images, "chmod -R go-rwx"),
        ("captures", p.captures, "chmod -R go-rwx"),
        ("Details.csv", p.details_csv, "chmod 600"),
    ):
        try:
            mode = path.stat().st_mode
        except OSError:
            continue  # missing: check_folders or the watchlist says so
        if mode & stat.S_IRWXO:
            out.append(
                Finding(
                    "WARN",
                    f"privacy of {name}",
                    f"{path} is open to other users (mode {stat.filemode(mode)}): run '{fix} {path}'"
                    + ("" if from_checkout(config) else " or systemd/install.sh again"),
                )
            )
        else:
            out.append(Finding("ok", f"privacy of {name}", f"{path} is private ({stat.filemode(mode)})"))
    return out


def check_encryption(config: Config) -> list[Finding]:
    """Whether biometric and personal data is written sealed, and what is still plain from before."""
    what = "encryption at rest"
    if config.sealer is None:
        return [
            Finding("WARN", what, "[privacy] encrypt is off: captures, the cache, events and texts are plain")
        ]
    try:
        left = {name: count for name, count in plain_left(config).items() if count}
    except (OSError, DamagedDatabase, sqlite3.Error) as exc:
        return [Finding("FAIL", what, f"cannot look at what is sealed: {exc}")]
    if left:
        counts = ", ".join(f"{count} {name}" for name, count in left.items())
        return [
            Finding(
                "WARN",
                what,
                f"still plain from before: {counts}; run 'edgeguard privacy migrate' with the daemon stopped",
            )
        ]
    return [
        Finding(
            "ok", what, f"captures, the encoding cache, events and texts sealed (key: {config.sealer.where})"
        )
    ]


def check_storage(config: Config) -> list[Finding]:
    """Free space where the event log and outbox live, the space reserve, and whether both files are sound."""
    folder = config.paths.events_db.parent
    space = DiskSpace(folder, None)
    free_mb = space.free_bytes() / (1024 * 1024)
    reserve = (
        "the space reserve is in place"
        if space.reserve.exists()
        else "no space reserve yet (the daemon makes it)"
    )
    level = "WARN" if free_mb < LOW_SPACE_MB else "ok"
    out = [
        Finding(
            level,
            "storage",
            f"{free_mb:,.0f} MB free in {folder}; {reserve}"
            + ("; free space, or events and alerts are kept in memory only" if level == "WARN" else ""),
        )
    ]
    for name, path in (("event log", config.paths.events_db), ("outbox", config.paths.outbox_db)):
        if not path.exists():
            continue
        try:
            connect_readonly(path).close()
            outputs = _outputs(path) if name == "event log" else ""
        except DamagedDatabase as exc:
            out.append(Finding("FAIL", name, str(exc)))
        except sqlite3.Error as exc:
            out.append(Finding("FAIL", name, f"{path} cannot be read: {exc}"))
        else:
            out.append(Finding("ok", name, f"{path} is sound{outputs}"))
    return out


def check_strangers(config: Config) -> list[Finding]:
    """How many strangers and encodings of their faces are kept, and until when (they follow the captures'
    retention)."""
    path = config.paths.strangers_db
    if not path.exists():
        return [Finding("ok", "strangers", "none remembered yet")]
    try:
        kept = kept_in(path)
    except (DamagedDatabase, sqlite3.Error) as exc:
        return [Finding("FAIL", "strangers", f"{path} cannot be read: {exc}")]
    until = ""
    if kept.oldest is not None:
        ends = kept.oldest + config.captures.retention_days * 86400
        until = f"; the oldest sighting is kept until {datetime.fromtimestamp(ends):%Y-%m-%d %H:%M}"
    return [
        Finding(
            "ok",
            "strangers",
            f"{kept.strangers} stranger(s) with {kept.encodings} face encoding(s) kept in {path}"
            f" ([captures] retention_days = {config.captures.retention_days:g}){until}",
        )
    ]


def check_retention(config: Config) -> list[Finding]:
    """How long the events, the outbox's finished messages and the audit rows are kept, how many are, and
    until when the oldest is kept (the daemon deletes them past their limit: service/retention.py)."""
    findings = []
    for what, path, days, key, span in (
        (
            "events",
            config.paths.events_db,
            config.events.retention_days,
            "[events] retention_days",
            event_span,
        ),
        (
            "outbox",
            config.paths.outbox_db,
            config.alerts.outbox_retention_days,
            "[alerts] outbox_retention_days",
            finished_span,
        ),
        (
            "audit",
            config.paths.audit_db,
            config.privacy.audit_retention_days,
            "[privacy] audit_retention_days",
            audit_span,
        ),
    ):
        limit = f"kept {days:g} days ({key})"
        if not path.exists():
            findings.append(Finding("ok", f"retention of {what}", f"{limit}; none yet"))
            continue
        try:
            count, oldest = span(path)
        except (DamagedDatabase, sqlite3.Error) as exc:
            findings.append(Finding("FAIL", f"retention of {what}", f"{path} cannot be read: {exc}"))
            continue
        until = (
            ""
            if oldest is None
            else f"; the oldest is kept until {datetime.fromtimestamp(oldest + days * 86400):%Y-%m-%d %H:%M}"
        )
        findings.append(Finding("ok", f"retention of {what}", f"{limit}: {count} kept in {path}{until}"))
    return findings


def _outputs(path: Path) -> str:
    """Where the durable outputs of events (the SMS alerter) are in the event log: what waits for them."""
    last, cursors = output_positions(path)
    places = [
        f"{name} has every event" if seq >= last else f"{name} has {last - seq} event(s) to go"
        for name, seq in cursors.items()
    ]
    return f"; {', '.join(places)}" if places else ""


def _writable(folder: Path) -> str:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edgeguard-check-"):
            pass
    except OSError as exc:
        return f"not writable ({exc.strerror or exc}); check the owner and mode, or the disk"
    return ""


def _check_one_camera(config: Config, camera: CameraConfig) -> Finding:
    what = f"camera {camera.name} at {camera.location}"
    if camera.pushed:
        return Finding(
            "ok",
            what,
            f"push camera: clients POST JPEG frames to /upload_frame/{camera.name} with the "
            f"token from {push_token_location(camera.name, config.paths.state_dir)} "
            f"(edgeguard push --token-file ...)",
        )
    if _absent_device(camera):
        return Finding("FAIL", what, ways_forward(parse_source(camera.source).target))
    try:
        cam = open_source(camera)
    except SourceError as exc:
        return Finding("FAIL", what, str(exc))
    try:
        frame = cam.read(camera.open_timeout + camera.read_timeout)
        if frame is None:
            return Finding("FAIL", what, _no_frame(camera, cam.description, cam.state))
        height, width = frame.image.shape[:2]
        return Finding("ok", what, f"{cam.description}: a {width}x{height} frame arrived")
    finally:
        cam.stop()


def _absent_device(camera: CameraConfig) -> bool:
    """A USB camera whose device node does not exist: nothing to wait for."""
    spec = parse_source(camera.source)
    return spec.kind == "usb" and not device_node(spec.target).exists()


def _no_frame(camera: CameraConfig, description: str, state: str) -> str:
    """Why no frame came, in words that fit the kind of source."""
    spec = parse_source(camera.source)
    if spec.kind == "usb":
        return ways_forward(spec.target)
    if spec.kind == "stream":
        return (
            f"no frame from {description} ({state}); check the URL, the camera's user and password, "
            "and that the device is reachable from here"
        )
    return (
        f"no frame from {description} ({state}); check the cable, and that no other program holds the camera"
    )


@dataclass(frozen=True)
class DlibBuild:
    """The dlib module that runs: its version, the pip distribution(s) that installed it, its build flags."""

    version: str
    distributions: tuple[str, ...]
    blas: bool
    lapack: bool
    avx: bool
    neon: bool
    cuda: bool

    def describe(self) -> str:
        flags = ", ".join(
            f"{name} {'yes' if on else 'no'}"
            for name, on in (
                ("BLAS", self.blas),
                ("LAPACK", self.lapack),
                ("AVX", self.avx),
                ("NEON", self.neon),
                ("CUDA", self.cuda),
            )
        )
        return f"{self.version} from {' and '.join(self.distributions) or 'no pip distribution'}; {flags}"


def dlib_build() -> DlibBuild:
    import dlib

    return DlibBuild(
        dlib.__version__,
        _dlib_distributions(),
        dlib.DLIB_USE_BLAS,
        dlib.DLIB_USE_LAPACK,
        dlib.USE_AVX_INSTRUCTIONS,
        dlib.USE_NEON_INSTRUCTIONS,
        dlib.DLIB_USE_CUDA,
    )


def _dlib_distributions() -> tuple[str, ...]:
    """What installed the dlib module: "dlib-bin 20.0.1.post1 (prebuilt wheel)", "dlib 20.0.1 (built from
    source)".

    PyPI has only dlib's source, and refuses local versions: a dlib-bin with one
    ("20.0.1+blas") is tools/build-dlib-blas.sh's source build.
    """
    found = metadata.packages_distributions()  # dlib's top_level.txt names only its extension module
    names = sorted(set(found.get("dlib", []) + found.get("_dlib_pybind11", [])))
    out = []
    for name in names:
        version = metadata.version(name)
        prebuilt = name == "dlib-bin" and "+" not in version
        out.append(f"{name} {version} ({'prebuilt wheel' if prebuilt else 'built from source'})")
    return tuple(out)


def check_dlib(config: Config) -> list[Finding]:
    """Which dlib runs; informational, with a hint when it lacks BLAS (slower encodings)."""
    build = dlib_build()
    detail = build.describe()
    if len(build.distributions) > 1:
        return [
            Finding(
                "WARN",
                "dlib",
                f"{detail}: one overwrote the other's files; pip uninstall both, "
                "then install EdgeGuard again",
            )
        ]
    if not build.blas:
        detail += (
            '; with encoder = "dlib", tools/build-dlib-blas.sh rebuilds it with BLAS (its encodings about 4x '
            "faster on x86-64)"
        )
    return [Finding("ok", "dlib", detail)]


def check_detector(config: Config) -> list[Finding]:
    """The configured face detector loads (YuNet: its checksum) and runs; its cost per 640x480 frame here."""
    cfg = config.recognition
    if cfg.detector == "cnn" and not dlib_build().cuda:
        return [
            Finding(
                "WARN",
                "face detector",
                "cnn, but dlib was built without CUDA, so it runs on the CPU "
                '(seconds per frame); use detector = "yunet" or build dlib with CUDA (README, Jetson)',
            )
        ]
    detector = FaceEngine(cfg).detector
    frame = np.full((480, 640, 3), 128, np.uint8)
    image = frame if detector.colour else frame[:, :, 0]
    try:
        detector.load()
        detector.find(image)
        started = time.perf_counter()
        for _ in range(3):
            detector.find(image)
    except (DetectorError, RuntimeError) as exc:
        return [Finding("FAIL", "face detector", f"{cfg.detector}: {exc}")]
    ms = (time.perf_counter() - started) * 1000 / 3
    return [Finding("ok", "face detector", f"{cfg.detector}, {ms:.0f} ms per 640x480 frame")]


def check_encoder(config: Config) -> list[Finding]:
    """The configured face encoder loads (opencv: its checksum) and runs; its cost per face here (landmarks,
    chip and network, one face per call: the most a face costs; several faces of a frame share a pass)."""
    name = config.recognition.encoder
    encoder = FaceEncoder(name)
    image = np.full((200, 200, 3), 128, np.uint8)
    box = Box(40, 160, 160, 40)
    try:
        encoder.load()
        encoder.encode(image, [box])
        started = time.perf_counter()
        for _ in range(3):
            encoder.encode(image, [box])
    except (EncoderModelError, RuntimeError) as exc:
        return [Finding("FAIL", "face encoder", f"{name}: {exc}")]
    ms = (time.perf_counter() - started) * 1000 / 3
    return [Finding("ok", "face encoder", f"{name}, {ms:.0f} ms per face")]


def check_watchlist(config: Config) -> list[Finding]:
    try:
        watchlist = build_watchlist(config, FaceEngine(config.recognition), open_cache(config))
    except (DetectorError, EncoderModelError) as exc:
        return [Finding("FAIL", "watchlist", f"cannot be built: {exc}")]
    summary = f"{watchlist.enrolled} people from {len(watchlist.gallery)} photos"
    out = [
        Finding(
            "ok" if watchlist.enrolled else "WARN",
            "watchlist",
            summary if watchlist.enrolled else f"{summary}: nobody can be recognised yet",
        )
    ]
    out += [Finding("WARN", "watchlist", str(problem)) for problem in watchlist.problems]
    return out


def check_masks(config: Config) -> list[Finding]:
    """The mask model loads and runs; how long one face takes on this device."""
    cfg = config.mask
    if not cfg.enabled:
        return [Finding("ok", "masks", "mask checks are off ([mask] enabled = false)")]
    classifier = MaskClassifier()
    try:
        classifier.load()
    except MaskModelError as exc:
        return [Finding("FAIL", "masks", str(exc))]
    face = np.full((160, 160, 3), 128, np.uint8)
    classifier.classify(face, [Box(20, 140, 140, 20)])
    started = time.perf_counter()
    for _ in range(10):
        classifier.classify(face, [Box(20, 140, 140, 20)])
    ms = (time.perf_counter() - started) * 100
    events = (
        f"no_mask events {'on' if cfg.events else 'off'}{' ' + cfg.hours if cfg.events and cfg.hours else ''}"
    )
    search = (
        cfg.find_masked
        if config.recognition.detector == "hog"
        else f"{config.recognition.detector} finds masked faces itself"
    )
    return [
        Finding(
            "ok",
            "masks",
            f"model {classifier.model_path.name} loaded, {ms:.1f} ms per face; "
            f"masked-face search: {search}; {events}",
        )
    ]


ROUTE_EXAMPLE = '[[alerts.route]] to = ["+15551230000"]'


def check_twilio(config: Config, live: bool) -> list[Finding]:
    """Twilio's credentials, and whether any route would get an alert at all."""
    t = config.twilio
    routes = sum(len(r.to) for r in config.alerts.route)
    found = [] if routes else [_no_route()]
    if t.account_sid and t.auth_token and not config.twilio_ready:
        return found + [
            Finding(
                "FAIL",
                "twilio",
                "credentials are set but [twilio] from_number (or messaging_service_sid) "
                "is empty: alerts run dry until it is set",
            )
        ]
    if not config.twilio_ready:
        return found + [
            Finding(
                "WARN",
                "twilio",
                "no credentials: alerts are queued and logged but not sent (dry run); put them in "
                "$CREDENTIALS_DIRECTORY/twilio_auth_token or $TWILIO_AUTH_TOKEN",
            )
        ]
    found.append(
        Finding(
            "ok",
            "twilio",
            f"credentials present (account ...{t.account_sid[-4:]}), "
            f"{len(config.alerts.route)} route(s) to {routes} number(s)",
        )
    )
    if live:
        found.append(_verify_twilio(config))
    return found


def _no_route() -> Finding:
    return Finding(
        "WARN",
        "alerts",
        f"no route: nothing will be sent, not even as a dry run; add to edgeguard.toml: {ROUTE_EXAMPLE}",
    )


def _verify_twilio(config: Config) -> Finding:
    from ..alerts.sender import TwilioTransport, classify

    try:
        account = TwilioTransport(config.twilio).client.api.v2010.accounts(config.twilio.account_sid).fetch()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return Finding("FAIL", "twilio --live", classify(exc)[1])
    return Finding("ok", "twilio --live", f"credentials accepted; account status {account.status}")


def check_mqtt(config: Config) -> list[Finding]:
    """The broker: connects, authenticates, takes a message under the device's prefix."""
    if not config.mqtt.enabled:
        return [Finding("ok", "mqtt", "off ([mqtt] enabled = false)")]
    ok, detail = probe(config.mqtt)
    return [Finding("ok" if ok else "FAIL", "mqtt", detail)]


def check_web(config: Config) -> list[Finding]:
    """The dashboard: where it listens, TLS or not, how many users; plain HTTP beyond loopback warns."""
    web = config.web
    if not web.enabled:
        return [Finding("ok", "dashboard", "off ([web] enabled = false)")]
    from ..web.users import open_users

    users = open_users(config.paths.users_db)
    try:
        count = users.count()
    finally:
        users.close()
    scheme = "https" if web.tls_cert else "http"
    host = web.listen.rpartition(":")[0].strip("[]")
    # Only whether something answers on this device: a self-signed certificate is fine for that.
    answer = _http_status(f"{scheme}://{_local(host)}:{web.listen.rpartition(':')[2]}/login", verify=False)
    running = "answers now" if isinstance(answer, int) else "starts with the daemon"
    found = [
        Finding(
            "ok" if count else "WARN",
            "dashboard",
            f"{scheme}://{web.listen} ({running}); {count} user(s)"
            + ("" if count else ": add one with 'edgeguard user add NAME --role admin'"),
        )
    ]
    if host not in ("127.0.0.1", "localhost", "::1") and not web.tls_cert:
        found.append(
            Finding(
                "WARN",
                "dashboard",
                f"listens beyond this device ({web.listen}) without TLS: passwords "
                "and faces cross the network in the clear; set [web] tls_cert and tls_key",
            )
        )
    return found


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def check_public_url(config: Config) -> list[Finding]:
    """Does the address in public_url reach EdgeGuard's server?

    An invalid link must be answered 403 by our server; if none runs (the daemon
    is stopped), the dashboard's server is started on `[web] listen` for the check.
    """
    url = config.alerts.public_url
    if not url:
        return [Finding("WARN", "image links", "public_url is empty: alerts carry no image link")]
    from ..alerts.link_signer import LinkSigner
    from ..web.context import SiteStatus
    from ..web.site import build_dashboard

    dashboard, server = build_dashboard(
        config,
        status=SiteStatus,
        watchlist=lambda: None,
        event_log=None,
        outbox=None,
        engine=lambda: FaceEngine(config.recognition),
        signer=LinkSigner(os.urandom(32), url, 60),
    )
    try:
        server.start()
    except OSError:
        server = None  # the port is taken, most likely by the running daemon: ask it
    try:
        status = _http_status(url.rstrip("/") + "/c/edgeguard-check")
    finally:
        if server is not None:
            server.stop()
        dashboard.users.close()
    if status == 403:
        return [Finding("ok", "image links", f"{url} answers")]
    return [
        Finding(
            "FAIL",
            "image links",
            f"{url} did not answer as EdgeGuard ({status}); check the "
            "port-forward, VPN or tunnel to [web] listen = " + config.web.listen,
        )
    ]


def _http_status(url: str, verify: bool = True) -> str | int:
    context = None if verify else ssl._create_unverified_context()
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer: {getattr(exc, 'reason', exc)}"
