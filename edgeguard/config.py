"""Configuration: one TOML file, validated once at start-up into a typed `Config`.

Every section is a frozen dataclass whose fields carry their default, their
one-line help (the example config is generated from it) and their range.  A
wrong key, type or value raises `ConfigError` naming the file and the key, so
the daemon stops before it does anything.

Relative paths resolve against `paths.base_dir`; a relative `base_dir`
resolves against the working directory (systemd sets it to the state
directory).  Twilio secrets may come from `$CREDENTIALS_DIRECTORY` (systemd
`LoadCredential=`), the environment, or the file, in that order of precedence.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_CONFIG = "EDGEGUARD_CONFIG"
DEFAULT_LOCATIONS = (Path("edgeguard.toml"), Path("/etc/edgeguard/edgeguard.toml"))


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and key."""


def _opt(default: Any, help: str, **limits: Any) -> Any:
    """A config field: its default, a one-line help text and optional limits.

    Limits: `min`, `max` (inclusive) and `choices`.
    """
    return field(default=default, metadata={"help": help, **limits})


@dataclass(frozen=True)
class PathsConfig:
    base_dir: Path = _opt(Path("."), "relative paths below resolve against this folder; a relative base_dir against the working directory")
    training_images: Path = _opt(Path("TrainingImage"), "one sub-folder per watchlist Id with that person's photos")
    details_csv: Path = _opt(Path("Details/Details.csv"), "Id,Name,phone_number,initial_deposit[,category,...]")
    encodings_cache: Path = _opt(Path("TrainingImageLabel"), "cache of face encodings, keyed by photo content")
    captures: Path = _opt(Path("Unknown_Face_Captures"), "where unknown faces are saved")
    events_db: Path = _opt(Path("events.db"), "the event log (SQLite)")
    outbox_db: Path = _opt(Path("outbox.db"), "alerts waiting to be sent, and sent (SQLite)")
    link_key: Path = _opt(Path("link.key"), "secret that signs image links (made on first start; credential edgeguard_link_key wins)")


@dataclass(frozen=True)
class CameraConfig:
    name: str = _opt("camera", "camera name, used in events and alerts")
    source: str = _opt("0", "USB index or /dev/videoN, rtsp:// or http(s):// URL, a video file, picamera2, or jetson-csi")
    width: int = _opt(1280, "requested frame width (the driver may choose another; the log says which)", min=160, max=7680)
    height: int = _opt(720, "requested frame height", min=120, max=4320)
    fps: int = _opt(15, "requested frames per second", min=1, max=120)
    fourcc: str = _opt("MJPG", "pixel format asked of USB cameras; empty for the driver's default")
    open_timeout: float = _opt(10.0, "seconds to wait for a stream to open", min=1.0, max=300.0)
    read_timeout: float = _opt(5.0, "seconds without a frame before a stream counts as stalled and is reopened", min=0.5, max=300.0)
    loop: bool = _opt(False, "start a video file again at its end instead of ending the run")
    realtime: bool = _opt(False, "play video files at their own fps instead of as fast as possible")


@dataclass(frozen=True)
class LocationConfig:
    name: str = _opt("Site", "where the camera is, as guards know it (e.g. Front Gate)")
    latitude: float = _opt(0.0, "for a maps link in alerts; 0 and 0 mean not given", min=-90.0, max=90.0)
    longitude: float = _opt(0.0, "for a maps link in alerts", min=-180.0, max=180.0)


@dataclass(frozen=True)
class RecognitionConfig:
    tolerance: float = _opt(0.56, "largest face distance that still counts as a match (lower is stricter; see README)", min=0.2, max=0.9)
    detection_model: str = _opt("hog", "face detector: hog (CPU) or cnn (needs dlib built with CUDA, e.g. on a Jetson)", choices=("hog", "cnn"))
    upsample: int = _opt(1, "detector upsampling on still images: 1 finds faces down to about 40 px", min=0, max=3)
    min_face_size: int = _opt(32, "faces smaller than this many pixels (box side) are counted but not identified", min=20, max=1000)
    enrol_min_face_size: int = _opt(60, "watchlist photos need a face at least this big (they set the reference for every match)", min=20, max=1000)
    max_detect_side: int = _opt(1024, "still images are shrunk to this longest side for detection (encoding uses full size)", min=320, max=8192)
    max_image_pixels: int = _opt(40_000_000, "photos with more pixels than this are refused (decompression bombs)", min=1_000_000, max=200_000_000)
    enrol_jitters: int = _opt(1, "re-samples per watchlist photo when encoding (higher: slightly more robust, slower enrolment)", min=1, max=20)


