"""What an alert says: short, plain GSM-7 text with the event, the place, the time and the links.

Bodies are GSM-7 plain text (one emoji would make every segment 70 characters)
and carry no phone numbers or deposits: only a person's Name, Id and category.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from ..events.event import Event, EventType

# The GSM 03.38 basic character set: text made only of these fits 160 per SMS segment.
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def to_gsm7(text: str) -> str:
    """Text that stays in GSM-7: accents dropped where needed, anything else becomes '?'."""
    out = []
    for ch in text:
        if ch in GSM7:
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(c in GSM7 for c in base) else "?")
    return "".join(out)


def alert_body(event: Event, link: str | None) -> str:
    """The message body: type, who, where, local time, image link, maps link."""
    when = datetime.fromtimestamp(event.time).strftime("%H:%M:%S")
    # Only the words are made GSM-7: a link must reach the guard exactly as it is.
    parts = [to_gsm7(f"EdgeGuard ALERT {event.location}: {_what(event)} {when}")]
    if link:
        parts.append(link)
    if event.latitude is not None and event.longitude is not None:
        parts.append(f"map https://maps.google.com/?q={event.latitude:.5f},{event.longitude:.5f}")
    return " ".join(parts)


def trial_body(location: str, when: str) -> str:
    """The body of `edgeguard test-alert`'s message."""
    return to_gsm7(f"EdgeGuard TEST {location}: test alert {when}")


def _what(event: Event) -> str:
    if event.type == EventType.CAMERA_DOWN:
        state = event.extra.get("state", "no frames")
        return f"{event.subject()} DOWN ({state}), no frames for {_minutes(event)}"
    if event.type == EventType.CAMERA_UP:
        return f"{event.subject()} back up after {_minutes(event)}"
    if event.type == EventType.CROWD:
        return f"crowd of {event.subject()}"
    if event.type == EventType.NO_MASK:
        return f"no mask: {event.subject()}"
    if event.type == EventType.LOITERING:
        return f"loitering: {event.subject()} in view {event.extra.get('minutes', '?')} min"
    if event.type == EventType.RETURN_VISIT:
        earlier = ", ".join(
            datetime.fromtimestamp(t).strftime("%a %d %H:%M") for t in event.extra.get("visits", [])[:-1][-4:]
        )
        count = len(event.extra.get("visits", []))
        return f"return visit: {event.subject()}, visit {count} (before: {earlier})"
    if event.type == EventType.KNOWN_FACE and "match" in event.extra:
        return f"{event.subject()}, {event.extra['match']} match"
    return event.subject()


def _minutes(event: Event) -> str:
    """How long a camera had no frames, as "3 min" (or seconds below a minute)."""
    seconds = float(event.extra.get("seconds", 0))
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"
