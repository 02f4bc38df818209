"""What kind of source a `source` string names, and the checks that can fail at once, before any retry."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import CameraConfig
from .jetson import check_jetson
from .picamera2 import check_picamera2
from .stream import URL_SCHEMES
from .usb import check_usb
from .video_file import check_video_file


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "usb", "stream", "picamera2", "jetson", "push", "file"
    target: str  # device, URL, path, or camera/sensor number as text ("" for push)


def parse_source(source: str) -> SourceSpec:
    text = source.strip()
    lower = text.lower()
    if text.isdigit() or text.startswith("/dev/"):
        return SourceSpec("usb", text)
    if lower == "push":
        return SourceSpec("push", "")
    scheme, sep, _ = lower.partition("://")
    if sep and scheme in URL_SCHEMES:
        return SourceSpec("stream", text)
    for kind, name in (("picamera2", "picamera2"), ("jetson", "jetson-csi")):
        if lower == name:
            return SourceSpec(kind, "0")
        if lower.startswith(name + ":") and lower[len(name) + 1 :].isdigit():
            return SourceSpec(kind, lower[len(name) + 1 :])
    return SourceSpec("file", text)


def check_source(spec: SourceSpec, cfg: CameraConfig) -> None:
    """Raise SourceError now for a source that no retry can fix."""
    if spec.kind == "file":
        check_video_file(spec.target)
    elif spec.kind == "usb":
        check_usb(cfg)
    elif spec.kind == "picamera2":
        check_picamera2()
    elif spec.kind == "jetson":
        check_jetson()
