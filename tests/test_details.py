"""Tests for edgeguard.watchlist.details: reading Details.csv as site staff really save it,
and upsert_person."""

import csv
import io

import pytest

from edgeguard.watchlist.details import Person, Problem, read_details, upsert_person

SEED_HEADER = "Id,Name,phone_number,initial_deposit"


def write(tmp_path, content, name="Details.csv"):
    path = tmp_path / name
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def problem_texts(problems):
    return [str(p) for p in problems]


def problems_on_line(problems, path, line):
    return [p for p in problems if p.where == f"{path} line {line}"]


# --- reading ----------------------------------------------------------------------------


def test_seed_header_loads_as_is(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Barack Obama,555-0100,100\n2,Joe Biden,555-0101,250\n")
    people, problems = read_details(path)
    assert problems == []
    assert set(people) == {"1", "2"}
    assert people["1"].name == "Barack Obama"
    assert people["2"].name == "Joe Biden"
    assert people["1"].category == ""
    assert people["1"].details["phone_number"] == "555-0100"
    assert people["2"].details["initial_deposit"] == "250"


def test_header_only_gives_no_people_and_no_problem(tmp_path):
    path = write(tmp_path, SEED_HEADER + "\n")
    assert read_details(path) == ({}, [])


def test_header_names_match_case_insensitively(tmp_path):
    path = write(tmp_path, " id , NAME ,Phone_Number,Initial_Deposit\n7, Ann Lee ,1,2\n")
    people, problems = read_details(path)
    assert problems == []
    assert people["7"].name == "Ann Lee"
    assert people["7"].details["phone_number"] == "1"


def test_category_column_is_read_lower_cased_and_extra_columns_kept(tmp_path):
    path = write(
        tmp_path,
        f"{SEED_HEADER},category,notes\n1,Barack Obama,555,100,VIP,tall\n2,Joe Biden,556,200,Banned,\n",
    )
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].category == "vip"
    assert people["2"].category == "banned"
    assert people["1"].details["notes"] == "tall"
    assert people["1"].details["category"] == "VIP"
    assert people["2"].details["notes"] == ""


def test_capitalised_category_header_is_read(tmp_path):
    # Excel users capitalise headers; upsert_person already treats "Category" as the category
    # column (it matches header names case-insensitively), so read_details must read it too.
    path = write(tmp_path, f"{SEED_HEADER},Category\n1,Barack Obama,555,100,VIP\n")
    people, _ = read_details(path)
    assert people["1"].category == "vip"


def test_utf8_bom_is_ignored(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + f"{SEED_HEADER}\n1,Jos\u00e9 \u00c1lvarez,555,10\n".encode())
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].name == "Jos\u00e9 \u00c1lvarez"
    assert "\ufeffId" not in people["1"].details
    assert people["1"].details["Id"] == "1"


