"""Retention of the records: events (`[events] retention_days`), the outbox's finished messages (`[alerts]
outbox_retention_days`) and audit rows (`[privacy] audit_retention_days`), enforced by the daemon at start
and with the captures' retention (every 10 minutes); `edgeguard check` shows the limits and what is kept."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from ..alerts.outbox import Outbox
from ..config import Config
from ..store.audit import AuditLog
from ..store.event_log import EventLog

log = logging.getLogger(__name__)
DAY = 86400.0


def prune_records(config: Config, event_log: EventLog, outbox: Outbox, now: float | None = None) -> None:
    """Delete what is older than its limit; a log line says what went.  A store that cannot be written now (a
    full disk) is left for the next round, with the reason: retention never stops the daemon."""
    now = time.time() if now is None else now
    events = _pruned("events", lambda: event_log.prune(now - config.events.retention_days * DAY))
    messages = _pruned("outbox", lambda: outbox.prune(now - config.alerts.outbox_retention_days * DAY))
    audit_rows = 0
    if config.paths.audit_db.exists():
        audit_rows = _pruned("audit log", lambda: _prune_audit(config, now))
    if events or messages or audit_rows:
        log.info(
            "retention: %d event(s), %d message(s) and %d audit row(s) past their limits deleted",
            events,
            messages,
            audit_rows,
        )


def _prune_audit(config: Config, now: float) -> int:
    audit = AuditLog(config.paths.audit_db)
    try:
        return audit.prune(now - config.privacy.audit_retention_days * DAY)
    finally:
        audit.close()


def _pruned(what: str, prune: Callable[[], int]) -> int:
    try:
        return prune()
    except (sqlite3.Error, OSError) as exc:
        log.error("retention: the %s cannot be pruned now (%s); tried again at the next round", what, exc)
        return 0
