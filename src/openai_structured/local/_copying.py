"""Values the embedded model may only copy from its input: grammar rules built from the text.

Pure (no llama_cpp, no I/O). A 270M model asked for a field writes whatever fits the grammar:
a date it invents (``1804-02-11``), a name cut short, a phone number of zeros. But an extracted
value is almost always *in* the text, written one way or another. So where the schema says
what a value is, the grammar admits only what the text holds:

* a **plain string** (no ``enum``, ``const``, ``format`` or ``pattern``) is a run of the input's
  words, copied as written (:meth:`CopySource.span_rules`): any run, starting at a word or a
  sign such as ``#`` or ``£``, with whitespace between words written as one space;
* a **number** or **integer** is one of the numbers the text writes (``1,234.50`` as
  ``1234.50``, ``70th`` as ``70``, ``six`` as ``6``), with an optional minus sign (always
  admitting the counts 0-12 as well was measured: the model then wrote ``1`` far too often);
* a **date** (``format: date``) is one of the dates the text writes, in ISO form: ``7 June
  2024``, ``June 7, 2024``, ``2024-06-07``, ``07/06/2024`` (both readings when the order is
  not certain), and ``19 February`` in the year of the text's nearest full date;
* a **time** (``format: time``, or a string whose description says ``HH:MM``) is one of the
  text's times: ``8 pm``, ``10.30am`` and ``20:00`` as ``20:00``/``10:30``;
* a **date-time** is one of the text's dates at one of its times (or midnight).

Where the text holds no value of a kind, the field keeps its ordinary grammar. Enums, booleans
and structure are untouched, and ``null`` stays allowed wherever the schema allows it. The
answer is validated against the caller's schema as always. The rules are small: one per word
of the text (a run of words is the chain ``w3 ::= "Okafor" (" " w4)?``), so their size is
linear in the input; inputs longer than :data:`MAX_WORDS` words are not constrained this way.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "MAX_WORDS", "CopySource", "copy_kind", "is_sentinel", "sentinel"]

#: Longer inputs keep the ordinary string grammar (the rules, and the grammar's work per
#: token, grow with the number of words).
MAX_WORDS = 1500
#: The kinds of copied value, by the rule that admits them.
KINDS = (
    "string",
    "integer",
    "number",
    "unsigned-integer",
    "unsigned-number",
    "date",
    "time",
    "date-time",
)

_SENTINEL = "@@openai-structured:copy-{}@@"
_SENTINELS = frozenset(_SENTINEL.format(kind) for kind in KINDS)
_WORD = re.compile(r"\w+|[^\w\s]")
# A span may start at a word or at one of these signs (not at a comma or a full stop).
_STARTS = frozenset("#+$£€¥@(\"'")
# Words a copied value does not start with (it may hold them: "Bank of England").
_GLUE = frozenset(
    [
        "a",
        "an",
        "and",
        "as",
        "at",
        "but",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "than",
        "that",
        "the",
        "then",
        "to",
        "was",
        "were",
        "with",
    ]
)
_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d)")
_NUMERIC_DATE = re.compile(
    r"\b(?P<year>\d{4})-\d{1,2}-\d{1,2}(?!\d)|\b\d{1,2}[/.]\d{1,2}[/.](?P<year2>\d{4})\b"
)
# Clock times, numeric dates, and phone-like runs (3+ digit groups joined by spaces, dashes or
# dots, 7+ digits in all): their parts are not quantities.
_NOT_QUANTITIES = re.compile(
    r"(?<!\d)\d{1,2}:\d{2}(?::\d{2})?(?!\d)"
    r"|\b\d{4}-\d{1,2}-\d{1,2}(?!\d)|\b\d{1,2}[/.]\d{1,2}[/.]\d{4}\b"
    r"|\+?\(?\d+\)?(?:[ .-]\d+){2,}(?=\D|$)"
)
_NUMBER_WORDS = {
    word: n
    for n, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4})"
_DATES = (
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?\b", re.IGNORECASE),
    re.compile(rf"\b{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?\b", re.IGNORECASE),
    # Also the date of a date-time ("2024-06-07T09:30:00Z": no word boundary before the T).
    re.compile(r"\b(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})(?!\d)"),
    re.compile(r"\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})[/.](?P<year>\d{4})\b"),
)
_TIMES = (
    re.compile(r"\b(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))?\s*(?P<ampm>[ap])\.?m\b\.?", re.IGNORECASE),
    re.compile(r"(?<!\d)(?P<h>\d{1,2}):(?P<m>\d{2})(?::\d{2})?(?!\d)"),
    re.compile(r"\b(?P<noon>noon|midday|midnight)\b", re.IGNORECASE),
)
# A description asking for a bare HH:MM (not HH:MM:SS, not a range HH:MM-HH:MM).
_HH_MM = re.compile(r"(?<![-\u2013:])\bHH:MM\b(?![-\u2013:])")


def sentinel(kind: str) -> str:
    """The placeholder ``const`` the grammar schema holds where a copied ``kind`` goes."""
    return _SENTINEL.format(kind)


def is_sentinel(value: Any) -> bool:
    """Whether ``value`` is one of :func:`sentinel`'s placeholders."""
    return isinstance(value, str) and value in _SENTINELS


