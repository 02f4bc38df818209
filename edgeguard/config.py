"""Configuration: one TOML file, validated once at start-up into a typed `Config`.

Every section is a frozen dataclass whose fields carry their default, their
one-line help (the example config is generated from it) and their range
(edgeguard.configfile.fields).  A wrong key, type or value raises `ConfigError`
naming the file and the key, so the daemon stops before it does anything.

Relative paths resolve against `paths.base_dir`; a relative `base_dir`
resolves against the working directory (systemd sets it to the state
directory).  Twilio secrets may come from `$CREDENTIALS_DIRECTORY` (systemd
`LoadCredential=`), the environment, or the file, in that order of precedence.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import get_type_hints

from .common.credentials import SecretError, open_to_others, read_secret
from .common.event_types import ROUTE_TYPES, EventType
from .common.match_rule import MatchThresholds
from .common.phone import E164, E164_HELP
from .common.sealing import DataKeyError, PendingSealer, Sealer, load_sealer, no_key_yet
from .common.timeofday import HOURS, HOURS_HELP
from .configfile.example import example_text
from .configfile.fields import build_section, option
from .configfile.reading import ConfigError, find_config_file, read_toml

LISTEN = r"|[^\s:]*:\d{1,5}"  # empty, or host:port (an IPv6 host in brackets)
LISTEN_HELP = "must be host:port, e.g. 127.0.0.1:8780"

LISTEN = r"|[^\s:]*:\d{1,5}"  # empty, or host:port (an IPv6 host in brackets)
LISTEN_HELP = "must be host:port, e.g. 127.0.0.1:8780"


@dataclass(frozen=True)
class PathsConfig:
    base_dir: Path = option(
        Path("."),
        "relative paths below resolve against this folder; a relative base_dir against the working directory",
    )
    training_images: Path = option(
        Path("TrainingImage"), "one sub-folder per watchlist Id with that person's photos"
    )
    details_csv: Path = option(
        Path("Details/Details.csv"), "Id,Name,phone_number,initial_deposit[,category,...]"
    )
    encodings_cache: Path = option(
        Path("TrainingImageLabel"), "cache of face encodings, keyed by photo content"
    )
    captures: Path = option(
        Path("Unknown_Face_Captures"), "where the faces of unknown visitors and watchlist sightings are saved"
    )
    events_db: Path = option(Path("events.db"), "the event log (SQLite)")
    outbox_db: Path = option(Path("outbox.db"), "alerts waiting to be sent, and sent (SQLite)")
    link_key: Path = option(
        Path("link.key"),
        "secret that signs image links (made on first start; credential edgeguard_link_key wins)",
    )
    users_db: Path = option(Path("users.db"), "dashboard users and their sessions (SQLite)")
    strangers_db: Path = option(
        Path("strangers.db"), "strangers remembered across days: ids, encodings, sightings (SQLite)"
    )
    audit_db: Path = option(Path("audit.db"), "the audit log: who changed what (SQLite, append-only)")
    data_key: Path = option(
        Path("data.key"),
        "key that encrypts biometric data at rest (made on first start; credential data_key wins)",
    )

    @property
    def state_dir(self) -> Path:
        """The state folder: where the daemon keeps what it makes for itself (the dashboard's `web.secret`,
        the push cameras' `push_tokens/`), and what every part asks for it.  It is `base_dir` (systemd's
        StateDirectory, /var/lib/edgeguard), wherever the event log or the outbox are put."""
        return self.base_dir


# A camera's name is in URLs (/video_feed/<name>, /upload_frame/<name>) and file names (its push token).
CAMERA_NAME = r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}"
CAMERA_NAME_HELP = "must be 1-64 letters, digits, spaces, '_', '.' or '-', starting with a letter or digit"


@dataclass(frozen=True)
class CameraConfig:
    name: str = option(
        "camera",
        "camera name, unique: used in events, alerts and the dashboard's addresses",
        pattern=CAMERA_NAME,
        pattern_help=CAMERA_NAME_HELP,
    )
    source: str = option(
        "0",
        "USB index or /dev/videoN, rtsp:// or http(s):// URL, a video file, picamera2, jetson-csi, "
        "or push (JPEG frames POSTed to /upload_frame/<name>, see edgeguard push)",
    )
    width: int = option(
        1280, "requested frame width (the driver may choose another; the log says which)", min=160, max=7680
    )
    height: int = option(720, "requested frame height", min=120, max=4320)
    fps: int = option(
        15,
        "requested frames per second; push cameras: the most frames taken per second (more get 429)",
        min=1,
        max=120,
    )
    fourcc: str = option("MJPG", "pixel format asked of USB cameras; empty for the driver's default")
    open_timeout: float = option(10.0, "seconds to wait for a stream to open", min=1.0, max=300.0)
    read_timeout: float = option(
        5.0,
        "seconds without a frame before a stream (or push camera) counts as stalled and is reopened",
        min=0.5,
        max=300.0,
    )
    loop: bool = option(False, "start a video file again at its end instead of ending the run")
    realtime: bool = option(False, "play video files at their own fps instead of as fast as possible")
    # Where the camera is, and the settings that depend on its view: when not given, they are [location]'s,
    # [pipeline]'s, [recognition]'s, [events]'s and [mask]'s (CAMERA_OVERRIDES).
    location: str = option(
        "Site", "where the camera is, as guards know it (e.g. Front Gate); default: [location] name"
    )
    latitude: float = option(
        0.0,
        "for a maps link in alerts; 0 and 0 mean not given; default: [location] latitude",
        min=-90.0,
        max=90.0,
    )
    longitude: float = option(0.0, "default: [location] longitude", min=-180.0, max=180.0)
    detect_width: int = option(640, "default: [pipeline] detect_width", min=160, max=3840)
    min_face_size: int = option(32, "default: [recognition] min_face_size", min=20, max=1000)
    max_people: int = option(2, "default: [events] max_people", min=0, max=1000)
    mask_events: bool = option(True, "no_mask events from this camera; default: [mask] events")
    loiter_minutes: float = option(10.0, "default: [events] loiter_minutes", min=0.0, max=1440.0)
    return_visits: int = option(3, "default: [events] return_visits", min=0, max=100)
    return_window_days: float = option(7.0, "default: [events] return_window_days", min=0.01, max=3650.0)

    @property
    def has_position(self) -> bool:
        return (self.latitude, self.longitude) != (0.0, 0.0)

    @property
    def pushed(self) -> bool:
        """Whether its frames are pushed over HTTP (`source = "push"`, any case) rather than read."""
        return self.source.strip().lower() == "push"


@dataclass(frozen=True)
class LocationConfig:
    name: str = option(
        "Site",
        "where the camera is, as guards know it (e.g. Front Gate); with [[camera]] tables, the default of "
        "their location",
    )
    latitude: float = option(0.0, "for a maps link in alerts; 0 and 0 mean not given", min=-90.0, max=90.0)
    longitude: float = option(0.0, "for a maps link in alerts", min=-180.0, max=180.0)


@dataclass(frozen=True)
class RecognitionConfig:
    tolerance: float = option(
        0.56,
        "largest face distance that still counts as a match (lower is stricter; see README)",
        min=0.2,
        max=0.9,
    )
    detector: str = option(
        "yunet",
        "face detector: yunet (finds masked, turned and small faces; fast on a CPU), hog (dlib's, frontal "
        "faces only) or cnn (dlib's, needs dlib built with CUDA, e.g. on a Jetson)",
        choices=("yunet", "hog", "cnn"),
    )
    detector_score: float = option(
        0.6,
        "yunet: faces scoring below this are ignored (lower finds more; every box is then checked by the "
        "mask model's face test)",
        min=0.05,
        max=0.99,
    )
    detection_model: str = option(
        "", "moved to detector (still read here when detector is not set)", choices=("", "hog", "cnn")
    )
    upsample: int = option(
        1, "hog/cnn: detector upsampling on still images: 1 finds faces down to about 40 px", min=0, max=3
    )
    min_face_size: int = option(
        32, "faces smaller than this many pixels (box side) are counted but not identified", min=20, max=1000
    )
    enrol_min_face_size: int = option(
        60,
        "watchlist photos need a face at least this big (they set the reference for every match)",
        min=20,
        max=1000,
    )
    max_detect_side: int = option(
        1024,
        "still images are shrunk to this longest side for detection (encoding uses full size)",
        min=320,
        max=8192,
    )
    max_image_pixels: int = option(
        40_000_000,
        "photos with more pixels than this are refused (decompression bombs)",
        min=1_000_000,
        max=200_000_000,
    )
    encoder: str = option(
        "opencv",
        "face encoder: opencv (dlib's network run by OpenCV, the same encodings several times faster) or "
        "dlib (dlib itself)",
        choices=("opencv", "dlib"),
    )
    encoder_processes: int = option(
        0,
        "encoder = dlib with several cameras: face encodings run in this many worker processes (dlib holds "
        "Python's GIL while it encodes); 0: one per camera, at most one per core; each costs about 80 MB",
        min=0,
        max=64,
    )
    enrol_jitters: int = option(
        1,
        "re-samples per watchlist photo when encoding (higher: slightly more robust, slower enrolment)",
        min=1,
        max=20,
    )


@dataclass(frozen=True)
class MaskConfig:
    enabled: bool = option(
        True, "tell masked from bare faces (analyze fills mask/mask_score; the daemon votes per face)"
    )
    find_masked: str = option(
        "always",
        "look for masked faces HOG scores just below its cut-off: off, stills (analyze) or always (also live "
        "frames)",
        choices=("off", "stills", "always"),
    )
    events: bool = option(True, "emit a no_mask event for each face whose vote says it wears no mask")
    hours: str = option(
        "",
        'no_mask events only between these local times, e.g. "08:00-18:00" (empty: always)',
        pattern=HOURS,
        pattern_help=HOURS_HELP,
    )


@dataclass(frozen=True)
class PipelineConfig:
    detect_width: int = option(
        640,
        "frames wider than this are shrunk to it for detection; the smallest face found is about "
        "20 x frame width / detect_width px with yunet (40 with hog at upsample 1): raise it for cameras "
        "wider than 1024 px",
        min=160,
        max=3840,
    )
    upsample: int = option(
        1,
        "hog/cnn: detector upsampling on live frames (each step finds faces half as big, at about 4x the "
        "cost)",
        min=0,
        max=2,
    )
    detect_every: float = option(
        1.0,
        "seconds between full-frame detections: a new face is found within this time (sooner after a scene "
        "cut)",
        min=0.0,
        max=60.0,
    )
    track_every: float = option(
        0.1,
        "seconds between searches for each tracked face near its last position (cheap; also paces the "
        "identity vote)",
        min=0.0,
        max=10.0,
    )
    vote_frames: int = option(
        3, "identity samples a face needs before its identity is decided by majority", min=1, max=15
    )
    unknown_margin: float = option(
        0.08,
        "a face must be this far beyond the tolerance to vote 'unknown'; closer it is uncertain (dlib "
        "trained same-person pairs under 0.56, others over 0.64)",
        min=0.0,
        max=0.5,
    )
    recheck_seconds: float = option(
        3.0, "seconds between re-checks of a decided face's identity", min=0.1, max=600.0
    )
    forget_seconds: float = option(1.0, "a face not seen for this long has left the view", min=0.1, max=60.0)
    min_sharpness: float = option(
        10.0,
        "blurrier faces (variance of the Laplacian on a 64 px grey crop) are not used to decide identity",
        min=0.0,
        max=10000.0,
    )


@dataclass(frozen=True)
class EventsConfig:
    max_people: int = option(2, "a crowd event fires when more people than this are in view", min=0, max=1000)
    crowd_min_seconds: float = option(3.0, "for at least this many seconds", min=0.0, max=3600.0)
    revisit_minutes: float = option(
        30.0,
        "an unknown visitor seen again within this time is the same visitor (no new capture at the same "
        "location)",
        min=0.0,
        max=10080.0,
    )
    loiter_minutes: float = option(
        10.0,
        "a face (known or not) in view of one camera this long is a loitering event, once per stay; 0: none",
        min=0.0,
        max=1440.0,
    )
    return_visits: int = option(
        3,
        "a stranger seen on this many separate visits within return_window_days is a return_visit event; "
        "0: none",
        min=0,
        max=100,
    )
    return_window_days: float = option(
        7.0, "the days back in which a stranger's visits are counted", min=0.01, max=3650.0
    )
    camera_down_seconds: float = option(
        120.0,
        "a camera without frames for this long is a camera_down event (camera_up when frames return)",
        min=5.0,
        max=86400.0,
    )
    retention_days: float = option(
        365.0,
        "events older than this are deleted from the event log (checked at start and every 10 minutes)",
        min=1.0,
        max=36500.0,
    )


@dataclass(frozen=True)
class CapturesConfig:
    retention_days: float = option(30.0, "captures older than this are deleted", min=0.01, max=3650.0)
    max_mb: float = option(
        1024.0, "the oldest captures are deleted to keep the folder under this size", min=1.0, max=1_000_000.0
    )
    known_categories: tuple[str, ...] = option(
        ("*",),
        'watchlist categories whose sightings are captured too, e.g. ["wanted", "missing"]; '
        '"*": every category not in [alerts] quiet_categories; []: none',
    )


@dataclass(frozen=True)
class WatchlistConfig:
    watch: bool = option(True, "reload the watchlist when photos or Details.csv change while running")
    polling: bool = option(False, "poll for changes instead of inotify (network or USB filesystems)")
    poll_interval: float = option(5.0, "seconds between polls when polling = true", min=0.5, max=3600.0)
    debounce: float = option(
        2.0, "seconds of quiet after the last change before reloading", min=0.1, max=600.0
    )
    hub_url: str = option(
        "",
        "the fleet hub's dashboard address, e.g. https://hub.example.net:8080: its watchlist is fetched at "
        "start and when the hub says so (empty: this device's watchlist only)",
    )
    hub_token: str = option("", "this device's watchlist token at the hub (edgeguard hub --token DEVICE)")
    hub_key: str = option("", "the hub's public watchlist key (base64), printed by edgeguard hub --token")


# Not every site requires masks: a route texts about bare faces only when it asks for no_mask.
DEFAULT_ROUTE_EVENTS = (EventType.UNKNOWN_FACE, EventType.KNOWN_FACE, EventType.CROWD)


@dataclass(frozen=True)
class RouteConfig:
    to: tuple[str, ...] = option(
        (), 'phone numbers in international form, e.g. ["+15551230000"]', pattern=E164, pattern_help=E164_HELP
    )
    events: tuple[str, ...] = option(
        DEFAULT_ROUTE_EVENTS,
        'event types sent on this route; add "no_mask" to text about bare faces, "camera_down" and '
        '"camera_up" about cameras without frames',
        choices=ROUTE_TYPES,
    )
    categories: tuple[str, ...] = option(
        (), 'known faces only of these Details.csv categories, e.g. ["wanted"] (empty: any)'
    )
    locations: tuple[str, ...] = option(
        (), 'only events at these locations (camera location names), e.g. ["Front Gate"] (empty: all)'
    )
    cameras: tuple[str, ...] = option((), "only events from these cameras (names) (empty: all)")
    hours: str = option(
        "",
        'only between these local times, e.g. "08:00-18:00" (empty: always)',
        pattern=HOURS,
        pattern_help=HOURS_HELP,
    )


@dataclass(frozen=True)
class AlertsConfig:
    quiet_categories: tuple[str, ...] = option((), 'Details.csv categories that never alert, e.g. ["staff"]')
    outbox_retention_days: float = option(
        90.0,
        "messages sent, failed or not sent (dry run) longer ago than this are deleted from the outbox; "
        "pending ones stay",
        min=1.0,
        max=3650.0,
    )
    cooldown_minutes: float = option(
        5.0,
        "at most one alert per person (or unknown visitor), location and event type in this time",
        min=0.0,
        max=1440.0,
    )
    max_per_hour: int = option(
        20,
        "messages per recipient per hour; the rest are counted and mentioned in the next one",
        min=1,
        max=10000,
    )
    mms: bool = option(False, "attach the capture image as MMS (US and Canada numbers only)")
    public_url: str = option(
        "",
        "address recipients reach the dashboard's server at, for image links, e.g. "
        "https://gate.example.net:8780 (empty: no image links)",
        pattern=r"|https?://[^\s/]+(/\S*)?",
        pattern_help="must be an http:// or https:// address",
    )
    listen: str = option(
        "",
        "moved to [web] listen (still read here when [web] listen is not set)",
        pattern=LISTEN,
        pattern_help=LISTEN_HELP,
    )
    link_hours: float = option(72.0, "image links expire after this many hours", min=0.1, max=8760.0)
    route: tuple[RouteConfig, ...] = option(
        (), "who gets what: one [[alerts.route]] table per rule (see below)"
    )


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = option(
        "", "Twilio account SID; better: $TWILIO_ACCOUNT_SID or credential twilio_account_sid"
    )
    auth_token: str = option(
        "", "Twilio auth token; better: $TWILIO_AUTH_TOKEN or credential twilio_auth_token"
    )
    from_number: str = option(
        "",
        "the Twilio number messages come from, e.g. +15551230000",
        pattern="|" + E164,
        pattern_help=E164_HELP,
    )
    messaging_service_sid: str = option("", "or a Messaging Service SID (MG...) instead of from_number")
    api_url: str = option(
        "https://api.twilio.com",
        "Twilio API address (an outbound proxy, or a local test server)",
        pattern=r"https?://[^\s/]+/?",
        pattern_help="must be an http:// or https:// address without a path",
    )
    timeout: float = option(
        10.0, "seconds before a request to Twilio is given up and retried", min=1.0, max=120.0
    )


@dataclass(frozen=True)
class WebConfig:
    enabled: bool = option(True, "serve the dashboard (and the image links of alerts) from the daemon")
    listen: str = option(
        "127.0.0.1:8780",
        "host:port of the dashboard; 0.0.0.0:8780 for the LAN (then set tls_cert and tls_key)",
        pattern=LISTEN[1:],
        pattern_help=LISTEN_HELP,
    )
    tls_cert: str = option("", "PEM certificate (chain) for HTTPS; relative to base_dir (empty: plain HTTP)")
    tls_key: str = option("", "the certificate's private key (PEM)")
    live_fps: float = option(5.0, "frames per second of the live view at most", min=0.5, max=30.0)
    max_live_viewers: int = option(
        3, "live views open at once at most (each costs one JPEG encoding per frame)", min=0, max=20
    )
    idle_minutes: float = option(
        30.0, "a session ends after this long without a request", min=1.0, max=1440.0
    )
    session_hours: float = option(
        12.0, "a session ends this long after the login in any case", min=0.5, max=168.0
    )
    otp: str = option(
        "off",
        "a code by SMS after the password, for users with a phone number: off, admin or all",
        choices=("off", "admin", "all"),
    )


@dataclass(frozen=True)
class PrivacyConfig:
    encrypt: bool = option(
        True,
        "encrypt captures, the encoding cache, the event log's personal fields and the outbox's texts "
        "at rest with the data key (AES-GCM); plain data written before stays readable (see privacy migrate)",
    )
    audit_retention_days: float = option(
        730.0,
        "audit rows older than this are deleted; an anchor row keeps the hash of the last one removed, so "
        "the chain stays verifiable",
        min=30.0,
        max=36500.0,
    )


# MQTT topics we publish to: no wildcards ('+', '#'), no NUL, not empty at either end, not $SYS-like.
TOPIC = r"|[^/$+#\x00]([^+#\x00]*[^/+#\x00])?"
TOPIC_HELP = "must not contain '+', '#' (MQTT wildcards) or NUL, nor start with '/' or '$' or end with '/'"
# Home Assistant's discovery ids take [a-zA-Z0-9_-]; the device id is also one topic level.
DEVICE_ID = r"|[A-Za-z0-9_-]{1,64}"
DEVICE_ID_HELP = "must be 1-64 letters, digits, '_' or '-'"


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = option(
        False, "publish every event to an MQTT broker, and announce the device to Home Assistant"
    )
    host: str = option("", "the broker's host name or address, e.g. broker.example.net")
    port: int = option(0, "the broker's port; 0: 8883 with tls, else 1883", min=0, max=65535)
    tls: bool = option(False, "connect with TLS, the broker's certificate checked against tls_ca")
    tls_ca: str = option(
        "",
        "PEM file of the CA that signed the broker's certificate; relative to base_dir (empty: the system's)",
    )
    tls_cert: str = option("", "client certificate (PEM), when the broker asks for one")
    tls_key: str = option("", "the client certificate's private key (PEM)")
    username: str = option("", "user name at the broker (empty: none)")
    password: str = option("", "better: $EDGEGUARD_MQTT_PASSWORD or credential mqtt_password")
    device_id: str = option(
        "",
        "this device on the broker: in topics, the client id and Home Assistant's ids (empty: the host name)",
        pattern=DEVICE_ID,
        pattern_help=DEVICE_ID_HELP,
    )
    topic_prefix: str = option(
        "",
        "where this device's topics start (empty: edgeguard/<device_id>)",
        pattern=TOPIC,
        pattern_help=TOPIC_HELP,
    )
    keepalive: int = option(
        60,
        "seconds between keep-alive pings (the broker declares the device offline after 1.5 times this)",
        min=5,
        max=3600,
    )
    discovery: bool = option(True, "announce the device and its entities to Home Assistant (MQTT discovery)")
    discovery_prefix: str = option(
        "homeassistant", "Home Assistant's discovery prefix", pattern=TOPIC[1:], pattern_help=TOPIC_HELP
    )
    person_categories: tuple[str, ...] = option(
        ("missing", "wanted"), 'watchlist categories whose people get a "last seen" sensor in Home Assistant'
    )
    face_images: bool = option(
        False,
        "also publish the last unknown face's image (biometric data on the broker); "
        "off: only its signed link, when [alerts] public_url is set",
    )

    @property
    def broker(self) -> str:
        """host:port, for messages."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class HubConfig:
    """`edgeguard hub`: the fleet hub (its broker: [mqtt] host, port, TLS and user; its dashboard: [web])."""

    database_url: str = option(
        "",
        "SQLAlchemy URL of the hub's database, e.g. postgresql+psycopg://hub@db.example.net/edgeguard "
        "(empty: SQLite, hub.db in base_dir)",
    )
    name: str = option(
        "",
        "this hub process on the broker (its client id is edgeguard-hub-<name>; empty: the host name); "
        "give each hub process its own",
        pattern=DEVICE_ID,
        pattern_help=DEVICE_ID_HELP,
    )
    group: str = option(
        "edgeguard-hub",
        "the shared subscription group: the broker hands each event to one hub process of the group",
        pattern=DEVICE_ID[1:],
        pattern_help=DEVICE_ID_HELP,
    )
    max_event_kb: int = option(64, "an event message larger than this is logged and skipped", min=4, max=1024)
    tile_url: str = option(
        "",
        "map tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (empty: no tiles, points on a grid)",
    )
    tile_attribution: str = option("", "the tiles' attribution shown on the map (their licence asks for it)")
    watchlist_key: str = option(
        "",
        "the Ed25519 key (PEM) that signs the fleet's watchlist bundles, the same file for every hub process "
        "(empty: watchlist.key in base_dir, made on first start)",
    )

    def database(self, base: Path) -> str:
        """The database URL: `database_url`, else the SQLite file hub.db in `base`."""
        return self.database_url or f"sqlite:///{base / 'hub.db'}"


