"""The rows of a text: where a list of objects is written one item per line (pure).

Asked for a list of objects, the 270M model loses track of which item it is writing: the
quantity of the second line with the description of the third, an item too many or too few.
But a text that lists things usually puts one per line: an invoice's lines, a tour's dates, an
itinerary's legs, a bulleted list. Where it does, :mod:`._bounds` makes the grammar write
exactly one item per row, each item's values copied from its own row only
(:meth:`~._copying.CopySource.within`).

:func:`row_blocks` finds the candidates: runs of two or more consecutive lines that read as
rows, not as a paragraph wrapped over lines (a line running on into the next in lower case)
nor as a form (``From: ...`` / ``Bill to: ...``: different labels, one field each). A run's
heading (``Your items:``) is not a row; a marker (``-``, ``2.``, ``Leg 2:``) is not part of
the row's text. Which block a list takes, if any, is the schema's to say (:mod:`._bounds`
scores each by the values its rows hold for the item's fields).
"""

from __future__ import annotations

import itertools
import re

__all__ = [
    "COLUMN_SEPARATORS",
    "MIN_ROWS",
    "Row",
    "marker_number",
    "row_blocks",
    "runs_on",
    "table_columns",
]

#: Fewer rows than this are not a list written one per line.
MIN_ROWS = 2
#: Runs of rows further apart than this many line breaks are not one list.
MAX_APART = 4
#: An item written over more lines than this is not read as one row.
MAX_RECORD_LINES = 4

#: Where a row's text starts and ends in the text.
Row = tuple[int, int]

# A bullet or a number that starts a row: "- ", "* ", "• ", "2. ", "3) ", "(b) ".
_MARKER = re.compile(r"\s*(?:[-*\u2022\u00b7\u2013>]|\d{1,3}[.)]|\(?[a-z][.)])\s+")
_MARKER_NUMBER = re.compile(r"(\d{1,3})\s*[.):]?\s*$")
# A label that starts a line ("Bill to: ", "Leg 2: "): its words without the number.
_LABEL = re.compile(r"\s*([A-Za-z][A-Za-z .'/&-]{0,30}?)\s*(?:#?\d{1,3})?\s*:\s")
# A line that runs on: it ends in a word or a comma and the next begins in lower case.
_RUNS_ON_END = re.compile(r"[\w,]$")
_RUNS_ON_START = re.compile(r"[a-z(]")
_GLUE = frozenset(
    {"a", "an", "and", "as", "at", "between", "by", "for", "from", "in", "into", "of", "on"}
    | {"or", "the", "to", "via", "with"}
)


def row_blocks(text: str) -> list[tuple[list[Row], bool]]:
    """Every run of rows in ``text``, in order, each with whether its rows are marked (a
    bullet, a number, a shared label); each row without its marker or shared label, and
    with the lines indented under it ("     incl. 3 buckets, self-drive"). Runs
    apart only by blank lines and headings, marked alike ("Women" / "1. ..." and "Men" /
    "1. ..."), are also one run together."""
    runs: list[tuple[list[Row], str]] = []
    paragraphs: list[list[Row]] = []
    lines: list[Row] = []
    start = 0
    for line in [*text.split("\n"), ""]:
        if line.strip() and lines and _indent(line) > _indent(text[lines[0][0] : lines[0][1]]):
            lines[-1] = (lines[-1][0], start + len(line))  # a row's second line, indented
        elif line.strip():
            lines.append((start, start + len(line)))
        elif lines:
            runs.extend(_rows(text, lines))
            paragraphs.append(lines)
            lines = []
        start += len(line) + 1
    blocks = [(rows, bool(style)) for rows, style in runs if len(rows) >= MIN_ROWS]
    blocks += _records(text, paragraphs)
    for i, (first, style) in enumerate(runs):
        together = list(first)
        for rows, following in runs[i + 1 :]:
            apart = text[together[-1][1] : rows[0][0]].count("\n")
            if not style or following != style or apart > MAX_APART:
                break
            together += rows
            if (together, True) not in blocks:
                blocks.append((list(together), True))
    return blocks