@dataclass(frozen=True)
class MaskConfig:
    enabled: bool = _opt(True, "tell masked from bare faces (analyze fills mask/mask_score; the daemon votes per face)")
    find_masked: str = _opt("always", "look for masked faces HOG scores just below its cut-off: off, stills (analyze) or always (also live frames)",
                            choices=("off", "stills", "always"))
    events: bool = _opt(True, "emit a no_mask event for each face whose vote says it wears no mask")
    hours: str = _opt("", "no_mask events only between these local times, e.g. \"08:00-18:00\" (empty: always)",
                      pattern=r"|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", pattern_help="must be HH:MM-HH:MM, e.g. 08:00-18:00")


@dataclass(frozen=True)
class PipelineConfig:
    detect_width: int = _opt(480, "frames are shrunk to this width for detection; the smallest face found is about 40 x frame width / detect_width px", min=160, max=3840)
    upsample: int = _opt(1, "detector upsampling on live frames (each step finds faces half as big, at about 4x the cost)", min=0, max=2)
    detect_every: float = _opt(1.0, "seconds between full-frame detections: a new face is found within this time (sooner after a scene cut)", min=0.0, max=60.0)
    track_every: float = _opt(0.1, "seconds between searches for each tracked face near its last position (cheap; also paces the identity vote)", min=0.0, max=10.0)
    vote_frames: int = _opt(3, "identity samples a face needs before its identity is decided by majority", min=1, max=15)
    unknown_margin: float = _opt(0.08, "a face must be this far beyond the tolerance to vote 'unknown'; closer it is uncertain (dlib trained same-person pairs under 0.56, others over 0.64)", min=0.0, max=0.5)
    recheck_seconds: float = _opt(3.0, "seconds between re-checks of a decided face's identity", min=0.1, max=600.0)
    forget_seconds: float = _opt(1.0, "a face not seen for this long has left the view", min=0.1, max=60.0)
    min_sharpness: float = _opt(10.0, "blurrier faces (variance of the Laplacian on a 64 px grey crop) are not used to decide identity", min=0.0, max=10000.0)


@dataclass(frozen=True)
class EventsConfig:
    max_people: int = _opt(2, "a crowd event fires when more people than this are in view", min=0, max=1000)
    crowd_min_seconds: float = _opt(3.0, "for at least this many seconds", min=0.0, max=3600.0)
    revisit_minutes: float = _opt(30.0, "an unknown visitor seen again within this time is the same visitor (no new capture)", min=0.0, max=10080.0)


@dataclass(frozen=True)
class CapturesConfig:
    retention_days: float = _opt(30.0, "captures older than this are deleted", min=0.01, max=3650.0)
    max_mb: float = _opt(1024.0, "the oldest captures are deleted to keep the folder under this size", min=1.0, max=1_000_000.0)


@dataclass(frozen=True)
class WatchlistConfig:
    watch: bool = _opt(True, "reload the watchlist when photos or Details.csv change while running")
    polling: bool = _opt(False, "poll for changes instead of inotify (network or USB filesystems)")
    poll_interval: float = _opt(5.0, "seconds between polls when polling = true", min=0.5, max=3600.0)
    debounce: float = _opt(2.0, "seconds of quiet after the last change before reloading", min=0.1, max=600.0)


EVENT_TYPES = ("unknown_face", "known_face", "crowd", "no_mask")
# Not every site requires masks: a route texts about bare faces only when it asks for no_mask.
DEFAULT_ROUTE_EVENTS = ("unknown_face", "known_face", "crowd")


@dataclass(frozen=True)
class RouteConfig:
    to: tuple[str, ...] = _opt((), "phone numbers in international form, e.g. [\"+15551230000\"]",
                               pattern=r"\+[1-9]\d{6,14}", pattern_help="must be a phone number in international form like +15551230000")
    events: tuple[str, ...] = _opt(DEFAULT_ROUTE_EVENTS, "event types sent on this route; add \"no_mask\" to text about bare faces", choices=EVENT_TYPES)
    categories: tuple[str, ...] = _opt((), "known faces only of these Details.csv categories, e.g. [\"wanted\"] (empty: any)")
    hours: str = _opt("", "only between these local times, e.g. \"08:00-18:00\" (empty: always)",
                      pattern=r"|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", pattern_help="must be HH:MM-HH:MM, e.g. 08:00-18:00")


