"""HTML-safe highlighting shared by both engines.

Engines mark matches with two private-use characters instead of `<em>`: listing text is
user input, so the marked text is HTML-escaped first and only then are the markers
turned into `<em>` tags. A listing titled `<script>` can never inject markup.
"""

from __future__ import annotations

import html

MATCH_START = "\ue000"
MATCH_END = "\ue001"
CROP_MARKER = "…"
LIST_SEPARATOR = "、"


def render_marked(marked: str) -> str:
    """Escape `marked` for HTML and turn the match markers into <em> tags."""
    escaped = html.escape(marked, quote=False)
    return escaped.replace(MATCH_START, "<em>").replace(MATCH_END, "</em>")


def render_marked_list(values: list[str]) -> str:
    # Escaping the joined text equals joining the escaped values (the separator is
    # plain text), in one pass instead of one per value.
    return render_marked(LIST_SEPARATOR.join(values))
