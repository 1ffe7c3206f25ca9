"""The unified social credit code (统一社会信用代码, GB 32100-2015).

18 characters: registration authority (1), organisation type (1), administrative
division (6 digits), the organisation code of GB 11714 (8 + its own check character)
and a final check character over the first 17. Both check characters are verified:
together they catch any single mistyped character and most swaps.
"""

from __future__ import annotations

import re

from market.common.text import fold_width

# GB 32100 uses 31 characters: digits and capitals without I, O, S, V, Z.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_USCC_SHAPE = re.compile(rf"^[{USCC_ALPHABET}]{{2}}\d{{6}}[{USCC_ALPHABET}]{{10}}$")


class InvalidCreditCode(ValueError):
    pass


def uscc_check_character(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def org_code_check_character(first8: str) -> str:
    """GB 11714: characters are worth 0-9 for digits and 10-35 for A-Z."""
    total = sum(int(ch, 36) * w for ch, w in zip(first8, _ORG_CODE_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def normalize_uscc(raw: str) -> str:
    """Return the canonical code or raise InvalidCreditCode saying what is wrong."""
    code = fold_width(raw).strip().upper().replace(" ", "").replace("-", "")
    if len(code) != 18:
        raise InvalidCreditCode(f"must be 18 characters, got {len(code)}")
    if not _USCC_SHAPE.match(code):
        raise InvalidCreditCode(
            "must be 2 code characters, a 6-digit division code and 10 code characters "
            "(digits and capitals except I, O, S, V, Z)"
        )
    org_code = code[8:17]
    if org_code_check_character(org_code[:8]) != org_code[8]:
        raise InvalidCreditCode("the organisation code (characters 9-17) fails its check")
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise InvalidCreditCode(f"check character should be {expected}, not {code[17]}")
    return code


def make_uscc(authority_and_type: str, division: str, org_code_body: str) -> str:
    """Build a valid code from its parts (demo data and tests)."""
    org_code = org_code_body + org_code_check_character(org_code_body)
    first17 = authority_and_type + division + org_code
    return first17 + uscc_check_character(first17)