def copy_kind(node: Mapping[str, Any]) -> str | None:
    """The kind of copied value a typed schema node takes (:data:`KINDS`), or None."""
    bounds = {"enum", "const", "pattern", "minLength", "maxLength", "multipleOf", "maximum"}
    if (bounds | {"exclusiveMaximum"}) & node.keys() or _positive_minimum(node):
        return None  # a copied value would not keep to these: the ordinary grammar
    kind = node.get("type")
    fmt = node.get("format")
    if kind in ("integer", "number") and _non_negative(node):
        return f"unsigned-{kind}"
    if kind == "string":
        if fmt in ("date", "time", "date-time"):
            return str(fmt)
        if fmt is not None:
            return None
        description = node.get("description")
        if isinstance(description, str) and _HH_MM.search(description):
            return "time"
        return "string"
    if kind in ("integer", "number"):
        return str(kind)
    return None


@dataclass(frozen=True)
class CopySource:
    """The values an input text holds, as GBNF rules (see the module docstring)."""

    text: str
    words: tuple[tuple[str, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        words = []
        matches = list(_WORD.finditer(self.text))
        for i, match in enumerate(matches):
            after = self.text[match.end() : matches[i + 1].start()] if i + 1 < len(matches) else ""
            words.append((match.group(0), ("\n" if "\n" in after else " ") if after else ""))
        object.__setattr__(self, "words", tuple(words))

    @property
    def usable(self) -> bool:
        """Whether the text is short enough to constrain strings to its words."""
        return 0 < len(self.words) <= MAX_WORDS

    def values(self, kind: str) -> list[str]:
        """The JSON texts a copied ``kind`` may be (strings: empty, see :meth:`span_rules`)."""
        if kind.endswith("integer"):
            return _unique(self._numbers(integers=True))
        if kind.endswith("number"):
            return _unique(self._numbers(integers=False))
        if kind == "date":
            return [json.dumps(d) for d in self.dates()]
        if kind == "time":
            return [json.dumps(t) for t in self.times()]
        if kind == "date-time":
            times = self.times() or ["00:00"]
            return [json.dumps(f"{d}T{t}:00") for d in self.dates() for t in times]
        return []

    def has(self, kind: str) -> bool:
        """Whether the text holds any value of ``kind``."""
        if kind == "string":
            return self.usable
        return bool(self.values(kind))

    def rules(self, kinds: Iterable[str]) -> dict[str, str]:
        """GBNF rules ``copy-<kind>`` for ``kinds`` (and what they use), by rule name."""
        rules: dict[str, str] = {}
        for kind in kinds:
            if kind == "string":
                rules.update(self.span_rules())
            elif kind.endswith(("integer", "number")):
                alternatives = " | ".join(_literal(v) for v in self.values(kind))
                sign = "" if kind.startswith("unsigned") else '"-"? '
                rules[f"copy-{kind}"] = f"{sign}({alternatives})"
            else:
                rules[f"copy-{kind}"] = " | ".join(_literal(v) for v in self.values(kind))
        return rules

    def span_rules(self) -> dict[str, str]:
        """``copy-string``: a JSON string holding a run of the text's words."""
        rules: dict[str, str] = {}
        starts = []
        last = len(self.words) - 1
        for i, (word, gap) in enumerate(self.words):
            text = _literal(json.dumps(word, ensure_ascii=False)[1:-1])
            if i < last:
                # A line break between the words may be written as a space or as one.
                space = '(" " | "\\\\n")' if gap == "\n" else _literal(gap)
                link = f"{space} copy-w{i + 1}" if gap else f"copy-w{i + 1}"
                rules[f"copy-w{i}"] = f"{text} ({link})?"
            else:
                rules[f"copy-w{i}"] = text
            if (word[0].isalnum() or word[0] == "_" or word in _STARTS) and word not in _GLUE:
                starts.append(f"copy-w{i}")
        rules["copy-string"] = '"\\"" (' + " | ".join(starts) + ') "\\""'
        return rules

    def _numbers(self, *, integers: bool) -> list[str]:
        """The numbers the text writes, but not the parts of a clock time, a numeric date or
        a phone-like run of digit groups (their years are kept: a year is often asked for)."""
        text = _NOT_QUANTITIES.sub(lambda m: " " * len(m.group(0)), self.text)
        found = [m.group("year") or m.group("year2") for m in _NUMERIC_DATE.finditer(self.text)]
        for match in _NUMBER.finditer(text):
            whole, fraction = match.group(1).replace(",", ""), match.group(2) or ""
            if integers and fraction.strip(".0"):
                continue
            whole = whole.lstrip("0") or "0"
            found.append(whole if integers or not fraction else whole + fraction)
        found += [str(_NUMBER_WORDS[m.group(1).lower()]) for m in _NUMBER_WORD.finditer(self.text)]
        return found

    def dates(self) -> list[str]:
        """Every date the text writes, in ISO form, in order of appearance."""
        found: list[tuple[int, list[str]]] = []
        taken: list[tuple[int, int]] = []
        pending: list[tuple[int, int, int]] = []  # (position, month, day) without a year
        for pattern in _DATES:
            for match in pattern.finditer(self.text):
                if any(s < match.end() and match.start() < e for s, e in taken):
                    continue
                parts = match.groupdict()
                taken.append((match.start(), match.end()))
                if parts.get("iso_y"):
                    found.append(
                        (match.start(), _iso(parts["iso_y"], parts["iso_m"], parts["iso_d"]))
                    )
                elif parts.get("month"):
                    month, day = _MONTHS[parts["month"].lower().rstrip(".")], int(parts["day"])
                    if parts.get("year"):
                        found.append((match.start(), _iso(parts["year"], month, day)))
                    else:
                        pending.append((match.start(), month, day))
                else:
                    a, b, year = int(parts["a"]), int(parts["b"]), parts["year"]
                    readings = _iso(year, b, a) + _iso(year, a, b)  # day first, then month first
                    found.append((match.start(), readings))
        years = [(pos, iso[:4]) for pos, isos in found for iso in isos[:1]]
        for pos, month, day in pending:
            if years:
                year = min(years, key=lambda item: abs(item[0] - pos))[1]
                found.append((pos, _iso(year, month, day)))
        return _unique(iso for _, isos in sorted(found) for iso in isos)

    def times(self) -> list[str]:
        """Every clock time the text writes, as ``HH:MM``."""
        found: list[tuple[int, str]] = []
        taken: list[tuple[int, int]] = []
        for pattern in _TIMES:
            for match in pattern.finditer(self.text):
                if any(s < match.end() and match.start() < e for s, e in taken):
                    continue
                parts = match.groupdict()
                if parts.get("noon"):
                    clock = "00:00" if parts["noon"].lower() == "midnight" else "12:00"
                else:
                    hour, minute = int(parts["h"]), int(parts.get("m") or 0)
                    ampm = (parts.get("ampm") or "").lower()
                    if ampm:
                        if not 1 <= hour <= 12:
                            continue
                        hour = hour % 12 + (12 if ampm == "p" else 0)
                    if hour > 23 or minute > 59:
                        continue
                    clock = f"{hour:02d}:{minute:02d}"
                taken.append((match.start(), match.end()))
                found.append((match.start(), clock))
        return _unique(clock for _, clock in sorted(found))


def _minimum(node: Mapping[str, Any]) -> float | None:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    return float(low) if isinstance(low, (int, float)) and not isinstance(low, bool) else None


def _non_negative(node: Mapping[str, Any]) -> bool:
    low = _minimum(node)
    return low is not None and low >= 0


def _positive_minimum(node: Mapping[str, Any]) -> bool:
    low = _minimum(node)
    return low is not None and (low > 0 or ("exclusiveMinimum" in node and low >= 0))


def _iso(year: str | int, month: str | int, day: str | int) -> list[str]:
    try:
        return [datetime.date(int(year), int(month), int(day)).isoformat()]
    except ValueError:
        return []


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _literal(text: str) -> str:
    """``text`` as a GBNF literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