def _records(text: str, paragraphs: list[list[Row]]) -> list[tuple[list[Row], bool]]:
    """Items written over a few lines each, a blank line between them ("Mon 17 Feb" /
    "08:00-16:30, 30 min break - hedge cutting"): runs of paragraphs of the same number of
    lines (2-4), none of them prose, each one row from its first line to its last."""
    blocks: list[tuple[list[Row], bool]] = []
    i = 0
    while i < len(paragraphs):
        size = len(paragraphs[i])
        j = i + 1
        while (
            j < len(paragraphs)
            and len(paragraphs[j]) == size
            and text[paragraphs[j - 1][-1][1] : paragraphs[j][0][0]].count("\n") <= MAX_APART
        ):
            j += 1
        group = paragraphs[i:j]
        if (
            len(group) >= MIN_ROWS
            and 2 <= size <= MAX_RECORD_LINES
            and not any(
                runs_on(text[a[0] : a[1]].rstrip(), text[b[0] : b[1]])
                for lines in group
                for a, b in itertools.pairwise(lines)
            )
        ):
            firsts = [text[lines[0][0] : lines[0][1]] for lines in group]
            labels = {_label(line) for line in firsts}
            marked = all(_MARKER.match(line) for line in firsts) or (
                len(labels) == 1 and None not in labels
            )
            shapes = {tuple(_shape(text[a:b]) for a, b in lines) for lines in group}
            listing = any(  # "Women" / "1. ..." / "2. ...": rows of its own, not one item
                len(rows) >= MIN_ROWS and style
                for lines in group
                for rows, style in _rows(text, lines)
            )
            if listing or (not marked and len(shapes) > 1):
                i = j
                continue  # not alike: "Minutes - ..." and "1. The agency's draft ..."
            rows = []
            for lines, first in zip(group, firsts, strict=True):
                marker = _MARKER.match(first)
                skip = marker.end() if marker is not None else _label_end(first)
                rows.append((lines[0][0] + skip, lines[-1][1]))
            blocks.append((rows, marked))
        i = j
    return blocks


def _rows(text: str, lines: list[Row]) -> list[tuple[list[Row], str]]:
    """The rows of one run of lines and how they are marked ("" if not alike), or none if
    the lines are no rows."""
    texts = [text[s:e].rstrip() for s, e in lines]
    if len(texts) > 1 and (texts[0].endswith(":") or _heading(texts[0], texts[1:])):
        lines, texts = lines[1:], texts[1:]  # a heading: "Contents:", "Women"
    if any(runs_on(line, following) for line, following in itertools.pairwise(texts)):
        return []  # a paragraph, wrapped
    labels = [_label(line) for line in texts]
    named = [label for label in labels if label is not None]
    if len(named) >= MIN_ROWS:
        kept = [i for i, label in enumerate(labels) if label is not None]
        if len(set(named)) > 1 or kept != list(range(kept[0], kept[-1] + 1)):
            return []  # a form: a field per line
        # "Leg 1: ...", "Leg 2: ...": the label is the marker (and "All times are local.",
        # after them, no row)
        marked = [(lines[i][0], texts[i]) for i in kept]
        rows = [(s + _label_end(t), s + len(t)) for s, t in marked]
        return [(rows, "label:" + named[0])]
    markers = [_MARKER.match(line) is not None for line in texts]
    if any(markers) and not all(markers):
        # "1. scarf ...", "2. books ...", then "Gross weight: 2.05 kg": only the marked rows
        kept = [i for i, marked in enumerate(markers) if marked]
        if len(kept) < MIN_ROWS or kept != list(range(kept[0], kept[-1] + 1)):
            return []
        lines, texts = lines[kept[0] : kept[-1] + 1], texts[kept[0] : kept[-1] + 1]
        labels = labels[kept[0] : kept[-1] + 1]
    rows, styles = [], set()
    for i, ((start, _), line) in enumerate(zip(lines, texts, strict=True)):
        skip = 0
        marker = _MARKER.match(line)
        if marker is not None:
            skip = marker.end()
            sign = marker.group(0).strip()
            styles.add("number" if sign[0].isdigit() else sign)
        else:
            styles.add("")
            if i == 0 and labels[0] is not None:  # "Actions: Luis Ferreira to ...", then more
                skip = _label_end(line)
        rows.append((start + skip, start + len(line)))
    style = styles.pop() if len(styles) == 1 else ""
    if not style:  # unmarked: alike if every line has the same separator ("Anna - kitchen")
        shared = [sep for sep in COLUMN_SEPARATORS if all(sep in line for line in texts)]
        style = f"separated:{shared[0]}" if shared else ""
    return [(rows, style)]


