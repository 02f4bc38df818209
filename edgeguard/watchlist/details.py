"""Reading `Details/Details.csv`: who each watchlist Id is.

Site staff edit this file in Excel, LibreOffice or a text editor, so it may
come with a byte-order mark, Windows-1252 or UTF-16 text, semicolons, blank
lines, short rows and duplicate Ids.  Each of those is reported with its line
number; the usable rows are kept.

The file is read record by record, each starting on its own line, so one bad
record cannot take the rest with it: a line longer than MAX_LINE_CHARS or a
field longer than MAX_FIELD_CHARS is reported and skipped; a quote that opens
a field and does not close within MAX_RECORD_LINES lines is reported at the
line where it starts, and reading goes on at the next line.  Names and
categories have their control characters escaped (edgeguard.common.text): a
Name holding a newline cannot forge a log line or a text message.  The file is
never read through a symbolic link.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..common.files import UnsafeFile, read_regular, write_private
from ..common.text import printable

COLUMNS = ("Id", "Name", "phone_number", "initial_deposit")
OPTIONAL = ("category",)
REQUIRED = ("Id", "Name")
VALID_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Limits generous for any real watchlist row; beyond them a row is reported and skipped, not read.
MAX_LINE_CHARS = 16 * 1024
MAX_FIELD_CHARS = 4096
MAX_RECORD_LINES = 10  # a quoted field may hold line breaks, but not this many


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
    version: str = field(
        default="", compare=False
    )  # what the file was (a photo's digest): a new version is a new problem

    def __str__(self) -> str:
        return printable(f"{self.where}: {self.reason}")

    @property
    def key(self) -> str:
        """The same problem of the same version of the same file has the same key."""
        return f"{self}|{self.version}"


@dataclass(frozen=True)
class Record:
    """One CSV record: the line it starts on, its fields (None when it cannot be read), its raw lines."""

    line: int
    fields: list[str] | None
    raw: list[str]


def read_details(path: Path) -> tuple[dict[str, Person], list[Problem]]:
    """The people in Details.csv by Id, and every problem found on the way.

    A missing file is no problem: a new site has none until `edgeguard enroll` (or the dashboard) writes
    its first row, and each photo folder without a row is reported by the watchlist build."""
    problems: list[Problem] = []
    try:
        data = read_regular(path)
    except FileNotFoundError:
        return {}, []
    except UnsafeFile as exc:
        return {}, [Problem(str(path), exc.strerror)]
    except OSError as exc:
        return {}, [Problem(str(path), f"cannot read: {exc.strerror or exc}")]
    text, _ = _decode(data, path, problems)
    records = [r for r in split_records(text, _delimiter(text), path, problems) if r.fields is not None]
    header_at = next((i for i, r in enumerate(records) if _filled(r.fields)), None)
    header = _read_header(records[header_at], path, problems) if header_at is not None else None
    if header_at is None:
        problems.append(Problem(str(path), f"empty file: expected the header {','.join(COLUMNS)}"))
    if header is None:
        return {}, problems
    people: dict[str, Person] = {}
    first_line: dict[str, int] = {}
    for record in records[header_at + 1 :]:
        where = f"{path} line {record.line}"
        if not _filled(record.fields):
            continue
        person = _parse_row(record.fields, header, where, problems)
        if person is None:
            continue
        if person.id in people:
            problems.append(
                Problem(
                    where,
                    f"duplicate Id {person.id} (first on line {first_line[person.id]}); this row is ignored",
                )
            )
            continue
        people[person.id] = person
        first_line[person.id] = record.line
    return people, problems


def split_records(text: str, delimiter: str, path: Path, problems: list[Problem]) -> Iterator[Record]:
    """The records of a CSV text, each starting on its own line; unreadable ones have fields None
    (and a problem naming their line), so that the rest is still read."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        where = f"{path} line {i + 1}"
        if len(lines[i]) > MAX_LINE_CHARS:
            problems.append(
                Problem(where, f"{len(lines[i]):,} characters, more than {MAX_LINE_CHARS:,}: line ignored")
            )
            yield Record(i + 1, None, lines[i : i + 1])
            i += 1
            continue
        fields, used, problem = _parse_record(lines, i, delimiter)
        if problem:
            problems.append(Problem(where, problem))
        yield Record(i + 1, fields, lines[i : i + used])
        i += used


def _parse_record(lines: list[str], start: int, delimiter: str) -> tuple[list[str] | None, int, str]:
    """(fields or None, lines used, problem) for the record starting at lines[start]."""
    window = [line + "\n" for line in lines[start : start + MAX_RECORD_LINES]]
    reader = csv.reader(window, delimiter=delimiter, strict=True)
    try:
        fields = next(reader)
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            return (
                None,
                1,
                (
                    "a quote opens a field here and does not close within "
                    f"{MAX_RECORD_LINES} lines: line ignored, reading goes on at the next line"
                ),
            )
        if "field larger than field limit" in str(exc):
            return None, 1, f"a field longer than {MAX_FIELD_CHARS:,} characters: line ignored"
        fields = next(csv.reader(window[:1], delimiter=delimiter))  # read as leniently as a spreadsheet would
        return _checked(fields, 1)
    return _checked(fields, reader.line_num)


def _checked(fields: list[str], used: int) -> tuple[list[str] | None, int, str]:
    longest = max((len(f) for f in fields), default=0)
    if longest > MAX_FIELD_CHARS:
        return None, used, f"a field of {longest:,} characters, more than {MAX_FIELD_CHARS:,}: row ignored"
    return fields, used, ""


