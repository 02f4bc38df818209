"""Logging to stderr, one line per record, for journald or a terminal."""

from __future__ import annotations

import logging
import sys

import cv2


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The twilio client logs each request, recipient number and body included, at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    # OpenCV's own warnings repeat on every reconnect attempt; capture.py logs each state change once.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
