"""Values from files on their way out of the program: the one place control characters are made harmless.

A Name in Details.csv, a photo's file name or a camera's answer can hold a
newline, an ANSI escape or a bidirectional override.  Written as they are,
they forge lines in the journal ("ERROR edgeguard.service.daemon: ..."),
recolour a terminal, reorder a text message or break a page.  `printable`
escapes each such character visibly (a newline becomes \\x0a), so that nothing
is lost and nothing can pretend to be something else.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, line and paragraph separators, bidirectional marks and overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with every control character escaped as \\xNN or \\uNNNN."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
