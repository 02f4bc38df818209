"""Logging to stderr, one line per record, for journald or a terminal."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The twilio client logs each request, recipient number and body included, at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
