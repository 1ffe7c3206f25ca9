"""Normalisation of user-entered Chinese text.

People paste text from Word, PDFs and IMEs: full-width Latin letters and digits
(ＰＬＣ１２３), ideographic spaces, stray control characters and runs of whitespace.
We fold those to their ordinary forms so that search, duplicate detection and the
patent-number checks see one spelling. Chinese punctuation (，。：；) is kept: it is
correct in Chinese text, and NFKC would turn it into ASCII.
"""

from __future__ import annotations

import re
import unicodedata

_FULL_WIDTH_ASCII_OFFSET = 0xFEE0  # U+FF01..U+FF5E map to U+0021..U+007E
_FOLDED_FULL_WIDTH = {
    code: code - _FULL_WIDTH_ASCII_OFFSET
    for code in range(0xFF01, 0xFF5F)
    # keep full-width punctuation that is idiomatic in Chinese text
    if chr(code) not in "，。：；！？（）"
}
_FOLDED_FULL_WIDTH[0x3000] = 0x20  # ideographic space
_CONTROL_CHARACTERS = re.compile(
    r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200d\ufeff]"
)
_HORIZONTAL_SPACE_RUNS = re.compile(r"[ \t]+")
_BLANK_LINE_RUNS = re.compile(r"\n{3,}")


def fold_width(text: str) -> str:
    """Full-width ASCII and the ideographic space to their half-width forms."""
    return text.translate(_FOLDED_FULL_WIDTH)


def normalize_user_text(text: str, *, multiline: bool = False) -> str:
    """The canonical form of a free-text field: NFC, half-width, single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = fold_width(text)
    text = _CONTROL_CHARACTERS.sub("", text)
    text = strip_bidi_controls(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if multiline:
        lines = [_HORIZONTAL_SPACE_RUNS.sub(" ", line).strip() for line in text.split("\n")]
        return _BLANK_LINE_RUNS.sub("\n\n", "\n".join(lines)).strip()
    return _HORIZONTAL_SPACE_RUNS.sub(" ", text.replace("\n", " ")).strip()


def comparable_title(text: str) -> str:
    """A title reduced for near-duplicate comparison: no spaces, punctuation or case."""
    folded = normalize_user_text(text).lower()
    return "".join(ch for ch in folded if ch.isalnum())


# Explicit direction marks, embeddings, overrides and isolates (Unicode's bidirectional
# formatting characters). Chinese and Latin text never needs them, and U+202E can make
# a title or name display as something other than what was stored ("Trojan Source").
# Arabic and Hebrew text takes its direction from its own letters, so nothing is lost.
_BIDI_CONTROLS = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def strip_bidi_controls(text: str) -> str:
    return _BIDI_CONTROLS.sub("", text)


def one_line(text: str) -> str:
    """A request field validator (`AfterValidator(one_line)`) for a single-line text."""
    return normalize_user_text(text)


def paragraphs(text: str) -> str:
    """A request field validator for a text that may keep its line breaks."""
    return normalize_user_text(text, multiline=True)
