"""Logging to stderr, one line per record, for journald or a terminal.

journald stamps each line itself; anywhere else (a terminal, a file, a pipe)
each line starts with the local time, so a reader can tell when it happened.
"""

from __future__ import annotations

import logging
import os
import sys

import cv2

from ..common.text import printable


class OneLine(logging.Filter):
    """Escapes control characters in each message, so that no value from a file (a Name with a
    newline, a photo's file name) can forge a second log line or send escapes to a terminal.
    Tracebacks are added after this, by the formatter, and keep their lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


def to_journal(stream=None) -> bool:
    """Whether `stream` (default stderr) goes to journald, as $JOURNAL_STREAM ("dev:inode") says."""
    stream = sys.stderr if stream is None else stream
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return os.environ.get("JOURNAL_STREAM", "") == f"{info.st_dev}:{info.st_ino}"


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    stamp = "" if to_journal() else "%(asctime)s "
    handler.setFormatter(
        logging.Formatter(stamp + "%(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    handler.addFilter(OneLine())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The twilio client logs each request, recipient number and body included, at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    # OpenCV's own warnings repeat on every reconnect attempt; capture.py logs each state change once.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