#: What separates a row's columns ("Anna - kitchen", a table's two spaces).
COLUMN_SEPARATORS = (" - ", " \u2013 ", " \u2014 ", " | ", "\t", "  ")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _shape(line: str) -> tuple[str, frozenset[str]]:
    """What a line of an item looks like: how it begins (a digit, a capital, a small letter,
    a sign) and which separators it holds."""
    first = line.lstrip()[:1]
    begins = (
        "9" if first.isdigit() else "A" if first.isupper() else "a" if first.isalpha() else first
    )
    return begins, frozenset(c for c in ",:-()/@|" if c in line)


def _heading(line: str, rows: list[str]) -> bool:
    """A short line of words before marked rows ("Women" before "1. Amara Wanjiku")."""
    return (
        len(line.split()) <= 3
        and not any(c.isdigit() for c in line)
        and all(_MARKER.match(row) for row in rows)
    )


def runs_on(line: str, following: str) -> bool:
    """Whether ``line`` runs on into ``following``: it ends in a comma or a small word
    ("with", "the"), or in a word and the next line begins in lower case."""
    last = line.rsplit(None, 1)[-1].lower() if line.split() else ""
    if line.endswith(",") or last in _GLUE:
        return True
    return bool(_RUNS_ON_END.search(line) and _RUNS_ON_START.match(following.lstrip()))


def _label(line: str) -> str | None:
    match = _LABEL.match(line)
    return match.group(1).strip().lower() if match is not None else None


def _label_end(line: str) -> int:
    match = _LABEL.match(line)
    return match.end() if match is not None else 0


def marker_number(text: str, row: Row) -> int | None:
    """The number a numbered row is marked with ("2. ", "Leg 2: "), if any."""
    line_start = text.rfind("\n", 0, row[0]) + 1
    match = _MARKER_NUMBER.search(text, line_start, row[0])
    return int(match.group(1)) if match is not None else None


# Where a table's columns part: a tab, a "|" (spaced or not), or two spaces or more.
_COLUMN_GAP = re.compile(r"\s*\|\s*|\t+\s*| {2,}")


def table_columns(text: str, rows: list[Row]) -> tuple[list[str], list[list[Row]]] | None:
    """The cells of a table's heading line ("Night | Singles | Doubles") and, for each of its
    ``rows``, where each cell of the row's first line is ("Sun 14 Sep 2025 | 20 | 6"): a
    column's values are under its heading. None unless the line right above the first row
    is such a heading and every row has as many cells as it."""
    if not rows:
        return None
    line = text.rfind("\n", 0, rows[0][0]) + 1
    if not line:
        return None
    above = text.rfind("\n", 0, line - 1) + 1
    heading = _cells(text, above, line - 1)
    if len(heading) < 2:
        return None
    cells = []
    for start, end in rows:
        stop = text.find("\n", start, end)
        found = _cells(text, text.rfind("\n", 0, start) + 1, end if stop < 0 else stop)
        if len(found) != len(heading):
            return None
        # (a marker is not the row's: the first cell starts where the row does)
        cells.append([(max(a, start), b) for a, b in found])
    return [text[a:b] for a, b in heading], cells


def _cells(text: str, start: int, end: int) -> list[Row]:
    """Where the cells of the line between ``start`` and ``end`` are, if it is in columns."""
    line = text[start:end]
    if not any(gap in line.strip() for gap in ("\t", "|", "  ")):
        return []
    found, at = [], 0
    for gap in [*_COLUMN_GAP.finditer(line), None]:
        stop = gap.start() if gap is not None else len(line)
        if line[at:stop].strip():
            lead = len(line[at:stop]) - len(line[at:stop].lstrip())
            found.append((start + at + lead, start + len(line[:stop].rstrip())))
        at = gap.end() if gap is not None else at
    return found