@dataclass(frozen=True)
class AlertsConfig:
    quiet_categories: tuple[str, ...] = _opt((), "Details.csv categories that never alert, e.g. [\"staff\"]")
    cooldown_minutes: float = _opt(5.0, "at most one alert per person (or unknown visitor), location and event type in this time", min=0.0, max=1440.0)
    max_per_hour: int = _opt(20, "messages per recipient per hour; the rest are counted and mentioned in the next one", min=1, max=10000)
    mms: bool = _opt(False, "attach the capture image as MMS (US and Canada numbers only)")
    public_url: str = _opt("", "address recipients can reach the image server at, e.g. https://gate.example.net:8780 (empty: no image links)",
                           pattern=r"|https?://[^\s/]+(/\S*)?", pattern_help="must be an http:// or https:// address")
    listen: str = _opt("127.0.0.1:8780", "host:port of the built-in image server (0.0.0.0:8780 for LAN/VPN; empty: off)",
                       pattern=r"|[^\s:]*:\d{1,5}", pattern_help="must be host:port, e.g. 127.0.0.1:8780")
    link_hours: float = _opt(72.0, "image links expire after this many hours", min=0.1, max=8760.0)
    route: tuple[RouteConfig, ...] = _opt((), "who gets what: one [[alerts.route]] table per rule (see below)")