def test_crlf_line_endings(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\r\n1,Ann,555,10\r\n2,Bob,556,20\r\n")
    people, problems = read_details(path)
    assert problems == []
    assert people["2"].name == "Bob"
    assert people["2"].details["initial_deposit"] == "20"


def test_blank_lines_are_skipped_and_line_numbers_count_physical_lines(tmp_path):
    text = f"\n{SEED_HEADER}\n\n1,Ann,555,10\n   \n\n2,Bob\n\n"
    path = write(tmp_path, text)
    people, problems = read_details(path)
    assert set(people) == {"1", "2"}
    # "2,Bob" is on physical line 7
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 7"


def test_row_with_missing_columns_is_kept_and_reported(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n2,Bob\n")
    people, problems = read_details(path)
    assert people["2"].name == "Bob"
    assert people["2"].details["phone_number"] == ""
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 3"
    assert "phone_number" in problems[0].reason
    assert "initial_deposit" in problems[0].reason
    assert "line 3" in str(problems[0])


def test_row_with_only_an_id_uses_the_id_as_name(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1\n")
    people, problems = read_details(path)
    assert people["1"].name == "1"
    assert problems_on_line(problems, path, 2)
    assert any("Name" in p.reason for p in problems)


def test_row_with_no_id_is_ignored_and_reported(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n,Ann,555,10\n2,Bob,556,20\n")
    people, problems = read_details(path)
    assert set(people) == {"2"}
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 2"
    assert "no Id" in problems[0].reason


@pytest.mark.parametrize("bad_id", ["../x", "a/b", ".hidden", "a b", "-x"])
def test_invalid_id_is_ignored_and_reported(tmp_path, bad_id):
    path = write(tmp_path, f"{SEED_HEADER}\n{bad_id},Ann,555,10\n2,Bob,556,20\n")
    people, problems = read_details(path)
    assert set(people) == {"2"}
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 2"
    assert "cannot be a folder name" in problems[0].reason
    assert (
        bad_id not in problems[0].reason.split("(")[0]
    )  # the value is not echoed (it may be a phone number)


def test_phone_number_pasted_into_the_id_column_is_not_echoed(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n+15551234567,Ann,555,10\n")
    _, problems = read_details(path)
    assert len(problems) == 1 and "5551234567" not in str(problems[0])


def test_duplicate_id_first_row_wins_and_the_later_line_is_named(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n2,Bob,556,20\n1,Impostor,999,0\n")
    people, problems = read_details(path)
    assert people["1"].name == "Ann"
    assert people["1"].details["phone_number"] == "555"
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 4"
    assert "duplicate Id 1" in problems[0].reason
    assert "line 2" in problems[0].reason


def test_extra_fields_beyond_header_are_reported(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10,surprise\n")
    people, problems = read_details(path)
    assert people["1"].name == "Ann"
    assert problems_on_line(problems, path, 2)


def test_cp1252_line_is_read_and_reported(tmp_path):
    data = (
        f"{SEED_HEADER}\n1,Ann,555,10\n".encode()
        + "2,Jos\u00e9 Pe\u00f1a,556,20\n".encode("cp1252")
        + "3,Zo\u00eb,557,30\n".encode("utf-8")
    )
    assert b"Jos\xe9" in data
    path = write(tmp_path, data)
    people, problems = read_details(path)
    assert people["2"].name == "Jos\u00e9 Pe\u00f1a"
    assert people["3"].name == "Zo\u00eb"  # the UTF-8 lines stay UTF-8
    assert people["1"].name == "Ann"
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 3"
    assert "Windows-1252" in problems[0].reason


def test_whole_file_in_cp1252_with_crlf(tmp_path):
    data = f"{SEED_HEADER}\r\n1,Fran\u00e7ois,555,10\r\n2,Ren\u00e9e,556,20\r\n".encode("cp1252")
    path = write(tmp_path, data)
    people, problems = read_details(path)
    assert people["1"].name == "Fran\u00e7ois"
    assert people["2"].name == "Ren\u00e9e"
    assert sorted(p.where for p in problems) == [f"{path} line 2", f"{path} line 3"]


def test_utf16_with_bom_comma_separated(tmp_path):
    text = f"{SEED_HEADER}\r\n1,Jos\u00e9,555,10\r\n2,\u674e\u96f7,556,20\r\n"
    path = write(tmp_path, text.encode("utf-16"))  # BOM + native order
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].name == "Jos\u00e9"
    assert people["2"].name == "\u674e\u96f7"


def test_utf16_big_endian_with_bom(tmp_path):
    text = f"{SEED_HEADER}\n1,Jos\u00e9,555,10\n"
    path = write(tmp_path, b"\xfe\xff" + text.encode("utf-16-be"))
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].name == "Jos\u00e9"


def test_excel_unicode_text_export_is_read(tmp_path):
    # Excel "Save As > Unicode Text (*.txt)" writes UTF-16LE with a BOM, TAB-separated, CRLF.
    text = "Id\tName\tphone_number\tinitial_deposit\r\n1\tJos\u00e9\t555\t10\r\n2\tAnn\t556\t20\r\n"
    path = write(tmp_path, b"\xff\xfe" + text.encode("utf-16-le"))
    people, problems = read_details(path)
    assert set(people) == {"1", "2"}
    assert people["1"].name == "Jos\u00e9"
    assert people["2"].details["initial_deposit"] == "20"


def test_semicolon_delimited_file(tmp_path):
    path = write(tmp_path, "Id;Name;phone_number;initial_deposit\n1;Smith, John;555;10,50\n2;Ann;556;20\n")
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].name == "Smith, John"
    assert people["1"].details["initial_deposit"] == "10,50"
    assert people["2"].name == "Ann"


def test_quoted_name_with_comma(tmp_path):
    path = write(tmp_path, f'{SEED_HEADER}\n1,"Obama, Barack",555,10\n')
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].name == "Obama, Barack"


@pytest.mark.parametrize(
    "header, lacking",
    [
        ("Name,phone_number,initial_deposit", "Id"),
        ("Id,phone_number,initial_deposit", "Name"),
        ("Identifier,Full name", "Id"),
    ],
)
def test_header_lacking_id_or_name_gives_no_people_and_a_problem(tmp_path, header, lacking):
    path = write(tmp_path, f"{header}\n1,Ann,555\n2,Bob,556\n")
    people, problems = read_details(path)
    assert people == {}
    assert len(problems) == 1
    assert problems[0].where == f"{path} line 1"
    assert lacking in problems[0].reason
    assert "no rows read" in problems[0].reason


def test_header_lacking_optional_columns_is_reported_but_rows_read(tmp_path):
    path = write(tmp_path, "Id,Name\n1,Ann\n")
    people, problems = read_details(path)
    assert people["1"].name == "Ann"
    assert len(problems) == 1
    assert "phone_number" in problems[0].reason


def test_missing_file_is_an_empty_watchlist_not_a_crash(tmp_path):
    """A new site has no Details.csv until its first enrolment (it is not tracked by git): nothing to report;
    a photo folder without a row is reported by the build (test_watchlist_build)."""
    path = tmp_path / "Details" / "Details.csv"
    assert read_details(path) == ({}, [])


def test_directory_instead_of_file_is_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "Details.csv"
    path.mkdir()
    people, problems = read_details(path)
    assert people == {}
    assert len(problems) == 1


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_empty_file_is_a_problem(tmp_path, content):
    path = write(tmp_path, content)
    people, problems = read_details(path)
    assert people == {}
    assert len(problems) == 1
    assert "empty file" in problems[0].reason


def test_repr_of_person_hides_phone_number_and_deposit(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER},category\n1,Ann Lee,+15551234567,98765,vip\n")
    people, _ = read_details(path)
    person = people["1"]
    text = repr(person) + str(person)
    assert "+15551234567" not in text
    assert "98765" not in text
    assert "Ann Lee" in text
    # the details are still there for whoever needs them
    assert person.details["phone_number"] == "+15551234567"


def test_problem_str_names_where_and_why():
    assert (
        str(Problem("/x/Details.csv line 3", "no Id; row ignored"))
        == "/x/Details.csv line 3: no Id; row ignored"
    )


def test_details_mapping_is_read_only(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n")
    people, _ = read_details(path)
    with pytest.raises(TypeError):
        people["1"].details["phone_number"] = "0"


# --- upsert_person ----------------------------------------------------------------------


def test_upsert_adds_row_and_keeps_other_rows_byte_identical(tmp_path):
    original = (
        f"{SEED_HEADER}\n"
        '1,"Obama, Barack",555-0100,100\n'
        "2,Jos\u00e9 \u00c1lvarez,555-0101,250\n"
        "3,Lin-Manuel Miranda,,\n"
    ).encode()
    path = write(tmp_path, original)
    upsert_person(path, "4", "Joe Biden", None)
    after = path.read_bytes()
    assert after.startswith(original)
    assert after[len(original) :] == b"4,Joe Biden,,\n"
    people, problems = read_details(path)
    assert problems == []
    assert people["4"].name == "Joe Biden"
    assert people["1"].name == "Obama, Barack"


def test_upsert_keeps_crlf_line_endings(tmp_path):
    original = f"{SEED_HEADER}\r\n1,Ann,555,10\r\n".encode()
    path = write(tmp_path, original)
    upsert_person(path, "2", "Bob", None)
    assert path.read_bytes() == original + b"2,Bob,,\r\n"


def test_upsert_keeps_utf8_bom(tmp_path):
    original = b"\xef\xbb\xbf" + f"{SEED_HEADER}\n1,Ann,555,10\n".encode()
    path = write(tmp_path, original)
    upsert_person(path, "2", "Zo\u00eb", None)
    after = path.read_bytes()
    assert after.startswith(b"\xef\xbb\xbf" + b"Id,")
    assert after.count(b"\xef\xbb\xbf") == 1
    assert after == original + "2,Zo\u00eb,,\n".encode("utf-8")
    people, problems = read_details(path)
    assert problems == []
    assert people["2"].name == "Zo\u00eb"


def test_upsert_does_not_add_bom_to_file_without_one(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n")
    upsert_person(path, "2", "Bob", None)
    assert path.read_bytes().startswith(b"Id,")


def test_upsert_keeps_semicolon_delimiter(tmp_path):
    original = "Id;Name;phone_number;initial_deposit\n1;Ann;555;10,50\n"
    path = write(tmp_path, original)
    upsert_person(path, "2", "Smith, John", None)
    assert path.read_text(encoding="utf-8") == original + "2;Smith, John;;\n"
    people, problems = read_details(path)
    assert problems == []
    assert people["2"].name == "Smith, John"
    assert people["1"].details["initial_deposit"] == "10,50"


def test_upsert_adds_category_column_when_needed(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n")
    upsert_person(path, "2", "Bob", "VIP")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0] == ["Id", "Name", "phone_number", "initial_deposit", "category"]
    assert rows[2] == ["2", "Bob", "", "", "VIP"]
    people, _ = read_details(path)
    assert people["2"].category == "vip"
    assert people["1"].category == ""
    assert people["1"].details["phone_number"] == "555"


def test_upsert_uses_existing_category_column(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER},category,notes\n1,Ann,555,10,,tall\n")
    upsert_person(path, "1", None, "banned")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert rows[0] == ["Id", "Name", "phone_number", "initial_deposit", "category", "notes"]
    assert rows[1] == ["1", "Ann", "555", "10", "banned", "tall"]


def test_upsert_without_category_does_not_add_the_column(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n")
    upsert_person(path, "2", "Bob", None)
    assert path.read_text(encoding="utf-8").splitlines()[0] == SEED_HEADER


def test_upsert_updates_existing_name_in_place(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n2,Bob,556,20\n3,Cy,557,30\n")
    upsert_person(path, "2", "Robert", None)
    assert path.read_text(encoding="utf-8") == f"{SEED_HEADER}\n1,Ann,555,10\n2,Robert,556,20\n3,Cy,557,30\n"
    people, problems = read_details(path)
    assert problems == []
    assert people["2"].name == "Robert"
    assert people["2"].details["phone_number"] == "556"


def test_upsert_with_no_name_keeps_the_existing_name(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER},category\n1,Ann,555,10,\n")
    upsert_person(path, "1", None, "vip")
    people, _ = read_details(path)
    assert people["1"].name == "Ann"
    assert people["1"].category == "vip"


def test_upsert_updates_existing_id_when_id_is_not_the_first_column(tmp_path):
    # read_details accepts the columns in any order; upsert_person must find the Id there too.
    path = write(tmp_path, "Name,Id,phone_number,initial_deposit\nAnn,1,555,10\n")
    upsert_person(path, "1", "Annie", None)
    people, problems = read_details(path)
    assert problems == []
    assert people["1"].name == "Annie"
    assert people["1"].details["phone_number"] == "555"
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2


def test_upsert_into_capitalised_category_column_is_read_back(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER},Category\n1,Ann,555,10,\n")
    upsert_person(path, "1", None, "VIP")
    assert path.read_text(encoding="utf-8").splitlines()[0] == f"{SEED_HEADER},Category"  # no second column
    people, _ = read_details(path)
    assert people["1"].category == "vip"


def test_upsert_creates_missing_file_with_header(tmp_path):
    path = tmp_path / "Details" / "Details.csv"
    upsert_person(path, "1", "Ann", None)
    assert path.read_text(encoding="utf-8") == f"{SEED_HEADER}\n1,Ann,,\n"
    people, problems = read_details(path)
    assert problems == []
    assert people == {"1": Person("1", "Ann")}


def test_upsert_creates_missing_file_with_category(tmp_path):
    path = tmp_path / "Details.csv"
    upsert_person(path, "1", "Ann", "VIP")
    assert path.read_text(encoding="utf-8") == f"{SEED_HEADER},category\n1,Ann,,,VIP\n"


def test_upsert_into_empty_file_writes_header(tmp_path):
    path = write(tmp_path, b"")
    upsert_person(path, "1", "Ann", None)
    assert path.read_text(encoding="utf-8") == f"{SEED_HEADER}\n1,Ann,,\n"


def test_upsert_leaves_no_temporary_file(tmp_path):
    path = write(tmp_path, f"{SEED_HEADER}\n1,Ann,555,10\n")
    upsert_person(path, "2", "Bob", None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Details.csv"]


def test_upsert_keeps_utf16_file_readable_and_its_bom(tmp_path):
    # The docstring promises the file keeps its byte-order mark; a UTF-16 file from Excel has one.
    text = f"{SEED_HEADER}\r\n1,Jos\u00e9,555,10\r\n"
    path = write(tmp_path, b"\xff\xfe" + text.encode("utf-16-le"))
    upsert_person(path, "2", "\u674e\u96f7", None)
    people, _ = read_details(path)
    assert people["1"].name == "Jos\u00e9"
    assert people["2"].name == "\u674e\u96f7"
    assert path.read_bytes().startswith(b"\xff\xfe")
