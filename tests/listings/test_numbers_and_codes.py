"""Patent numbers and IPC codes, checked as pure functions (the API tests reuse them)."""

from __future__ import annotations

import pytest

from market.listings import ipc, patents


@pytest.mark.parametrize(
    "spelling",
    [
        "CN201610311380.X",
        "201610311380X",
        "201610311380.x",
        "ZL201610311380.X",
        "ZL 2016 1 0311380.X",
        "cn 201610311380.x",
        "ＣＮ２０１６１０３１１３８０．Ｘ",  # full width, as pasted from Word
    ],
)
def test_application_number_spellings_normalise_to_one_form(spelling: str) -> None:
    assert patents.normalize_application_number(spelling) == "CN201610311380.X"


@pytest.mark.parametrize(
    ("spelling", "canonical", "type_digit"),
    [
        ("2019201234565", "CN201920123456.5", "2"),  # utility model
        ("202030012345.5", "CN202030012345.5", "3"),  # design
        ("201880001234.4", "CN201880001234.4", "8"),  # PCT invention
        ("89100002.X", "CN89100002.X", "1"),  # 8-digit, 1989, invention, X check
        ("98123456.9", "CN98123456.9", "1"),
        ("93205123.5", "CN93205123.5", "2"),  # 8-digit utility model
    ],
)
def test_valid_numbers_and_their_type_digit(spelling: str, canonical: str, type_digit: str) -> None:
    number = patents.parse_application_number(spelling)
    assert number.canonical == canonical
    assert number.type_digit == type_digit


@pytest.mark.parametrize(
    ("spelling", "complaint"),
    [
        ("2016103113807", "expected X"),  # real digits, wrong check digit
        ("CN201610311381.X", "expected 4"),  # last digit mistyped: 120 + 5 = 125 ≡ 4
        ("98123456.3", "expected 9"),
        ("201610311380", "missing"),
        ("20161031138.X", "not a Chinese patent application number"),  # 11 digits
        ("CN20161031138A.X", "not a Chinese patent application number"),
        ("", "not a Chinese patent application number"),
    ],
)
def test_bad_application_numbers_say_why(spelling: str, complaint: str) -> None:
    with pytest.raises(patents.PatentNumberError, match=complaint):
        patents.parse_application_number(spelling)


@pytest.mark.parametrize(
    ("digits", "complaint"),
    [
        ("199910000001", "filing year"),  # 12 digits before 2003
        ("209910000001", "filing year"),  # the future
        ("201650000001", "type digit 5"),
        ("10100001", "1985-2003"),  # 8 digits from 2010
    ],
)
def test_numbers_with_impossible_year_or_type(digits: str, complaint: str) -> None:
    well_checked = f"{digits}.{patents.check_character(digits)}"
    with pytest.raises(patents.PatentNumberError, match=complaint):
        patents.parse_application_number(well_checked)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("CN106022747A", "CN106022747A"),
        ("cn 106022747 a", "CN106022747A"),
        ("106022747B", "CN106022747B"),
        ("CN206123456U", "CN206123456U"),
        ("CN1234567C", "CN1234567C"),
        ("CN306123456S", "CN306123456S"),
        ("CN106022747B1", "CN106022747B1"),
    ],
)
def test_publication_numbers(spelling: str, canonical: str) -> None:
    assert patents.normalize_publication_number(spelling) == canonical


@pytest.mark.parametrize("spelling", ["CN106022747", "CN106022747Z", "CN123456A", "US106022747A"])
def test_bad_publication_numbers(spelling: str) -> None:
    with pytest.raises(patents.PatentNumberError):
        patents.normalize_publication_number(spelling)


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("H01M10/052", "H01M10/052"),
        ("H01M 10/052", "H01M10/052"),
        ("h01m10/052", "H01M10/052"),
        ("Ｈ０１Ｍ　１０／０５２", "H01M10/052"),
        ("H01M010/052", "H01M10/052"),
        ("H01M", "H01M"),
        ("B22F3/00", "B22F3/00"),
    ],
)
def test_ipc_codes_normalise(spelling: str, canonical: str) -> None:
    assert ipc.normalize_ipc_code(spelling) == canonical


@pytest.mark.parametrize(
    ("spelling", "complaint"),
    [
        ("H01Z10/00", "subclass H01Z does not exist"),
        ("H01M99/00", "main group H01M99/00 does not exist"),
        ("X01M10/00", "not an IPC code"),
        ("H01M10", "not an IPC code"),
        ("H01M10/5", "not an IPC code"),
    ],
)
def test_bad_ipc_codes(spelling: str, complaint: str) -> None:
    with pytest.raises(ipc.IpcCodeError, match=complaint):
        ipc.normalize_ipc_code(spelling)


def test_ipc_table_is_loaded_once_and_cleaned() -> None:
    assert ipc.ipc_table() is ipc.ipc_table()
    subclass = ipc.ipc_table()["H01M"]
    assert subclass.level == "subclass"
    assert "〔" not in subclass.title_zh and subclass.title_zh.startswith("用于直接转变化学能")