@dataclass(frozen=True)
class TwilioConfig:
    account_sid: str = _opt("", "Twilio account SID; better: $TWILIO_ACCOUNT_SID or credential twilio_account_sid")
    auth_token: str = _opt("", "Twilio auth token; better: $TWILIO_AUTH_TOKEN or credential twilio_auth_token")
    from_number: str = _opt("", "the Twilio number messages come from, e.g. +15551230000",
                            pattern=r"|\+[1-9]\d{6,14}", pattern_help="must be a phone number in international form like +15551230000")
    messaging_service_sid: str = _opt("", "or a Messaging Service SID (MG...) instead of from_number")
    api_url: str = _opt("https://api.twilio.com", "Twilio API address (an outbound proxy, or a local test server)",
                        pattern=r"https?://[^\s/]+/?", pattern_help="must be an http:// or https:// address without a path")
    timeout: float = _opt(10.0, "seconds before a request to Twilio is given up and retried", min=1.0, max=120.0)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = _opt("INFO", "DEBUG, INFO, WARNING or ERROR", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    location: LocationConfig = field(default_factory=LocationConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    captures: CapturesConfig = field(default_factory=CapturesConfig)
    watchlist: WatchlistConfig = field(default_factory=WatchlistConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: Path | None = None  # the file this came from, None for built-in defaults

    @property
    def twilio_ready(self) -> bool:
        """Whether messages can really be sent (otherwise alerts run dry)."""
        t = self.twilio
        return bool(t.account_sid and t.auth_token and (t.from_number or t.messaging_service_sid))


SECTIONS: dict[str, type] = {
    name: kind for name, kind in get_type_hints(Config).items() if name != "source"
}

# secret key -> (environment variable, credential file name)
SECRETS = {
    "account_sid": ("TWILIO_ACCOUNT_SID", "twilio_account_sid"),
    "auth_token": ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
}


def in_hours(hours: str, moment: datetime) -> bool:
    """Whether a local time falls in "HH:MM-HH:MM" (a window may pass midnight); empty is always."""
    if not hours:
        return True
    start, end = hours.split("-")
    now = moment.strftime("%H:%M")
    return start <= now < end if start <= end else now >= start or now < end


def find_config_file(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config file to use: --config, then $EDGEGUARD_CONFIG, then the default locations."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    for candidate in DEFAULT_LOCATIONS:
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read, validate and resolve the configuration (see the module docstring)."""
    source = find_config_file(path)
    raw = _read_toml(source) if source else {}
    where = str(source) if source else "built-in defaults"
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown section [{unknown[0]}] (known: {', '.join(SECTIONS)})")
    sections = {}
    for name, cls in SECTIONS.items():
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: '{name}' must be a [{name}] table")
        sections[name] = _build_section(cls, table, where, name)
    sections["paths"] = _resolve_paths(sections["paths"])
    sections["twilio"] = _resolve_secrets(sections["twilio"], source)
    config = Config(**sections, source=source)
    _check_together(config, where)
    return config


def _check_together(config: Config, where: str) -> None:
    """Rules that span keys: settings that only make sense with another one."""
    if config.alerts.public_url and not config.alerts.listen:
        raise ConfigError(f"{where}: [alerts] public_url is set but listen is empty: nothing would serve the image links")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None


def _build_section(cls: type, table: dict[str, Any], where: str, section: str | None) -> Any:
    """One section (or, with section None, one entry of an array of tables) from its TOML table."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{where}: [{section}]" if section else where
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{prefix} {unknown[0]}: unknown key (known: {', '.join(fields)})")
    values = {
        key: _check_value(value, hints[key], fields[key].metadata, f"{prefix} {key}")
        for key, value in table.items()
    }
    return cls(**values)


def _check_value(value: Any, kind: Any, limits: Any, where: str) -> Any:
    """Check one value against its declared type and limits; return it typed."""
    if get_origin(kind) is tuple:
        return _check_list(value, get_args(kind)[0], limits, where)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind in (str, Path):
        ok = isinstance(value, str)
    else:  # pragma: no cover - a new field type without a rule here is a bug
        raise TypeError(f"no validation rule for {kind!r}")
    if not ok:
        raise ConfigError(f"{where}: expected {_type_name(kind)}, got {type(value).__name__} {value!r}")
    if "choices" in limits and value not in limits["choices"]:
        raise ConfigError(f"{where}: must be one of {', '.join(map(repr, limits['choices']))}, got {value!r}")
    if "pattern" in limits and not re.fullmatch(limits["pattern"], value):
        raise ConfigError(f"{where}: {limits['pattern_help']}, got {value!r}")
    if kind is float and math.isnan(value):
        raise ConfigError(f"{where}: must be a number, got nan")
    if "min" in limits and value < limits["min"]:
        raise ConfigError(f"{where}: must be at least {limits['min']}, got {value!r}")
    if "max" in limits and value > limits["max"]:
        raise ConfigError(f"{where}: must be at most {limits['max']}, got {value!r}")
    return Path(value) if kind is Path else value


def _check_list(value: Any, item: Any, limits: Any, where: str) -> tuple[Any, ...]:
    """A TOML array of strings, or an array of tables ([[section.key]]) of a dataclass."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
    if dataclasses.is_dataclass(item):
        out = []
        for n, table in enumerate(value, start=1):
            if not isinstance(table, dict):
                raise ConfigError(f"{where} #{n}: expected a table")
            out.append(_build_section(item, table, f"{where} #{n}", None))
        return tuple(out)
    return tuple(_check_value(v, item, limits, f"{where}[{n}]") for n, v in enumerate(value))


def _type_name(kind: Any) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string", Path: "a path string"}[kind]


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
        _refuse_readable_secret(source)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    values = {}
    for key, (env_name, cred_name) in SECRETS.items():
        cred_file = Path(creds, cred_name) if creds else None
        credential = _read_credential(cred_file) if cred_file is not None else ""
        if credential:
            values[key] = credential
        elif os.environ.get(env_name, "").strip():
            values[key] = os.environ[env_name].strip()
        else:
            values[key] = getattr(twilio, key)
    return dataclasses.replace(twilio, **values)


def _read_credential(path: Path) -> str:
    """A systemd credential's value, or "" when there is none (missing or empty)."""
    if not path.is_file():
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read credential: {exc}") from None


def _refuse_readable_secret(source: Path) -> None:
    """A token in a file others can read is a leak waiting to happen: stop."""
    mode = source.stat().st_mode
    if mode & (stat.S_IRWXO):
        raise ConfigError(
            f"{source}: [twilio] auth_token: the file is readable by other users; "
            f"run 'chmod o-rwx {source}' or move the token to $TWILIO_AUTH_TOKEN or a systemd credential"
        )


def example_config() -> str:
    """The example config file: every key with its default and a one-line comment."""
    lines = [
        "# EdgeGuard configuration. Every key is shown with its default; delete what you",
        "# do not change. Unknown keys and wrong values stop the daemon with a message.",
        "# Location: --config PATH, else $EDGEGUARD_CONFIG, else ./edgeguard.toml,",
        "# else /etc/edgeguard/edgeguard.toml.",
    ]
    for name, cls in SECTIONS.items():
        lines += ["", f"[{name}]"]
        tables = []
        for f in dataclasses.fields(cls):
            item = _table_item(get_type_hints(cls)[f.name])
            if item is None:
                lines += [f"# {f.metadata['help']}", f"{f.name} = {_toml_value(f.default)}"]
            else:
                tables.append((f, item))
        for f, item in tables:
            lines += ["", f"# {f.metadata['help']}. For example:", f"# [[{name}.{f.name}]]"]
            for sub in dataclasses.fields(item):
                lines += [f"# # {sub.metadata['help']}", f"# {sub.name} = {_toml_value(sub.default)}"]
    return "\n".join(lines) + "\n"


def _table_item(kind: Any) -> type | None:
    """The dataclass of an array-of-tables field, or None for a plain value."""
    if get_origin(kind) is tuple and dataclasses.is_dataclass(get_args(kind)[0]):
        return get_args(kind)[0]
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, int):
        return f"{value:_}" if value >= 10_000 else str(value)
    return repr(value)