def _filled(fields: list[str] | None) -> bool:
    return bool(fields) and any(cell.strip() for cell in fields)


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
            problems.append(
                Problem(
                    f"{path} line {number}",
                    "not UTF-8; read as Windows-1252 (save the file as UTF-8 to silence this)",
                )
            )
    return "\n".join(lines), codec


def _read_header(record: Record, path: Path, problems: list[Problem]) -> list[str] | None:
    """Column names from the first non-blank record, matched to the known ones case-insensitively."""
    assert record.fields is not None
    canonical = {c.lower(): c for c in COLUMNS + OPTIONAL}
    header = [canonical.get(cell.strip().lower(), cell.strip()) for cell in record.fields]
    where = f"{path} line {record.line}"
    missing = [c for c in COLUMNS if c not in header]
    if any(c in missing for c in REQUIRED):
        problems.append(
            Problem(where, f"header lacks {', '.join(missing)}: expected {','.join(COLUMNS)}; no rows read")
        )
        return None
    if missing:
        problems.append(Problem(where, f"header lacks {', '.join(missing)} (expected {','.join(COLUMNS)})"))
    return header


def _parse_row(row: list[str], header: list[str], where: str, problems: list[Problem]) -> Person | None:
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        problems.append(
            Problem(where, f"{len(row)} fields but the header has {len(header)}; the extra ones are ignored")
        )
    values = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
    short = [name for i, name in enumerate(header) if i >= len(row) and name in COLUMNS]
    person_id = values["Id"]
    if not person_id:
        problems.append(Problem(where, "no Id; row ignored"))
        return None
    if not VALID_ID.match(person_id):
        # The value is not repeated: a phone number pasted into the wrong column must not reach the logs.
        problems.append(
            Problem(where, "the Id cannot be a folder name (letters, digits, _ . - only); row ignored")
        )
        return None
    if short:
        problems.append(Problem(where, f"missing {', '.join(short)}"))
    name = printable(values["Name"])
    if not name:
        problems.append(Problem(where, f"Id {person_id} has no Name; the Id is used as the name"))
        name = person_id
    category = printable(values.get("category", "").lower())
    return Person(person_id, name, category, MappingProxyType(values))


def upsert_person(
    path: Path,
    person_id: str,
    name: str | None,
    category: str | None,
    phone: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Add a row for `person_id`, or update its Name/category/phone_number (and the columns of `extra`),
    keeping every other row as it is.

    The file keeps its delimiter, encoding and byte-order mark (lines that were
    not UTF-8 are written back as UTF-8), and records that cannot be read are
    written back exactly as they were; a `category` column is added when a
    category is given and the header has none.  ValueError if the file has no
    header line to add to.
    """
    data = read_regular(path) if path.exists() else b""
    text, codec = _decode(data, path, []) if data.strip() else (",".join(COLUMNS) + "\n", "utf-8")
    delimiter = _delimiter(text)
    records = list(split_records(text, delimiter, path, []))
    header_at = next((i for i, r in enumerate(records) if _filled(r.fields)), None)
    if header_at is None:
        raise ValueError(f"{path} has no header line that can be read (expected {','.join(COLUMNS)})")
    header = records[header_at].fields
    assert header is not None
    lowered = [h.strip().lower() for h in header]
    wanted = (["category"] if category else []) + list(extra or {})
    missing = [c for c in wanted if c not in lowered]
    header.extend(missing)
    lowered.extend(missing)
    for other in records[header_at + 1 :] if missing else []:
        if _filled(other.fields):
            other.fields.extend([""] * (len(header) - len(other.fields)))
    column = {h: i for i, h in enumerate(lowered)}
    existing = next(
        (
            r.fields
            for r in records[header_at + 1 :]
            if r.fields and len(r.fields) > column["id"] and r.fields[column["id"]].strip() == person_id
        ),
        None,
    )
    row = existing if existing is not None else []
    row += [""] * (len(header) - len(row))
    row[column["id"]] = person_id
    if name:
        row[column["name"]] = name
    if category:
        row[column["category"]] = category
    if phone is not None and "phone_number" in column:
        row[column["phone_number"]] = phone
    for key, value in (extra or {}).items():
        row[column[key]] = value
    if existing is None:
        while records and records[-1].fields is not None and not _filled(records[-1].fields):
            records.pop()
        records.append(Record(0, row, []))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, _csv_text(records, delimiter, "\r\n" if "\r\n" in text else "\n").encode(codec))


def remove_person(path: Path, person_id: str) -> bool:
    """Delete the row of `person_id`, keeping every other row as it is; False if there was none."""
    data = read_regular(path)
    text, codec = _decode(data, path, [])
    delimiter = _delimiter(text)
    records = list(split_records(text, delimiter, path, []))
    header_at = next((i for i, r in enumerate(records) if _filled(r.fields)), None)
    if header_at is None:
        return False
    lowered = [h.strip().lower() for h in records[header_at].fields or []]
    at = lowered.index("id") if "id" in lowered else 0
    kept = [
        r
        for i, r in enumerate(records)
        if i <= header_at or not (r.fields and len(r.fields) > at and r.fields[at].strip() == person_id)
    ]
    if len(kept) == len(records):
        return False
    write_private(path, _csv_text(kept, delimiter, "\r\n" if "\r\n" in text else "\n").encode(codec))
    return True


def _csv_text(records: list[Record], delimiter: str, newline: str) -> str:
    """Records back as CSV text: readable ones written anew, unreadable ones exactly as they were."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    for record in records:
        if record.fields is None:
            out.write("".join(line + "\n" for line in record.raw))
        else:
            writer.writerow(record.fields)
    return out.getvalue()
