"""Reading `Details/Details.csv`: who each watchlist Id is.

Site staff edit this file in Excel, LibreOffice or a text editor, so it may
come with a byte-order mark, Windows-1252 or UTF-16 text, semicolons, blank
lines, short rows and duplicate Ids.  Each of those is reported with its line
number; the usable rows are kept.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from ..common.files import write_private

COLUMNS = ("Id", "Name", "phone_number", "initial_deposit")
OPTIONAL = ("category",)
REQUIRED = ("Id", "Name")
VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Person:
    """One watchlist entry.  `details` holds the whole CSV row and is never logged."""

    id: str
    name: str
    category: str = ""
    details: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Problem:
    """Something in the site folders that could not be used, and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def read_details(path: Path) -> tuple[dict[str, Person], list[Problem]]:
    """The people in Details.csv by Id, and every problem found on the way."""
    problems: list[Problem] = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, [Problem(str(path), "file not found: photos are used with their folder name as the name")]
    except OSError as exc:
        return {}, [Problem(str(path), f"cannot read: {exc.strerror or exc}")]
    text, _ = _decode(data, path, problems)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    header = _read_header(reader, path, problems)
    if header is None:
        return {}, problems
    people: dict[str, Person] = {}
    first_line: dict[str, int] = {}
    for row in reader:
        where = f"{path} line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        person = _parse_row(row, header, where, problems)
        if person is None:
            continue
        if person.id in people:
            problems.append(Problem(where, f"duplicate Id {person.id} (first on line {first_line[person.id]}); this row is ignored"))
            continue
        people[person.id] = person
        first_line[person.id] = reader.line_num
    return people, problems


def _delimiter(text: str) -> str:
    """Comma, or the semicolon or tab that some Excel locales and exports use."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return max(",;\t", key=first.count) if any(c in first for c in ",;\t") else ","


def _decode(data: bytes, path: Path, problems: list[Problem]) -> tuple[str, str]:
    """Text and the codec to write it back with: UTF-8 (with or without BOM) or UTF-16;
    lines that are not UTF-8 are read as Windows-1252 and reported."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            problems.append(Problem(str(path), "UTF-16 text is damaged; read as far as possible"))
            return data.decode("utf-16", errors="replace"), "utf-16"
    codec = "utf-8"
    if data.startswith(b"\xef\xbb\xbf"):
        data, codec = data[3:], "utf-8-sig"
    try:
        return data.decode("utf-8"), codec
    except UnicodeDecodeError:
        pass
    lines = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("cp1252", errors="replace"))
            problems.append(Problem(f"{path} line {number}", "not UTF-8; read as Windows-1252 (save the file as UTF-8 to silence this)"))
    return "\n".join(lines), codec


def _read_header(reader, path: Path, problems: list[Problem]) -> list[str] | None:
    """Column names from the first non-blank line, matched to the known ones case-insensitively."""
    for row in reader:
        if any(cell.strip() for cell in row):
            break
    else:
        problems.append(Problem(str(path), f"empty file: expected the header {','.join(COLUMNS)}"))
        return None
    canonical = {c.lower(): c for c in COLUMNS + OPTIONAL}
    header = [canonical.get(cell.strip().lower(), cell.strip()) for cell in row]
    where = f"{path} line {reader.line_num}"
    missing = [c for c in COLUMNS if c not in header]
    if any(c in missing for c in REQUIRED):
        problems.append(Problem(where, f"header lacks {', '.join(missing)}: expected {','.join(COLUMNS)}; no rows read"))
        return None
    if missing:
        problems.append(Problem(where, f"header lacks {', '.join(missing)} (expected {','.join(COLUMNS)})"))
    return header


def _parse_row(row: list[str], header: list[str], where: str, problems: list[Problem]) -> Person | None:
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
        problems.append(Problem(where, f"{len(row)} fields but the header has {len(header)}; the extra ones are ignored"))
    values = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
    short = [name for i, name in enumerate(header) if i >= len(row) and name in COLUMNS]
    person_id = values["Id"]
    if not person_id:
        problems.append(Problem(where, "no Id; row ignored"))
        return None
    if not VALID_ID.match(person_id):
        # The value is not repeated: a phone number pasted into the wrong column must not reach the logs.
        problems.append(Problem(where, "the Id cannot be a folder name (letters, digits, _ . - only); row ignored"))
        return None
    if short:
        problems.append(Problem(where, f"missing {', '.join(short)}"))
    name = values["Name"]
    if not name:
        problems.append(Problem(where, f"Id {person_id} has no Name; the Id is used as the name"))
        name = person_id
    category = values.get("category", "").lower()
    return Person(person_id, name, category, MappingProxyType(values))


def upsert_person(path: Path, person_id: str, name: str | None, category: str | None) -> None:
    """Add a row for `person_id`, or update its Name/category, keeping every other row as it is.

    The file keeps its delimiter, encoding and byte-order mark (lines that were
    not UTF-8 are written back as UTF-8); a `category` column is added when a
    category is given and the header has none.
    """
    data = path.read_bytes() if path.exists() else b""
    text, codec = _decode(data, path, []) if data.strip() else (",".join(COLUMNS) + "\n", "utf-8")
    delimiter = _delimiter(text)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header_at = next(i for i, row in enumerate(rows) if any(c.strip() for c in row))
    header = rows[header_at]
    lowered = [h.strip().lower() for h in header]
    if category and "category" not in lowered:
        header.append("category")
        lowered.append("category")
        for other in rows[header_at + 1:]:
            if any(c.strip() for c in other):
                other += [""] * (len(header) - len(other))
    column = {h: i for i, h in enumerate(lowered)}
    existing = next((r for r in rows[header_at + 1:]
                     if len(r) > column["id"] and r[column["id"]].strip() == person_id), None)
    row = existing if existing is not None else []
    row += [""] * (len(header) - len(row))
    row[column["id"]] = person_id
    if name:
        row[column["name"]] = name
    if category:
        row[column["category"]] = category
    if existing is None:
        while rows and not any(c.strip() for c in rows[-1]):
            rows.pop()
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if "\r\n" in text else "\n")
    writer.writerows(rows)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, out.getvalue().encode(codec))  # phone numbers and deposits: never world-readable