@dataclass(frozen=True)
class PushConfig:
    max_frame_kb: int = option(
        1024, "push cameras: a pushed JPEG larger than this is refused (413)", min=16, max=65536
    )
    max_frame_pixels: int = option(
        8_294_400,
        "push cameras: a pushed frame with more pixels than this is refused (413; 3840x2160 by default)",
        min=19_200,
        max=50_000_000,
    )


@dataclass(frozen=True)
class LoggingConfig:
    level: str = option(
        "INFO", "DEBUG, INFO, WARNING or ERROR", choices=("DEBUG", "INFO", "WARNING", "ERROR")
    )


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    cameras: tuple[CameraConfig, ...] = (CameraConfig(),)  # [[camera]] tables, or the one [camera] table
    location: LocationConfig = field(default_factory=LocationConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    captures: CapturesConfig = field(default_factory=CapturesConfig)
    watchlist: WatchlistConfig = field(default_factory=WatchlistConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    web: WebConfig = field(default_factory=WebConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    hub: HubConfig = field(default_factory=HubConfig)
    push: PushConfig = field(default_factory=PushConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # the data key's sealer when [privacy] encrypt is on (loaded by load_config; None: data written plain)
    sealer: Sealer | PendingSealer | None = field(default=None, repr=False, compare=False)
    source: Path | None = None  # the file this came from, None for built-in defaults
    notes: tuple[str, ...] = ()  # things the installer should know (a key that moved), logged at start

    @cached_property
    def match_thresholds(self) -> MatchThresholds:
        """The one set of thresholds that decides face against watchlist (edgeguard.common.match_rule); the
        same object for every part built from this configuration."""
        return MatchThresholds(self.recognition.tolerance, self.pipeline.unknown_margin)

    @property
    def twilio_ready(self) -> bool:
        """Whether messages can really be sent (otherwise alerts run dry)."""
        t = self.twilio
        return bool(t.account_sid and t.auth_token and (t.from_number or t.messaging_service_sid))


SECTIONS: dict[str, type] = {
    name: kind
    for name, kind in get_type_hints(Config).items()
    if name not in ("source", "notes", "cameras", "sealer")
}
SECTIONS = {"camera": CameraConfig, **SECTIONS}  # [camera] or [[camera]]: _cameras

# CameraConfig key -> (section, key) whose value it takes when a camera does not set it.
CAMERA_OVERRIDES = {
    "location": ("location", "name"),
    "latitude": ("location", "latitude"),
    "longitude": ("location", "longitude"),
    "detect_width": ("pipeline", "detect_width"),
    "min_face_size": ("recognition", "min_face_size"),
    "max_people": ("events", "max_people"),
    "mask_events": ("mask", "events"),
    "loiter_minutes": ("events", "loiter_minutes"),
    "return_visits": ("events", "return_visits"),
    "return_window_days": ("events", "return_window_days"),
}

# secret key -> (environment variable, credential file name)
SECRETS = {
    "account_sid": ("TWILIO_ACCOUNT_SID", "twilio_account_sid"),
    "auth_token": ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
}


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and resolve the configuration (see the module docstring)."""
    source = find_config_file(path)
    raw = read_toml(source) if source else {}
    where = str(source) if source else "built-in defaults"
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
    sections = {}
    for name, cls in SECTIONS.items():
        if name == "camera":
            continue
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: '{name}' must be a [{name}] table")
        sections[name] = build_section(cls, table, where, name)
    sections["paths"] = _resolve_paths(sections["paths"])
    sections["twilio"] = _resolve_secrets(sections["twilio"], source)
    sections["mqtt"] = _mqtt(sections["mqtt"], sections["paths"].base_dir, source, where)
    sections["web"], notes = _web(sections["web"], sections["alerts"], sections["paths"].base_dir, raw, where)
    sections["recognition"], moved = _recognition(sections["recognition"], raw, where)
    cameras = _cameras(raw.get("camera", {}), sections, where)
    sealer, key_notes = _sealer(sections["privacy"], sections["paths"])
    config = Config(
        **sections, cameras=cameras, sealer=sealer, source=source, notes=notes + moved + key_notes
    )
    _check_together(config, where)
    return config


def _sealer(
    privacy: PrivacyConfig, paths: PathsConfig
) -> tuple[Sealer | PendingSealer | None, tuple[str, ...]]:
    """The data key's sealer when encryption is on (edgeguard.common.sealing); a key that is missing, open to
    others, of the wrong length or not the data's key is a ConfigError: one line, before anything starts."""
    if not privacy.encrypt:
        return None, ()
    try:
        sealer, note = load_sealer(paths.data_key, paths.state_dir)
    except DataKeyError as exc:
        if not no_key_yet(paths.data_key):
            raise ConfigError(str(exc)) from None
        # A first start on a full disk: the daemon runs, and captures wait for the key (PendingSealer).
        return PendingSealer(paths.data_key, paths.state_dir), (
            f"{exc}; captures are not saved until the data key can be made",
        )
    return sealer, (note,) if note else ()


def _web(
    web: WebConfig, alerts: AlertsConfig, base: Path, raw: dict, where: str
) -> tuple[WebConfig, tuple[str, ...]]:
    """[web] with its TLS files resolved, and [alerts] listen carried over from configs made before [web]."""
    notes: tuple[str, ...] = ()
    if alerts.listen and "listen" not in raw.get("web", {}):
        web = dataclasses.replace(web, listen=alerts.listen)
        notes = (
            f"{where}: [alerts] listen has moved to [web] listen; using {alerts.listen} for the dashboard "
            "and the image links (move the key to silence this)",
        )
    tls = {key: str(base / value) for key in ("tls_cert", "tls_key") if (value := getattr(web, key))}
    return dataclasses.replace(web, **tls), notes


def _mqtt(mqtt: MqttConfig, base: Path, source: Path | None, where: str) -> MqttConfig:
    """[mqtt] with its defaults filled in (device id from the host name, prefix, port), its TLS files resolved
    and checked, and the password from the credential, the environment or the file."""
    if mqtt.password and source is not None:
        _refuse_readable_secret(source, "[mqtt] password", "$EDGEGUARD_MQTT_PASSWORD or a systemd credential")
    device_id = mqtt.device_id or topic_safe(socket.gethostname())
    tls = {
        key: str(base / value) for key in ("tls_ca", "tls_cert", "tls_key") if (value := getattr(mqtt, key))
    }
    mqtt = dataclasses.replace(
        mqtt,
        device_id=device_id,
        topic_prefix=mqtt.topic_prefix or f"edgeguard/{device_id}",
        port=mqtt.port or (8883 if mqtt.tls else 1883),
        password=_secret_text("MQTT password", "mqtt_password", "EDGEGUARD_MQTT_PASSWORD") or mqtt.password,
        **tls,
    )
    if not mqtt.enabled:
        return mqtt
    if not mqtt.host:
        raise ConfigError(f"{where}: [mqtt] enabled is true but host is empty: name the broker")
    if bool(mqtt.tls_cert) != bool(mqtt.tls_key):
        raise ConfigError(f"{where}: [mqtt] tls_cert and tls_key go together: set both, or neither")
    for key in ("tls_ca", "tls_cert", "tls_key"):
        value = getattr(mqtt, key)
        if value and not mqtt.tls:
            raise ConfigError(f"{where}: [mqtt] {key} is set but tls is false: set tls = true to use it")
        if value and not Path(value).is_file():
            raise ConfigError(f"{where}: [mqtt] {key}: {value} does not exist or is not a file")
    return mqtt


def topic_safe(name: str) -> str:
    """A host name as a device id: letters, digits, '_' and '-' only (at most 64), "edgeguard" if none is "
    "left."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:64] or "edgeguard"


def _recognition(
    recognition: RecognitionConfig, raw: dict, where: str
) -> tuple[RecognitionConfig, tuple[str, ...]]:
    """[recognition] with detection_model (configs made before YuNet) carried over to detector."""
    old = recognition.detection_model
    if not old or "detector" in raw.get("recognition", {}):
        return recognition, ()
    note = (
        f"{where}: [recognition] detection_model has moved to detector; using {old!r} "
        '(move the key to silence this; the default is now "yunet")'
    )
    return dataclasses.replace(recognition, detector=old), (note,)


def _cameras(value: object, sections: dict[str, object], where: str) -> tuple[CameraConfig, ...]:
    """The cameras: [[camera]] tables, or today's one [camera] table (or none: the defaults); each with the
    settings it does not set itself taken from their sections (CAMERA_OVERRIDES)."""
    if isinstance(value, dict):
        tables, labels = [value], ["camera"]
    elif isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
        tables = value
        labels = [
            f"camera {t['name']!r}" if isinstance(t.get("name"), str) else f"camera #{n}"
            for n, t in enumerate(value, start=1)
        ]
    else:
        raise ConfigError(f"{where}: 'camera' must be one [camera] table or one or more [[camera]] tables")
    cameras = []
    for table, label in zip(tables, labels, strict=True):
        camera = build_section(CameraConfig, table, where, label)
        inherited = {
            key: getattr(sections[section], name)
            for key, (section, name) in CAMERA_OVERRIDES.items()
            if key not in table
        }
        cameras.append(dataclasses.replace(camera, **inherited))
    names = [c.name for c in cameras]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"{where}: [[camera]] name {twice[0]!r} is used by {names.count(twice[0])} cameras: "
            "each camera needs its own name"
        )
    return tuple(cameras)


def example_config() -> str:
    """The example config file: every key with its default and a one-line comment; one [[camera]] table
    (add one per camera)."""
    return example_text(SECTIONS, {"camera": tuple(CAMERA_OVERRIDES)})


def _check_together(config: Config, where: str) -> None:
    """Rules that span keys: settings that only make sense with another one."""
    if config.alerts.public_url and not config.web.enabled:
        raise ConfigError(
            f"{where}: [alerts] public_url is set but [web] enabled is false: nothing would serve the image "
            "links"
        )
    if bool(config.web.tls_cert) != bool(config.web.tls_key):
        raise ConfigError(f"{where}: [web] tls_cert and tls_key go together: set both for HTTPS, or neither")
    pushed = [c.name for c in config.cameras if c.pushed]
    if pushed and not config.web.enabled:
        raise ConfigError(
            f'{where}: camera {pushed[0]!r} has source = "push" but [web] enabled is false: '
            "nothing would take its frames"
        )
    hub = config.watchlist
    if hub.hub_url and not (hub.hub_token and hub.hub_key):
        raise ConfigError(
            f"{where}: [watchlist] hub_url needs hub_token and hub_key (printed by edgeguard hub --token)"
        )
    if hub.hub_url and not hub.hub_url.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: [watchlist] hub_url must start with https:// or http://")
    names, locations = {c.name for c in config.cameras}, {c.location for c in config.cameras}
    for n, route in enumerate(config.alerts.route, start=1):
        for key, given, known in (
            ("cameras", route.cameras, names),
            ("locations", route.locations, locations),
        ):
            wrong = [v for v in given if v not in known]
            if wrong:  # a typo here would silently send nothing
                raise ConfigError(
                    f"{where}: [[alerts.route]] #{n} {key}: no camera has {wrong[0]!r} "
                    f"(known: {', '.join(sorted(known))})"
                )


def _resolve_paths(paths: PathsConfig) -> PathsConfig:
    base = paths.base_dir.expanduser().absolute()
    resolved = {
        f.name: base / getattr(paths, f.name).expanduser()
        for f in dataclasses.fields(paths)
        if f.name != "base_dir"
    }
    return PathsConfig(base_dir=base, **resolved)


def _resolve_secrets(twilio: TwilioConfig, source: Path | None) -> TwilioConfig:
    """Fill secrets from $CREDENTIALS_DIRECTORY, then the environment, then the file."""
    if twilio.auth_token and source is not None:
        _refuse_readable_secret(source, "[twilio] auth_token", "$TWILIO_AUTH_TOKEN or a systemd credential")
    values = {}
    for key, (env_name, cred_name) in SECRETS.items():
        values[key] = _secret_text(f"Twilio {key}", cred_name, env_name) or getattr(twilio, key)
    return dataclasses.replace(twilio, **values)


def _secret_text(what: str, credential: str, env: str) -> str:
    """A secret from its credential or environment variable (edgeguard.common.credentials), as text
    without surrounding white space; "" when neither has it."""
    try:
        secret = read_secret(what, credential=credential, env=env)
    except SecretError as exc:
        raise ConfigError(str(exc)) from None
    if secret is None:
        return ""
    try:
        return secret.value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ConfigError(f"{secret.where}: the {what} must be UTF-8 text") from None


def _refuse_readable_secret(source: Path, key: str, better: str) -> None:
    """A secret in a file others can read is a leak waiting to happen: stop."""
    if open_to_others(source):
        raise ConfigError(
            f"{source}: {key}: the file is readable by other users; "
            f"run 'chmod o-rwx {source}' or move the secret to {better}"
        )
