"""Chinese patent application and publication numbers.

Application numbers (申请号) since 1 October 2003 have 12 digits: the year (4), the
patent type (1), a serial number (7), then a check character after a dot. Older ones
have 8 digits: the year (2), the type (1), a serial (5), then the check. The check is
sum(digit × weight) mod 11 with weights 2,3,4,5,6,7,8,9,2,3,4,5 (2..9 for the 8-digit
form); a remainder of 10 is written "X". E.g. CN201610311380.X: the weighted sum is
120, 120 mod 11 = 10.

People write them as CN201610311380.X, 201610311380X, ZL 2016 1 0311380.X (ZL marks
a granted patent's number, which is its application number), with full-width digits
from Word, and so on; we store the one spelling "CN201610311380.X".

Type digit: 1 invention, 2 utility model, 3 design, 8 invention and 9 utility model
entering the Chinese phase from a PCT application.

Publication numbers (公开/公告号): CN, 7 to 9 digits, a kind code (A application
published, B granted invention, C granted invention before 2010, U utility model, Y
utility model before 2010, S design) with an optional digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from market.common.text import fold_width
from market.listings.models import IpForm

_TWELVE_DIGIT_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_EIGHT_DIGIT_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9)
_APPLICATION_SHAPE = re.compile(r"^(?:CN|ZL)?(?P<body>\d{8}|\d{12})\.?(?P<check>[0-9X]?)$")
_PUBLICATION_SHAPE = re.compile(r"^(?:CN)?(?P<serial>\d{7,9})(?P<kind>[ABCUYS])(?P<variant>\d?)$")
FIRST_TWELVE_DIGIT_YEAR = 2003  # the 12-digit numbering started on 1 October 2003
FIRST_PATENT_YEAR = 1985  # China's Patent Law took effect on 1 April 1985

TYPE_NAMES = {
    "1": "invention (发明)",
    "2": "utility model (实用新型)",
    "3": "design (外观设计)",
    "8": "PCT invention (PCT发明)",
    "9": "PCT utility model (PCT实用新型)",
}
# Which type digits and publication kind codes each IP form may carry.
TYPE_DIGITS_BY_FORM = {
    IpForm.INVENTION_PATENT: frozenset("18"),
    IpForm.UTILITY_MODEL: frozenset("29"),
    IpForm.DESIGN_PATENT: frozenset("3"),
}
KIND_CODES_BY_FORM = {
    IpForm.INVENTION_PATENT: frozenset("ABC"),
    IpForm.UTILITY_MODEL: frozenset("UY"),
    IpForm.DESIGN_PATENT: frozenset("S"),
}


class PatentNumberError(ValueError):
    """The message says what is wrong, for the client."""


@dataclass(frozen=True)
class ApplicationNumber:
    digits: str  # 8 or 12, without the check character
    check: str

    @property
    def type_digit(self) -> str:
        return self.digits[4] if len(self.digits) == 12 else self.digits[2]

    @property
    def canonical(self) -> str:
        return f"CN{self.digits}.{self.check}"


def check_character(digits: str) -> str:
    """The check character of an 8- or 12-digit application number."""
    weights = _TWELVE_DIGIT_WEIGHTS if len(digits) == 12 else _EIGHT_DIGIT_WEIGHTS
    remainder = sum(int(digit) * weight for digit, weight in zip(digits, weights, strict=True)) % 11
    return "X" if remainder == 10 else str(remainder)


def _compact(raw: str) -> str:
    return re.sub(r"[\s\-]+", "", fold_width(raw)).upper()


def parse_application_number(raw: str, *, today: date | None = None) -> ApplicationNumber:
    """Parse and verify an application number, or raise PatentNumberError."""
    match = _APPLICATION_SHAPE.match(_compact(raw))
    if match is None:
        raise PatentNumberError(
            f"{raw!r} is not a Chinese patent application number; expected 12 digits "
            "(8 before 2003) and a check character, e.g. CN201610311380.X"
        )
    digits, check = match["body"], match["check"]
    expected = check_character(digits)
    if not check:
        raise PatentNumberError(
            f"the check character is missing: {digits} should end in .{expected}"
        )
    if check != expected:
        raise PatentNumberError(
            f"check character {check} does not match the digits {digits} (expected "
            f"{expected}); one of the digits or the check character is mistyped"
        )
    _check_year(digits, today or date.today())
    number = ApplicationNumber(digits, check)
    if number.type_digit not in TYPE_NAMES:
        raise PatentNumberError(
            f"patent type digit {number.type_digit} is unknown (1 invention, 2 utility "
            "model, 3 design, 8/9 PCT)"
        )
    return number


def _check_year(digits: str, today: date) -> None:
    if len(digits) == 12:
        year = int(digits[:4])
        if not FIRST_TWELVE_DIGIT_YEAR <= year <= today.year:
            raise PatentNumberError(
                f"a 12-digit application number starts with its filing year "
                f"({FIRST_TWELVE_DIGIT_YEAR}-{today.year}), not {year}"
            )
        return
    two_digit_year = int(digits[:2])
    year = 1900 + two_digit_year if two_digit_year >= 85 else 2000 + two_digit_year
    if not FIRST_PATENT_YEAR <= year <= FIRST_TWELVE_DIGIT_YEAR:
        raise PatentNumberError(
            f"an 8-digit application number is from 1985-2003; year {two_digit_year:02d} "
            "does not fit (numbers filed since October 2003 have 12 digits)"
        )


def normalize_application_number(raw: str) -> str:
    return parse_application_number(raw).canonical


def form_mismatch(canonical_number: str, ip_form: IpForm) -> str | None:
    """Why the number's type digit contradicts the IP form, or None when they agree."""
    allowed = TYPE_DIGITS_BY_FORM.get(ip_form)
    if allowed is None:
        return None
    type_digit = parse_application_number(canonical_number).type_digit
    if type_digit in allowed:
        return None
    expected = " or ".join(sorted(allowed))
    return (
        f"the application number's type digit is {type_digit}, a "
        f"{TYPE_NAMES[type_digit]} application, but ip_form is {ip_form.value} "
        f"(which has type digit {expected})"
    )


def normalize_publication_number(raw: str) -> str:
    """Return "CN106022747A" or raise PatentNumberError."""
    match = _PUBLICATION_SHAPE.match(_compact(raw))
    if match is None:
        raise PatentNumberError(
            f"{raw!r} is not a Chinese publication number; expected CN, 7-9 digits and "
            "a kind code (A, B, C, U, Y or S), e.g. CN106022747A"
        )
    return f"CN{match['serial']}{match['kind']}{match['variant']}"


def publication_form_mismatch(canonical_number: str, ip_form: IpForm) -> str | None:
    """Why the publication's kind code contradicts the IP form, or None."""
    allowed = KIND_CODES_BY_FORM.get(ip_form)
    match = _PUBLICATION_SHAPE.match(canonical_number)
    if allowed is None or match is None or match["kind"] in allowed:
        return None
    return (
        f"kind code {match['kind']} does not belong to a {ip_form.value} "
        f"(expected {', '.join(sorted(allowed))})"
    )
