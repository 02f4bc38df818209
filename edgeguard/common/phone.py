"""Phone numbers: the one pattern they are checked against, and masking them for logs."""

from __future__ import annotations

import re

# E.164: a plus, a country code that does not start with 0, 7 to 15 digits in all.
E164 = r"\+[1-9]\d{6,14}"
E164_HELP = "must be a phone number in international form like +15551230000"
# Anything in free text (an error message from Twilio) that may be a number, spaced or not.
PHONE_LIKE = re.compile(r"\+?\d[\d \-().]{5,}\d")


def mask_number(number: str) -> str:
    """A phone number for logs and pages: only the last 3 digits shown."""
    return "*" * max(0, len(number) - 3) + number[-3:]


def mask_numbers(text: str) -> str:
    """`text` with anything that looks like a phone number masked
    (Twilio's errors often quote the recipient)."""
    return PHONE_LIKE.sub(lambda m: mask_number(re.sub(r"\D", "", m.group(0))), text)
