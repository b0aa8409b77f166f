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

import bisect
import dataclasses
import datetime
import functools
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from ._naming import (
    COMPANY_WORDS,
    CURRENCY_CODES,
    CURRENCY_UNITS,
    PEOPLE,
    ROLE_WORDS,
    UNITS,
    label_words,
    name_words,
    number_qualifier,
    range_qualifier,
    string_qualifier,
)
from ._rows import Row, row_blocks, runs_on

__all__ = [
    "BIRTH",
    "CELL",
    "KINDS",
    "MAX_WORDS",
    "ORGANISATION",
    "PERSON",
    "PROPER",
    "PROPERS",
    "SPANNED",
    "CopySource",
    "base_kind",
    "cell_kind",
    "copy_kind",
    "is_sentinel",
    "rule_name",
    "sentinel",
    "sentinel_kind",
    "stem_match",
]

#: A line at least this long ends where a paragraph was wrapped: a copy may go on into the
#: next line ("Per Andersson and Lina" / "Berg saw the water"), not from a shorter one.
WRAPPED_WIDTH = 60
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
#: What a row's one text field is narrowed to: its copy ends where the row's cell does.
CELL = "cell"
#: What a field that names someone is narrowed to (``dentist``, ``received_by``: see
#: :mod:`._naming`): its copy starts at a capitalised word ("Dr. Fenella Marsh", not
#: "11 yrs" nor "asked"). Every such value of the tuning half's answers starts with one.
PROPER = "proper"
#: Someone's name where the field's name says a person has it (``dentist``): not a name
#: the text gives a company ("Harbourside Dental Care", :data:`~._naming.COMPANY_WORDS`).
PERSON = "person"
#: Someone's name where the field's name says a company has it (``shop``, ``salon_name``):
#: not a titled person's ("Dr Femke Jansen"), and a company's where the text names one.
ORGANISATION = "organisation"
#: What a date field whose name says it is a birth date (``patient_date_of_birth``, ``dob``)
#: is narrowed to: a date the text says is one ("DOB 12/03/1985", "born 4 May 2019"), else
#: null (an appointment's date is no one's birthday).
BIRTH = "birth"
#: The kinds of someone's name.
PROPERS = frozenset({PROPER, PERSON, ORGANISATION})
#: The narrow kinds of plain strings: runs of the text's words (:meth:`CopySource.span_rules`).
SPANNED = frozenset({"", CELL, *PROPERS})
#: The step of each one's word rules (``copy-w12``, ``copy-c12``, ``copy-p12``...).
_STEPS = {"": "w", CELL: "c", PROPER: "p", PERSON: "h", ORGANISATION: "o"}
_SENTINEL_TEXT = re.compile(r"@@openai-structured:copy-([a-z0-9/-]+)@@")
_WORD = re.compile(r"\w+|[^\w\s]")
# A span may start at a word or at one of these signs (not at a comma or a full stop).
_STARTS = frozenset("#+$£€¥@(\"'")
# What may come between a label word and the name it labels ("Curated by", "officer,").
_PAST = frozenset([",", "by"])
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
# A number, and a count written "x2" ("Handwoven cotton scarf x2"); not the number of a
# code ("SX-110", "IP-300").
_NUMBER = re.compile(
    r"(?:(?<![\w.,])|(?<=\bx))(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d)"
)
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
_UNIT_WORDS = [
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
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TEN_WORDS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_NUMBER_WORDS = (
    {word: n for n, word in enumerate(_UNIT_WORDS)}
    | {word: 10 * (n + 2) for n, word in enumerate(_TEN_WORDS)}
    | {"dozen": 12}
)
# A number written in words: "six", "forty-two", "twenty one".
_NUMBER_WORD = re.compile(
    rf"\b(?:(?P<tens>{'|'.join(_TEN_WORDS)})[- ](?P<unit>{'|'.join(_UNIT_WORDS[1:10])})(?!-\w)"
    rf"|(?P<word>{'|'.join(_NUMBER_WORDS)}))\b",
    re.IGNORECASE,
)
# Titles before a name, which a copied name may leave out ("Mr Felix Haverkamp").
_OPENERS = frozenset({".", '"', "'", "\u201c", "\u2018"})  # what may come before a name
_BIRTH = frozenset({"birth", "born", "dob", "birthday", "birthdate"})
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev"})
# The words of a name read at most (:meth:`CopySource._name_at`), and those it may hold in
# lower case ("Bank of England", "Fernhill Kennels & Cattery").
_NAME_WORDS = 8
_NAME_GLUE = frozenset({"&", "and", "of", "the", "de", "la", "du", "van", "von", "der", "for"})
_WEEKDAYS = frozenset(
    {"mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun"}
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)
#: Words of a ``*_time`` field's name that make it the clock time something happens at
#: ("departure_time", "appointment_time"; a "finish_time" is often a duration).
_EVENTS = frozenset(
    {"departure", "arrival", "boarding", "pickup", "collection", "delivery", "appointment"}
    | {"checkin", "check", "doors", "opening", "closing", "serving", "offence", "kickoff"}
    | {"meeting", "booking", "reservation", "pick", "drop", "departs", "arrives", "gate"}
)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAYS_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = r"(mon|tue|wed|thu|fri|sat|sun)(?:day|s|sday|nesday|rsday|urday)?\.?"
# "Tuesday to Sunday", "Mon-Fri", "Monday through Thursday".
_WEEKDAY_RANGE = re.compile(
    rf"\b{_DAY}\s*(?:-|\u2013|to|until|till|through|thru)\s*{_DAY}\b", re.IGNORECASE
)
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
    # An airline's "21NOV24".
    re.compile(rf"\b{_DAY}{_MONTH}(?P<year>\d\d)\b", re.IGNORECASE),
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
    return isinstance(value, str) and _SENTINEL_TEXT.fullmatch(value) is not None


def sentinel_kind(value: str) -> str:
    """The kind a :func:`sentinel` placeholder stands for."""
    match = _SENTINEL_TEXT.fullmatch(value)
    if match is None:
        raise ValueError(f"not a copied value's placeholder: {value!r}")
    return match.group(1)


def copy_kind(
    node: Mapping[str, Any],
    name: str = "",
    labels: tuple[str, ...] | None = None,
    others: tuple[str, ...] = (),
    owner: str = "",
) -> str | None:
    """The kind of copied value a typed schema node takes (:data:`KINDS`), or None. With the
    field's ``name``, the kind may be narrowed by what the name says (:mod:`._naming`):
    ``string/phone``, ``integer/year``, ``number/km``; :meth:`CopySource.kind_for` falls back
    to the base kind where the text holds no value of the narrow one. ``owner`` is the field
    the value is in (the list of ``members`` whose ``name`` it is)."""
    bounds = {"enum", "const", "pattern", "minLength", "maxLength", "multipleOf", "maximum"}
    if (bounds | {"exclusiveMaximum"}) & node.keys() or _positive_minimum(node):
        return None  # a copied value would not keep to these: the ordinary grammar
    kind = node.get("type")
    fmt = node.get("format")
    if kind in ("integer", "number"):
        base = f"unsigned-{kind}" if _non_negative(node) else str(kind)
        words = label_words(name) if labels is None else labels
        return _kind(base, number_qualifier(name, node) or "", words, others)
    if kind == "string":
        if fmt == "date-time":
            return str(fmt)
        if fmt in ("date", "time"):
            words = label_words(name) if labels is None else labels
            born = fmt == "date" and bool(_BIRTH & set(name_words(name)))
            return _kind(str(fmt), BIRTH if born else range_qualifier(name) or "", words, others)
        if fmt is not None:
            return None
        description = node.get("description")
        named = name_words(name)
        clock = (
            bool(named)
            and named[-1] == "time"
            and (range_qualifier(name) is not None or bool(_EVENTS & set(named)))
            and not isinstance(description, str)
        )
        if clock or (isinstance(description, str) and _HH_MM.search(description)):
            # A clock time: asked for as HH:MM, or named as one end of a range ("start_time",
            # nothing said; not "finish_time", often a duration).
            words = label_words(name) if labels is None else labels
            return _kind("time", range_qualifier(name) or "", words)
        what = string_qualifier(name, node, owner)
        if what is None or what in PROPERS:  # a plain string: copied after its label, if any
            return _kind("string", what or "", label_words(name) if labels is None else labels)
        if what in ("phone", "email") or labels is None:
            labels = label_words(name)  # whose it is, shared or not (customer_phone, _email)
        return _kind("string", what, labels, others)
    return None


def _kind(base: str, narrow: str, labels: Iterable[str], others: Iterable[str] = ()) -> str:
    return "/".join([base, narrow, "-".join(labels), "-".join(others)]).rstrip("/")


def _parts(kind: str) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """A kind's base, what the name narrowed it to, the name's label words and the label
    words of its sibling fields (its row, if any, is :meth:`CopySource.scoped`'s)."""
    base, narrow, labels, others, *_ = [*kind.split("/"), "", "", ""]
    return (
        base,
        narrow,
        tuple(filter(None, labels.split("-"))),
        tuple(filter(None, others.split("-"))),
    )


def cell_kind(kind: str) -> str:
    """A plain string ``kind`` as a row's one text field's (:data:`CELL`)."""
    base, _, labels, others = _parts(kind)
    return _kind(base, CELL, labels, others)


def is_spanned(kind: str) -> bool:
    """Whether a copied ``kind`` (maybe scoped to a row) is a run of the text's words."""
    base, narrow, *_ = _parts(kind)
    return base == "string" and narrow in SPANNED


def base_kind(kind: str) -> str:
    """``kind`` without what a field's name narrowed it to: ``string/phone`` -> ``string``."""
    return kind.split("/", 1)[0]


def rule_name(kind: str) -> str:
    """The GBNF rule that admits a copied ``kind`` (one rule per kind: a part's words are
    joined by ``-``, the parts by ``--``)."""
    return "copy-" + kind.replace("/", "--")


_Finder = TypeVar("_Finder", bound=Callable[..., list[Any]])


def _read_once(finder: _Finder) -> _Finder:
    """A finder of values in the whole text, run once per text and its arguments (its result
    depends on nothing else; the source and its windows share :attr:`CopySource.memo`)."""

    @functools.wraps(finder)
    def read(self: CopySource, *args: Any, **kwargs: Any) -> list[Any]:
        key = (finder.__name__, args, tuple(sorted(kwargs.items())))
        if key not in self.memo:
            self.memo[key] = finder(self, *args, **kwargs)
        return list(self.memo[key])

    return cast(_Finder, read)


@dataclass(frozen=True)
class CopySource:
    """The values an input text holds, as GBNF rules (see the module docstring)."""

    text: str
    #: Narrow a copy by what the field's name says (:meth:`kind_for`).
    by_name: bool = True
    #: Narrow an enum to the values the text mentions (:meth:`narrowed`).
    mentions: bool = True
    #: Read the field names' labels in the text (not when it is several user messages: a
    #: worked example's "Attendees:" is not the note's).
    labelled: bool = True
    #: A required list of objects holds one at least (the model's empty list loses every
    #: field of every item; one item too many loses one).
    listed: bool = True
    #: A list of objects written one item per line is written one item per row, each from
    #: its own row (:mod:`._rows`).
    rows: bool = True
    #: Only the values inside this part of the text (a row of a list, :mod:`._rows`); the
    #: values are still read in the whole text (a row's "8 May" takes the text's year).
    window: tuple[int, int] | None = None
    #: The parts of the text lists of objects take, an item per row (:mod:`._rows`): a string
    #: outside those lists is not copied from them (a tour's support act is not its third
    #: show, a quote's client no document's language).
    taken: tuple[tuple[int, int], ...] = ()
    #: What is read from the text once, shared by the source and its windows (a list of 70
    #: rows would otherwise read the whole text again for each row's every field).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    words: tuple[tuple[str, str], ...] = field(init=False)
    #: Where each of :attr:`words` starts in the text.
    offsets: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        if "words" not in self.memo:
            words = []
            matches = list(_WORD.finditer(self.text))
            for i, match in enumerate(matches):
                end = matches[i + 1].start() if i + 1 < len(matches) else match.end()
                after = self.text[match.end() : end]
                words.append((match.group(0), ("\n" if "\n" in after else " ") if after else ""))
            self.memo["words"] = tuple(words), tuple(m.start() for m in matches)
        words_, offsets = self.memo["words"]
        object.__setattr__(self, "words", words_)
        object.__setattr__(self, "offsets", offsets)

    @property
    def usable(self) -> bool:
        """Whether the text is short enough to constrain strings to its words."""
        return 0 < len(self.words) <= MAX_WORDS

    @functools.cached_property
    def row_blocks(self) -> list[tuple[list[Row], bool]]:
        """The text's blocks of rows (:func:`~._rows.row_blocks`), each with whether its
        rows are marked (bullets, numbers, a shared label)."""
        return row_blocks(self.text)

    def within(self, start: int, end: int) -> CopySource:
        """This source, its values only those between ``start`` and ``end`` of the text."""
        return dataclasses.replace(self, window=(start, end), taken=())

    def outside(self, taken: Iterable[tuple[int, int]]) -> CopySource:
        """This source, its strings not copied from the ``taken`` parts of the text."""
        return dataclasses.replace(self, taken=tuple(taken))

    def _is_taken(self, at: int) -> bool:
        return any(start <= at < end for start, end in self.taken)

    def scoped(self, kind: str) -> str:
        """``kind`` as this source's: with its window, if any, as a fifth part (the rule and
        the values of ``string////at120-185`` are those of that part of the text)."""
        if self.window is None:
            return kind
        base, narrow, labels, others = _parts(kind)
        parts = [base, narrow, "-".join(labels), "-".join(others)]
        return "/".join([*parts, f"at{self.window[0]}-{self.window[1]}"])

    def _scope(self, kind: str) -> tuple[CopySource, str]:
        """The source a (maybe scoped) ``kind`` is read from, and the kind without its row."""
        parts = kind.split("/")
        if len(parts) == 5 and parts[4].startswith("at"):
            start, end = parts[4][2:].split("-")
            return self.within(int(start), int(end)), "/".join(parts[:4]).rstrip("/")
        return self, kind

    @property
    def _span(self) -> tuple[int, int]:
        return self.window if self.window is not None else (0, len(self.text))

    def _inside(self, found: list[_Found]) -> list[_Found]:
        if self.window is None:
            return found
        low, high = self.window
        return [f for f in found if low <= f[0] and f[1] <= high]

    @property
    def _text(self) -> str:
        """The part of the text the values are taken from."""
        low, high = self._span
        return self.text[low:high]

    def _word_range(self) -> range:
        """The indexes of the :attr:`words` inside the window."""
        low, high = self._span
        first = bisect.bisect_left(self.offsets, low)
        last = bisect.bisect_left(self.offsets, high)
        return range(first, last)

    def values(self, kind: str) -> list[str]:
        """The JSON texts a copied ``kind`` may be (plain strings: none, see
        :meth:`span_rules`). Where the field's name gives label words, only the values next
        to one (``policy HM-2207-5531``, ``Two previous owners``), if any are."""
        source, kind = self._scope(kind)
        if source is not self:
            return source.values(kind)
        base, narrow, labels, others = _parts(kind)
        if base.endswith(("integer", "number")):
            found = self._inside(self._numbers_of(narrow, integers=base.endswith("integer")))
            pool = self._inside(self._numbers(integers=False))
            # "no checked bags", "Joining fee: waived": a zero, where a label word is that near
            zeros = self._inside(self._zeros(labels))
            found = self._labelled(found + zeros, labels, others, counted=not narrow, pool=pool)
            return _unique(value for _, _, value in found)
        if base == "string":
            found = [f for f in self._inside(self._strings(narrow)) if not self._is_taken(f[0])]
            party = tuple(label for label in labels if label not in _CONTACT_WORDS)
            if narrow in ("phone", "email") and party:  # a customer_phone, not a phone
                found = [f for f in found if not self._someone_elses(f[0], party)]
            found = self._labelled(found, labels, others)
            return [json.dumps(v, ensure_ascii=False) for v in _unique(v for _, _, v in found)]
        if base in ("date", "time"):
            dated = self._dated() if base == "date" else self._timed()
            if narrow in ("start", "end"):  # "10:00-16:00", "12 April - 31 August 2025"
                dated = _range_ends(self.text, dated, narrow)
            dated = self._inside(dated)
            # Not a date of the rows a list takes (an invoice's date is none of its lessons'),
            # unless the text has no other.
            dated = [d for d in dated if not self._is_taken(d[0])] or dated
            if narrow == BIRTH:
                dated = [d for d in dated if self._born(d[0], d[1])]
            return [
                json.dumps(v)
                for v in _unique(v for _, _, v in self._labelled(dated, labels, others))
            ]
        if kind == "date-time":
            times = _unique(t for _, _, t in self._inside(self._timed())) or ["00:00"]
            dates = _unique(d for _, _, d in self._inside(self._dated()))
            return [json.dumps(f"{d}T{t}:00") for d in dates for t in times]
        return []

    def _born(self, start: int, end: int) -> bool:
        """Whether the date at ``start`` is said to be a birth date: "born", "DOB" or
        "birth" among the four words before it or the three after, in its sentence."""
        before = re.split(r"[.;!?\n]", self.text[max(0, start - 30) : start])[-1]
        after = re.split(r"[.;!?\n]", self.text[end : end + 30])[0]
        near = (
            _WORD_OR_COMMA.findall(before.lower())[-4:] + _WORD_OR_COMMA.findall(after.lower())[:3]
        )
        return bool(_BIRTH & set(near))

    def _someone_elses(self, start: int, labels: tuple[str, ...]) -> bool:
        """Whether the phone number or email address at ``start`` is not that of whom the
        field's ``labels`` name (a customer's, a patient's): the heading line of a text of
        several ("FENWICK HEARING CENTRE · Tel 01632 960255"), or its line labels it for
        someone else ("Store contact: harwood@safekeep.example", "Technician: ..., mob.
        07700 900312")."""
        text = self.text
        line = text.rfind("\n", 0, start) + 1
        before = text[line:start]
        owned = any(stem_match(label, w) for label in labels for w in _words_of(before))
        letterhead = line == 0 and "\n" in text and not _SENTENCE_END.search(text, 0, start)
        if letterhead or _SIGN_OFF.search(text, 0, line):
            return not owned  # the letterhead, or the writer's lines after "Kind regards,"
        heading = set(_words_of(text[: text.find("\n")])) if "\n" in text else set()
        domain = _EMAIL_DOMAIN.match(text, start)
        named = {w for w in _words_of(domain[1]) if len(w) > 3} - _WEBMAIL if domain else set()
        if heading & named:
            return True  # jobs@fixpoint-repairs.example of "FIXPOINT COMPUTER REPAIRS"
        if not owned and _CALL_US.search(text[max(0, start - 40) : start]):
            # "To change it, call 01632 960552", "text me on ...": the writer's, not the
            # reader's (an applicant_phone, a parent_phone; a helpline's may be it).
            return any(label in PEOPLE for label in labels)
        colon = before.rfind(": ")
        if colon < 0 or owned:
            return False
        label = _LABEL_APART.split(before[:colon])[-1]
        words = _words_of(label)
        return bool(words) and not all(w in _CONTACT_WORDS for w in words)

    def _numbers_of(self, narrow: str, *, integers: bool) -> list[_Found]:
        if narrow == "year":  # four digits as written: not 1,950
            return [f for f in self._numbers(integers=True) if _is_year(self.text[f[0] : f[1]])]
        if narrow == "money":
            return self._amounts(integers=integers)
        if narrow == "count":  # a row's "2 x milk", "x6", "3x" (in prose: "2x milk, 3 eggs")
            if self.window is None:  # how many of something: no amount of money
                money = {f[:2] for f in self._amounts(integers=False)}
                return [f for f in self._undated(integers=integers) if f[:2] not in money]
            return [
                (m.start(n), m.end(n), str(int(m.group(n))))
                for m in _COUNTED.finditer(self.text)
                for n in ("n", "n2")
                if m.group(n)
            ]
        if narrow:
            return self._numbers_in(narrow, integers=integers)
        return self._undated(integers=integers)

    @_read_once
    def _undated(self, *, integers: bool) -> list[_Found]:
        """The text's numbers but the parts of its dates: a capacity or a floor is no day
        ("Tue 14 Jan 2025, Level 2") nor a year (a year field is narrowed to years)."""
        return _outside(self._numbers(integers=integers), [d[:2] for d in self._dated()])

    def _labelled(
        self,
        found: list[_Found],
        labels: tuple[str, ...],
        others: tuple[str, ...] = (),
        counted: bool = False,
        pool: list[_Found] | None = None,
    ) -> list[_Found]:
        """``found``, only the values nearest a label word of the field if any is near
        (:meth:`_nearest`); if none is, without the values nearest a sibling field's label
        (the balance is not the amount), nearest among ``pool`` if given (all the text's
        numbers: "Qty 4 ... @ 189.00" labels the 4, not the price)."""
        if not self.labelled:
            return sorted(found)
        mine = self._nearest(found, labels, counted, others)
        if mine:
            return mine
        theirs = {f[0] for f in self._nearest(sorted({*found, *(pool or [])}), others, counted)}
        rest = [f for f in found if f[0] not in theirs]
        return sorted(rest or found)

    def _nearest(
        self,
        found: list[_Found],
        labels: tuple[str, ...],
        counted: bool = False,
        others: tuple[str, ...] = (),
    ) -> list[_Found]:
        """The values of ``found`` nearest a label word: one of the six words before a value
        or the three after in the same line (counted three further, but for a number
        ``counted`` the word right after: "2 checked bags"), in the same sentence; each comma
        between counts four more ("GBP 12 in advance, GBP 15 on the door"). A label word
        right after a sibling's (``others``) labels the sibling's value: "Follow-up visit:"
        is a follow-up's date, not the visit's."""
        if not labels:
            return []
        distances = {}
        for start, end, value in found:
            before = self._before(start)[:6]
            after = enumerate(self._after(end)[:3])  # right after ("2 checked bags") as close
            words = [
                (i + 4 * commas, w)
                for i, (w, commas) in enumerate(before)
                if not any(
                    word in others for word, between in before[i + 1 : i + 3] if between == commas
                )  # (the very word: a "Rental agreement" is no renter's)
            ]
            words += [
                ((i + 3 if i or not counted else 0) + 4 * commas, w) for i, (w, commas) in after
            ]
            near = [d for d, word in words if any(stem_match(label, word) for label in labels)]
            if near:
                distances[(start, end, value)] = min(near)
        if not distances:
            return []
        nearest = min(distances.values())
        return sorted(f for f, distance in distances.items() if distance == nearest)

    def _before(self, start: int) -> list[tuple[str, int]]:
        """The words of the sentence before ``start``, nearest first, each with the number of
        commas between it and ``start``."""
        low = max(self._span[0], start - 80)
        line = self.text.rfind("\n", 0, start) + 1
        if ":" in self.text[line:start]:  # a form's "Sent: 4 November 2024": its own label
            low = max(low, line)
        ends = [m.end() for m in _SENTENCE_END.finditer(self.text, low, start)]
        tokens = _WORD_OR_COMMA.findall(self.text[ends[-1] if ends else low : start].lower())
        return _with_commas(tokens[::-1])

    def _after(self, end: int) -> list[tuple[str, int]]:
        """The words of the sentence after ``end``, nearest first, with the commas between."""
        high = min(self._span[1], end + 40)
        stop = _LINE_OR_SENTENCE_END.search(self.text, end, high)
        return _with_commas(
            _WORD_OR_COMMA.findall(self.text[end : stop.start() if stop else high].lower())
        )

    def has(self, kind: str) -> bool:
        """Whether the text holds any value of ``kind``."""
        source, kind = self._scope(kind)
        if source is not self:
            return source.has(kind)
        base, narrow, labels, _ = _parts(kind)
        if base == "string" and narrow in SPANNED:
            return (
                self.usable
                and any(
                    self._may_start(i, narrow) and self._start(i, {}) is not None
                    for i in self._word_range()
                )  # (a row of a lone number has no copy)
                and (not labels or bool(self._label_starts(labels, narrow)))
            )
        return bool(self.values(kind))

    def labelled_starts(self, labels: tuple[str, ...], narrow: str = "") -> list[int]:
        """The words after a ``Label:`` whose words hold one of ``labels``, to the end of
        its line or sentence (``Passenger: Elena Varga`` for ``passenger_name``, ``4.12.1``
        of ``Version: Quillbase Desktop 4.12.1``): where a plain string is copied from when
        the text labels it. Someone's name (``narrow`` proper) is the label's first words,
        past a title: "Salon: 01632 960913 - 22 Mill Lane, Carrowby" labels no name."""
        if not self.labelled:
            return []
        starts = []
        for j, (word, _) in enumerate(self.words):
            if word != ":" or j + 1 >= len(self.words) or not self.words[j][1]:
                continue  # a colon followed by a space (not 09:30)
            nothing = self.words[j + 1][0].lower() in _NOTHING
            if nothing or not self._labels_colon(j, labels):
                continue
            for i in range(j + 1, len(self.words)):
                starts.append(i)
                word, gap = self.words[i]
                if "\n" in gap or (word in ".;!?" and gap):
                    break
                if narrow in PROPERS and word.lower() not in _TITLES and word not in _OPENERS:
                    break  # (the name, or "Mr" and the name, or the name in quotes)
        inside = self._word_range()
        return [i for i in dict.fromkeys(starts) if i in inside and self._starts_copy(i)]

    def _labels_colon(self, j: int, labels: tuple[str, ...]) -> bool:
        """Whether the words before the colon ``j`` (up to four, in its line: "Support on
        all dates:") hold one of ``labels``."""
        phrase = []
        for k in range(j - 1, max(-1, j - 5), -1):
            before, gap = self.words[k]
            if gap == "\n" or not before.isalpha():
                break
            phrase.append(before.lower())
        return any(stem_match(label, w) for label in labels for w in phrase)

    def enumerated(self, labels: tuple[str, ...]) -> list[str]:
        """The items a ``Label:`` of the field lists, as written: after it in its line or
        sentence, apart by commas, semicolons, "and" ("Add-ons: Walnut handle kit, Travel
        pouch"; "Languages: English (native), Yoruba (fluent)" without the brackets), or as
        the marked lines right under it ("Please bring:" / "- Photo ID")."""
        if not self.labelled or not labels or self.window is not None:
            return []
        text = self.text
        for j, (word, gap) in enumerate(self.words):
            if word != ":" or not gap or not self._labels_colon(j, labels):
                continue
            after = self.offsets[j] + 1
            line = text[after : (text.find("\n", after) + 1 or len(text) + 1) - 1]
            if line.strip():
                said = _SENTENCE_STOP.split(line.strip(), maxsplit=1)[0]
                items = [_item(part) for part in _ENUMERATION.split(said)]
            else:
                below = after + len(line) + 1
                items = [
                    _item(text[start:end])
                    for rows, marked in self.row_blocks
                    if marked and not text[below : rows[0][0]].strip(" \t-*\u2022>.)0123456789")
                    for start, end in rows
                ]
            items = list(dict.fromkeys(item for item in items if item))  # each once
            if len(items) >= (2 if line.strip() else 1) and not any(
                item.lower() in _NOTHING for item in items
            ):
                return items  # (one alone is no list: "Version: Quillbase Desktop 4.12.1")
        return []

    def named_starts(self, labels: tuple[str, ...]) -> list[int]:
        """Where a plain string no ``Label:`` names may start, when the text holds a label
        word of its field: the name that word ends ("Wednesday Evening Series", "Harlow Bay
        Sailing Club") or begins ("Hotel Alpenblick"), and the name right after it, past a
        comma or "by" ("Curated by Dr Ines Calloway", "race officer, Jenny Ashdown", "Wind
        SW")."""
        if not self.labelled or not labels:
            return []
        starts = []
        words = self.words
        for j, (word, _) in enumerate(words):
            if not word[0].isalpha() or not any(stem_match(lb, word.lower()) for lb in labels):
                continue
            k = j
            while (
                k
                and words[k - 1][1] == " "
                and words[k - 1][0][0].isupper()
                and words[k - 1][0].lower() not in _GLUE
            ):
                k -= 1
            opens = j == 0 or words[j - 1][1] == "\n" or words[j - 1][0] in ".!?:"
            if word[0].isupper() and (k < j or not opens):
                starts.append(k)  # (at a sentence's start, "Wind" is no name: "Wind SW")
            if k < j:
                continue  # the name it ends is the value, not what follows ("Series, Race 6")
            k = j
            while k + 1 < len(words) and words[k][1] != "\n" and words[k + 1][0] in _PAST:
                k += 1
            following = words[k + 1][0] if k + 1 < len(words) and words[k][1] == " " else ""
            if following[:1].isupper() or (following[:1].isdigit() and word[0].isupper()):
                starts.append(k + 1)
        inside = self._word_range()
        return [i for i in dict.fromkeys(starts) if i in inside and self._starts_copy(i)]

    def says_nothing(self, labels: tuple[str, ...]) -> bool:
        """Whether the text labels the field and gives nothing after the label: "Frame no.:
        not recorded", "Approved by (client): ________", "Contractor: none"."""
        if not self.labelled or not labels:
            return False
        for j in self._word_range():
            word = self.words[j][0]
            if word != ":" or j + 1 >= len(self.words) or not self.words[j][1]:
                continue
            after = self.words[j + 1][0].lower()
            if after not in _NOTHING and set(after) != {"_"}:
                continue
            phrase = []
            for k in range(j - 1, max(-1, j - 6), -1):
                before, gap = self.words[k]
                if gap == "\n":
                    break
                if before.isalpha():
                    phrase.append(before.lower())
                elif before not in ".()":
                    break
            if any(stem_match(label, w) for label in labels for w in phrase):
                return True
        return False

    def _starts_copy(self, i: int) -> bool:
        word = self.words[i][0]
        if i >= 2 and word.isdigit() and self.words[i - 1][0] in ".,:/-":
            (before, gap_before), (_, gap) = self.words[i - 2], self.words[i - 1]
            if before[-1].isdigit() and not gap_before and not gap:
                return False  # inside a number: "50" of 1,250.50, "06" of 2024-06-07
        return (
            (word[0].isalnum() or word[0] == "_" or word in _STARTS)
            and word not in _GLUE
            and not self._is_taken(self.offsets[i])
            and not (self.window is not None and i in self._dates)
            and not self._inside_name(i)
        )

    def _may_start(self, i: int, narrow: str) -> bool:
        """Whether a plain string of ``narrow`` kind may start at word ``i``."""
        if not self._starts_copy(i):
            return False
        return narrow not in PROPERS or (self._capitalised(i) and self._whose(i, narrow))

    def _whose(self, i: int, narrow: str, *, labelled: bool = False) -> bool:
        """Whether the name at word ``i`` may be of whom ``narrow`` says: a person's name is
        no company's, a company's no titled person's, and where the text names a company
        (unless a label says which name it is), a company's."""
        if narrow == PROPER:
            return True
        titled, company, role = self._name_at(i)
        if narrow == PERSON:
            return not company and not role
        return not titled and (company or labelled or not self._names_companies())

    def _name_at(self, i: int) -> tuple[bool, bool, bool]:
        """Whether the run of capitalised words at word ``i`` begins with a title ("Dr",
        "Mrs"), whether it names a company (it holds a word of
        :data:`~._naming.COMPANY_WORDS`: "Cycles", "Ltd"; an ``&`` may join two people),
        and whether it names a role (a word of :data:`~._naming.ROLE_WORDS`: "Specialist
        Orthodontist"; "Customer:" labels a name, but "Ruth:" may be one)."""
        words, end = self.words, min(len(self.words), i + _NAME_WORDS)
        run = [words[i][0]]
        for j in range(i + 1, end):
            word = words[j][0]
            if words[j - 1][1] != " " or not (word[0].isupper() or word in _NAME_GLUE):
                break
            run.append(word)
        while run and run[-1] in _NAME_GLUE:
            run.pop()
        titled = run[0].lower() in _TITLES
        # "Café"; a legal form of two letters in capitals ("Olsson Ror AB", not "As").
        company = [
            _unaccented(w.lower()) in COMPANY_WORDS and (len(w) > 2 or w.isupper() or w == "Co")
            for w in run
        ]
        # A role's every word is one ("Specialist Orthodontist", "Customer"; not "Paul Guest").
        lower = [w.lower() for w in run if w not in _NAME_GLUE]
        role = all(w in ROLE_WORDS or w[:-1] in ROLE_WORDS for w in lower)  # (plurals)
        # (a word alone is no name: "Care is taken", "Hotel" of "Hotel Alpenblick" is)
        named = any(company[1:]) or (company[0] and len(run) > 1 and len(run[0]) > 3)
        return titled, named, role

    def _names_companies(self) -> bool:
        """Whether the text (the row, in a row) names a company where a name may start."""
        key = ("companies", self.window, self.taken)
        if key not in self.memo:
            self.memo[key] = any(
                self._starts_copy(i) and self._capitalised(i) and self._name_at(i)[1]
                for i in self._word_range()
            )
        return bool(self.memo[key])

    def _capitalised(self, i: int) -> bool:
        """Whether a copy starting at word ``i`` starts with a capital letter (past a quote:
        a team called "Null Pointers")."""
        word = self.words[i][0]
        if word in ('"', "'") and i + 1 < len(self.words) and not self.words[i][1]:
            word = self.words[i + 1][0]
        return word[:1].isupper()

    def _label_starts(self, labels: tuple[str, ...], narrow: str) -> list[int]:
        """Where a plain string of ``narrow`` kind starts when the text writes its label
        words: after its ``Label:``, else at the name a label word ends, begins or comes
        before (of someone's name, the capitalised ones only)."""
        starts = self.labelled_starts(labels, narrow) or self.named_starts(labels)
        return [
            i
            for i in starts
            if narrow not in PROPERS
            or (self._capitalised(i) and self._whose(i, narrow, labelled=True))
        ]

    def _named_near(self, labels: tuple[str, ...]) -> bool:
        """Whether a sentence holding one of ``labels`` holds a name past its first word
        ("The work was done by Olsson Ror AB, our contractor"): it may be the one."""
        words, inside = self.words, self._word_range()
        for j in inside:
            if not any(stem_match(label, words[j][0].lower()) for label in labels):
                continue
            low = j
            while low > inside.start and not self._ends_sentence(low - 1):
                low -= 1
            high = j
            while high + 1 < inside.stop and not self._ends_sentence(high):
                high += 1
            if any(self._may_start(i, PROPER) for i in range(low + 1, high + 1) if i != j):
                return True
        return False

    def _ends_sentence(self, i: int) -> bool:
        word, gap = self.words[i]
        return "\n" in gap or (word in ".!?" and bool(gap))

    def _inside_name(self, i: int) -> bool:
        """Whether word ``i`` goes on a capitalised name begun before it in its sentence
        ("Whitfield" of "Oliver Whitfield", "B" of "Auditorium B"): no copy starts there.
        A title ("Dr", "Mr") or a sentence's first word ("Dear", "Thanks") begins none."""
        if i == 0 or not self.words[i][0][0].isupper():
            return False
        before = self.words[i - 1][0]
        between = self.text[self.offsets[i - 1] + len(before) : self.offsets[i]]
        if between != " " or not before.isalpha() or not before[0].isupper():
            return False  # (not across a table's columns: "Hamish Tully      0:55:10")
        if before.lower() in _TITLES or (before.isupper() and before.lower() in _GLUE):
            return False  # ("NEW AT THE HALVERSTON MUSEUM": a heading in capitals)
        opens = i == 1 or self.words[i - 2][1] == "\n" or self.words[i - 2][0] in ".!?:"
        return not opens or self._after_marker(i - 1)

    def _after_marker(self, i: int) -> bool:
        """Whether word ``i`` comes right after a line's number marker ("1. Tomasz Wielgosz"):
        it begins no sentence, so a name may begin there."""
        if i < 2 or self.words[i - 1][0] not in ".)" or self.words[i - 2][1]:
            return False
        number = self.words[i - 2][0]
        return number.isdigit() and (i == 2 or "\n" in self.words[i - 3][1])

    @property
    def _dates(self) -> frozenset[int]:
        """The words inside a date the text writes, and a weekday right before one: no
        row's text starts there ("Mon 17 Feb" / "08:00-16:30 - hedge cutting"; a plain
        string may be a clock time: "finish_time")."""
        key = ("_dates",)
        if key not in self.memo:
            spans = [(start, end) for start, end, _ in self._dated()]
            inside = {
                i
                for i, at in enumerate(self.offsets)
                if any(start <= at < end for start, end in spans)
            }
            inside |= {
                i
                for i, (word, _) in enumerate(self.words)
                if word.lower().rstrip(".") in _WEEKDAYS
                and (i + 1 in inside or (i + 2 in inside and self.words[i + 1][0] == ","))
            }
            self.memo[key] = frozenset(inside)
        return cast(frozenset[int], self.memo[key])

    def kind_for(self, kind: str) -> str | None:
        """``kind`` if the text holds a value of it, else its base kind if the text holds one
        of that (a field named ``phone`` in a text with no phone number), else None."""
        base, narrow, labels, others = _parts(kind)
        wanted = [kind, _kind(base, "", labels, others), _kind(base, narrow, ()), base]
        if narrow in PROPERS:  # someone's name, where no label word is before one
            wanted[1:3] = wanted[2:0:-1]
        if narrow in (PERSON, ORGANISATION):  # then anyone's (a label word may be in a
            # name of the other kind: "groomer" in "Pawfect Finish Grooming")
            wanted[2:2] = [_kind(base, PROPER, labels, others), _kind(base, PROPER, ())]
        for candidate in dict.fromkeys(wanted if self.by_name else [base]):
            if self.has(candidate):
                return self.scoped(candidate)
        return None

    def given(self, kind: str) -> bool:
        """Whether the text labels a value of ``kind`` beyond doubt: a ``Label:`` before a
        plain string, or a value with one of the field's label words right before it (or
        one word between) — then a nullable field is not null."""
        source, kind = self._scope(kind)
        if source is not self:
            return source.given(kind)
        base, narrow, labels, _ = _parts(kind)
        if self.by_name and base == "string" and narrow in _FOUND_BY_KIND:
            return self.has(kind)  # the text has a phone number: it is the field's
        if not self.by_name or not labels or not self.labelled:
            return False
        if base == "string" and (narrow == "" or narrow in PROPERS):
            return bool(self.labelled_starts(labels, narrow))
        if base in ("date", "time"):
            found = self._dated() if base == "date" else self._timed()
        elif base.endswith(("integer", "number")):
            found = self._numbers_of(narrow, integers=base.endswith("integer"))
        elif base == "string":
            found = [f for f in self._strings(narrow) if not self._is_taken(f[0])]
        else:
            return False
        return any(
            any(stem_match(label, word) for label in labels)
            for start, _, _ in self._inside(found)
            for word, commas in self._before(start)[:2]
            if not commas
        )

    def truth(self, name: str) -> bool | None:
        """A yes/no field's answer where the text mentions its subject: true, or false if the
        mention is negated ("contains no batteries", "Non-smoker", "sauna not included");
        None where the text does not mention it (the model's to answer)."""
        if not self.by_name:
            return None
        subject = [w for w in name_words(name) if w not in _YES_NO_WORDS and len(w) > 2]
        if not subject:
            return None
        words = [m.group(0).lower() for m in _TEXT_WORD.finditer(self._text)]
        if not all(any(_same_word(part, word) for word in words) for part in subject):
            if self.window is not None and dataclasses.replace(self, window=None).truth(name):
                return False  # another row is "SOLD OUT", this one is not
            return None  # "course_record_broken" and no "broken": the model's to say
        clause = _clause_numbers(self._text)
        named = [w for w in name_words(name) if len(w) > 2]

        def fit(i: int) -> tuple[bool, int]:
            """A mention's clause holds the whole subject ("cannot be renewed online" for
            can_renew_online, over "renewed twice"), and the most of the name ("Serving staff
            not required" for staff_required, over "staff lunch")."""
            near = words[max(0, i - 3) : i + 4]
            same = [w for k, w in enumerate(words) if clause[k] == clause[i]]
            return (
                all(any(_same_word(p, w) for w in near) for p in subject),
                sum(any(_same_word(p, w) for w in same) for p in named),
            )

        mentions = [i for i, word in enumerate(words) if _same_word(subject[0], word)]
        i = max(mentions, key=fit)  # (the first of the best)
        if not fit(i)[0]:
            return None  # its words apart ("own padlock" and "Store:"): the model's to say
        mine = [k for k, c in enumerate(clause) if c == clause[i]]  # its clause's words
        last = max(
            k for k in mine if i <= k < i + 4 and any(_same_word(p, words[k]) for p in subject)
        )
        # Negated before it in its clause ("does not cover netting or night fishing"), or
        # right after its subject ("Priority boarding is not included", "Password given: no").
        before = {words[k] for k in mine if i - 6 <= k < i}
        after = {words[k] for k in mine if last < k <= last + 3}
        return not (_NEGATIONS & before or _NEGATED_AFTER & after)

    def null_when_absent(self, kind: str) -> bool:
        """Whether a nullable field of narrowed ``kind`` is null when the text holds no value
        of it: a phone field and no phone number, a ``_km`` field and no distance (but an
        identifier may be all letters)."""
        source, kind = self._scope(kind)
        if source is not self:
            return source.null_when_absent(kind)
        base, narrow, labels, _ = _parts(kind)
        if not self.by_name or self.has(kind):
            return False
        if narrow == BIRTH:
            return True  # (no date the text says is a birth date)
        if narrow in PROPERS and labels:  # "landlord's written permission seen"
            return self._speaks_of(labels) and not self._named_near(labels)
        if narrow in _NOT_NULL_WHEN_ABSENT:
            return False
        if base == "string":
            return True
        # A number: only if the text does not name it either ("Mileage: 86,500" is one).
        return not self._speaks_of(labels)

    def _speaks_of(self, labels: tuple[str, ...]) -> bool:
        """Whether the text writes one of ``labels`` (in any form: "landlord's")."""
        words = set(_WORD_OR_COMMA.findall(self._text.lower())) - {","}
        return any(stem_match(label, word) for label in labels for word in words)

    def rules(self, kinds: Iterable[str]) -> dict[str, str]:
        """GBNF rules for ``kinds`` (:func:`rule_name`, and what they use), by rule name."""
        rules: dict[str, str] = {}
        for scoped in kinds:
            source, kind = self._scope(scoped)
            base, narrow, labels, _ = _parts(kind)
            if base == "string" and narrow in SPANNED:
                rules.update(source.span_rules(narrow))
                root = source._rule(f"{narrow}string")
                if labels:
                    named = source._label_starts(labels, narrow)
                    step = _STEPS[narrow]
                    firsts = [source._start(i, rules, step) for i in named]
                    starts = " | ".join(filter(None, firsts))
                    rules[rule_name(scoped)] = f'"\\"" ({starts}) "\\""' if starts else root
                elif rule_name(scoped) != root:
                    rules[rule_name(scoped)] = root
                continue
            alternatives = " | ".join(_literal(v) for v in source.values(kind))
            if kind.startswith(("integer", "number")):
                rules[rule_name(scoped)] = f'"-"? ({alternatives})'
            else:
                rules[rule_name(scoped)] = alternatives
        return rules

    def _rule(self, name: str) -> str:
        """The name of one of :meth:`span_rules`'s rules (a row's rules are its own)."""
        if self.window is None:
            return f"copy-{name}"
        return f"copy-at{self.window[0]}-{self.window[1]}-{name}"

    def narrowed(self, values: list[Any]) -> list[Any]:
        """An enum's ``values``, only those the text mentions (:meth:`mentioned`) when it
        mentions some but not all; all of them otherwise."""
        if not self.mentions or not all(isinstance(v, str) for v in values):
            return values
        found = self.mentioned(values)
        return found if 0 < len(found) < len(values) else values

    def mentioned(self, values: Iterable[str]) -> list[str]:
        """Which of an enum's ``values`` the text mentions: every word of the value (``water``
        and ``damage`` of ``water_damage``) begins a word of the text (``damaged``). A range
        of weekdays mentions each day in it ("Open Tuesday to Sunday", "Mon-Fri")."""
        words = {word.lower() for word in re.findall(r"[^\W_]+", self._text)}
        for match in _WEEKDAY_RANGE.finditer(self._text):
            first, last = (_DAYS.index(match[k].lower()[:3]) for k in (1, 2))
            days = [(first + n) % 7 for n in range((last - first) % 7 + 1)]
            words |= {name[day] for day in days for name in (_DAYS, _DAYS_FULL)}  # Tue, tuesday
        found = []
        for value in values:
            parts = [p for p in _name_parts(value) if p not in _VAGUE]
            if parts and all(any(stem_match(part, word) for word in words) for part in parts):
                found.append(value)
        return found

    @_read_once
    def _strings(self, narrow: str) -> list[_Found]:
        """The text's values of a narrowed string kind (:mod:`._naming`), where they are."""
        text = self.text
        if narrow == "email":
            return _spans(_EMAILS.finditer(text))
        if narrow == "url":
            return [
                (m.start(), m.end(), m.group(0).rstrip(".,;:!?)")) for m in _URLS.finditer(text)
            ]
        if narrow == "phone":
            return [
                (m.start(), m.end(), m.group(0))
                for m in _PHONES.finditer(text)
                if 7 <= sum(c.isdigit() for c in m.group(0)) <= 15 and not _is_date(m.group(0))
            ]
        if narrow == "currency":
            codes = [
                (m.start(), m.end(), m.group(1) or m.group(2))
                for m in _CODES.finditer(text)
                if (m.group(1) or m.group(2)) in CURRENCY_CODES
            ]
            signs = [(m.start(), m.end(), _SIGNS[m.group(1)]) for m in _SIGNED.finditer(text)]
            return codes + signs
        if narrow in ("origin", "destination"):
            # The places either side of an arrow, up to a comma or a bracket: "Frankfurt" of
            # "Flight NV 418, Frankfurt (FRA) -> New York (JFK), 2025-03-18".
            group = "a" if narrow == "origin" else "b"
            return [(m.start(group), m.end(group), m.group(group)) for m in _JOURNEY.finditer(text)]
        if narrow == "identifier":
            # Words with a digit (A-55812, 5521), upper-case codes (LHR, QX7T2M), two-part
            # codes (LH 1234, SW1A 1AA) and digit groups (3004 7712 9, 84213 5567 RR0001).
            text = self._without_dates()
            atoms = [_atom(m) for m in re.finditer(r"\S+", text)]
            found = [
                atom
                for atom in atoms
                if _identifier_like(atom[2])
                and not text.startswith(":", atom[1])  # not a label: "Member ID: PBX-553091"
                and not _money_code(text, *atom)
            ]
            pairs = [
                (m.start(), m.end(), f"{m.group(1)} {m.group(2)}")
                for m in _PAIRED.finditer(text)
                if m.group(1) not in CURRENCY_CODES  # "EUR 900" is an amount
            ]
            groups = [g for g in _spans(_GROUPS.finditer(text)) if not _is_date(g[2])]
            money = [g for g in groups if _money_code(text, *g)]  # "SEK 68 000"
            groups = [g for g in groups if g not in money]
            # Words in capitals: three or more are a heading ("RECEIPT FOR INCOME TAX
            # PURPOSES", "KITTIWAKE HARBOUR MARINA", "SMITH & SONS LTD"); two a code
            # ("reference ADEYEMI MAR"), or a name and its code ("MANCHESTER MAN"): both kept,
            # but not a label ("BOOKING REF: QX7T2M").
            runs = _capital_runs(atoms, text)
            headings = [r[:2] for r in runs if r[3] > 2]
            found = _outside(found, [m[:2] for m in money] + headings)
            # Not a phone number's parts ("Call 07700 900412": no booking reference).
            phones = [f[:2] for f in self._strings("phone") if _PHONE_LIKE.fullmatch(f[2])]
            codes = [r[:3] for r in runs if r[3] == 2 and not text.startswith(":", r[1])]
            return _outside(_longest(found + pairs + groups) + codes, phones)
        return []

    def _without_dates(self) -> str:
        """The text with its dates blanked (their numbers are not codes)."""
        text = self.text
        for pattern in _DATES:
            text = pattern.sub(lambda m: " " * len(m.group(0)), text)
        return text

    @_read_once
    def _amounts(self, *, integers: bool) -> list[_Found]:
        """The numbers the text writes with a currency sign or code (``$139.81``,
        ``SEK 68,000``)."""
        found = [
            f
            for f in self._numbers(integers=integers)
            if re.fullmatch(r"[\d,]+\.\d\d", self.text[f[0] : f[1]])
        ]
        for match in _MONEY.finditer(self.text):
            code = match.group("code") or match.group("code2")
            if code and code.upper() not in CURRENCY_CODES:
                continue
            number = "n" if match.group("n") else "n2"
            fraction = match.group("f" if number == "n" else "f2")
            value = _plain(match.group(number), fraction, integers=integers)
            if value is not None:
                found.append((match.start(number), match.end(number), value))
        return list(dict.fromkeys(found))

    @_read_once
    def _numbers_in(self, unit: str, *, integers: bool) -> list[_Found]:
        """The numbers the text writes with ``unit`` (after it, or before for currencies)."""
        spelled = "|".join(re.escape(s) for s in sorted(UNITS[unit], key=len, reverse=True))
        number = r"(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?P<f>\.\d+)?"
        words = "|".join(_NUMBER_WORDS)
        patterns = [
            rf"(?<![\w.,]){number}\s?-?\s?(?:{spelled})(?![^\W_])",
            rf"\b(?P<w>{words})\s?-?\s?(?:{spelled})(?![^\W_])",
        ]
        if unit in CURRENCY_UNITS:
            patterns.append(rf"(?<![^\W\d_])(?:{spelled})\s?{number}")
        found: list[_Found] = []
        for pattern in patterns:
            for match in re.finditer(pattern, self.text, re.IGNORECASE):
                parts = match.groupdict()
                if parts.get("w"):
                    said = _NUMBER_WORDS.get(parts["w"].lower())  # (not "NİNE": no number)
                    value: str | None = None if said is None else str(said)
                else:
                    value = _plain(parts["n"], parts.get("f"), integers=integers)
                if value is not None:
                    found.append((match.start(), match.end(), value))
        return sorted(found)

    def span_rules(self, narrow: str = "") -> dict[str, str]:
        """``copy-string``: a JSON string holding a run of the text's words (not a number
        alone: ``10`` of "10am" is no support act, ``10 Downing Street`` is an address).
        With ``cells`` (``copy-cellstring``, a row's one text field): a run that ends where
        its cell does, not at a comma inside it ("A4 copier paper, box", "Full cream milk
        2L"). Of someone's name (:data:`PROPER`, ``copy-properstring``): a run from a
        capitalised word that does not stop inside a name ("Aoife Brennan", not "Aoife")."""
        cells, proper = narrow == CELL, narrow in PROPERS
        rules: dict[str, str] = {}
        starts = []
        inside = self._word_range()
        step = _STEPS[narrow]
        for i in inside:
            word, gap = self.words[i]
            text = _literal(json.dumps(word, ensure_ascii=False)[1:-1])
            if (
                i + 1 < inside.stop
                and not (gap and self.words[i + 1][0] == "(")
                and not (self.window is not None and self._column_break(i))
                and (gap != "\n" or self._wraps(i))
                and not (proper and self.words[i + 1][0] == ",")  # "Gordon Ashdown, Treasurer"
            ):
                # A line break between the words may be written as a space or as one; a
                # copy does not run on into brackets ("Elena Marsh (book)", "Frankfurt (FRA)").
                space = '(" " | "\\\\n")' if gap == "\n" else _literal(gap)
                following = self._rule(f"{step}{i + 1}")
                link = f"{space} {following}" if gap else following
                ends = (not cells or self._cell_ends(i)) and not (
                    proper and self._inside_name(i + 1)
                )
                rules[self._rule(f"{step}{i}")] = f"{text} ({link})" + ("?" if ends else "")
            else:
                rules[self._rule(f"{step}{i}")] = text
            if self._may_start(i, narrow):
                starts.append(self._start(i, rules, step))
        rules[self._rule(f"{narrow}string")] = (
            '"\\"" (' + " | ".join(filter(None, starts)) + ') "\\""'
        )
        return rules

    def _wraps(self, i: int) -> bool:
        """Whether the line word ``i`` ends is a paragraph's, wrapped into the next line (a
        long line, or one running on: :func:`~._rows.runs_on`): a copy crosses no other line
        break (a tour's support act does not run on into its dates)."""
        text, end = self.text, self.offsets[i] + len(self.words[i][0])
        line = text[text.rfind("\n", 0, end) + 1 : end]
        below = text.find("\n", end) + 1
        stop = text.find("\n", below) if below else -1
        following = text[below : stop if stop >= 0 else len(text)] if below else ""
        if not following.strip():
            return False  # a blank line: a new paragraph
        return len(line.rstrip()) >= WRAPPED_WIDTH or runs_on(line.rstrip(), following)

    def _cell_ends(self, i: int) -> bool:
        """Whether a row's text cell may end after word ``i`` though it goes on: before a
        count or a price ("x3", "@ 189.00", "= 756.00", "- $3.10"), a bracket or a slash."""
        following = self.words[i + 1][0]
        if following in ("@", "=", "\u00d7", "-", "\u2013", "/", "(") and self.words[i][1]:
            return True
        return bool(_COUNT_WORD.fullmatch(following))

    def _column_break(self, i: int) -> bool:
        """Whether a row's column ends after word ``i``: a tab, two spaces, a ``|``, or a
        dash with a space either side ("Halle Kessel, Hamburg - DE"): a row's copy is a cell."""
        end = self.offsets[i] + len(self.words[i][0])
        gap = self.text[end : self.offsets[i + 1]]
        if "\t" in gap or "  " in gap:
            return True
        following = self.words[i + 1][0]
        if following == "|":
            return True
        if following == "." and gap and self.words[i + 1 : i + 3] == ((".", ""), (".", "")):
            return True  # a leader: "Ridge re-pointing, 9 m ........ £495.00"
        if following in ("-", "\u2013", "\u2014") and gap and i + 2 < len(self.words):
            after = self.offsets[i + 1] + len(following)
            return after < self.offsets[i + 2]
        return False

    def _start(self, i: int, rules: dict[str, str], step: str = "w") -> str | None:
        """The rule a copy starting at word ``i`` begins with: the word's own, or for a number
        the number and the word after it, which must begin with a letter (None if it does
        not); ``rules`` gets that rule."""
        if not self.words[i][0].isdigit():
            return self._rule(f"{step}{i}")
        end = self._word_range().stop
        j, joined, dots = i, False, ""
        while (
            j + 2 < end
            and not self.words[j][1]
            and self.words[j + 1][0] in ".,:/-"
            and not self.words[j + 1][1]
            and self.words[j + 2][0].isdigit()
        ):
            joined = joined or self.words[j + 1][0] not in ".," or self.words[j + 1][0] == dots
            dots = self.words[j + 1][0] if self.words[j + 1][0] == "." else dots
            j += 2  # 1,250.50; or 19:00, 2:31:07, 12/08/2024, 4.12.1: not a number alone
        if j + 1 < end and self.words[j + 1][0] == "%" and not self.words[j][1]:
            j, joined = j + 1, True  # 20%
        number = "".join(word + g for word, g in self.words[i:j]) + self.words[j][0]
        text = _literal(json.dumps(number, ensure_ascii=False)[1:-1])
        gap = self.words[j][1]
        space = '(" " | "\\\\n")' if gap == "\n" else _literal(gap)
        following = self._rule(f"{step}{j + 1}")
        more = f"{space} {following}" if gap else following
        name = self._rule(f"s{i}" if step == "w" else f"s{step}{i}")
        if j + 1 >= end or (self.window is not None and self._column_break(j)):
            return None if not joined else _add(rules, name, text)  # "1    Mini digger"
        if joined:  # the whole of it, then anything after
            return _add(rules, name, f"{text} ({more})?")
        if not self.words[j + 1][0][0].isalpha():
            return None
        return _add(rules, name, f"{text} {more}")

    def _zeros(self, labels: tuple[str, ...]) -> list[_Found]:
        """Where the text says there is none of what a label word names: "no" right before
        it ("no checked bags"; not "no." or "no 12", a number's abbreviation), "none",
        "nil", "waived" or "free of charge" right after it ("Joining fee: waived"; not
        "Other pets: none  Children at home: one")."""
        found: list[_Found] = []
        for match in _ZERO.finditer(self.text):
            if match.group(0).lower() == "no":
                near = self._after(match.end())[:3]
            else:
                near = self._before(match.start())[:4]
            if any(stem_match(label, word) for label in labels for word, _ in near):
                found.append((match.start(), match.end(), "0"))
        return found

    @_read_once
    def _numbers(self, *, integers: bool) -> list[_Found]:
        """The numbers the text writes, but not the parts of a clock time, a numeric date or
        a phone-like run of digit groups (their years are kept: a year is often asked for)."""
        text = _NOT_QUANTITIES.sub(lambda m: " " * len(m.group(0)), self.text)
        found: list[_Found] = []
        for match in _NUMERIC_DATE.finditer(self.text):
            year = "year" if match.group("year") else "year2"
            found.append((match.start(year), match.end(year), match.group(year)))
        for match in _NUMBER.finditer(text):
            value = _plain(match.group(1), match.group(2), integers=integers)
            if value is not None:
                found.append((match.start(), match.end(), value))
        for match in _NUMBER_WORD.finditer(self.text):
            number = _word_number(match)
            if number is not None:
                found.append((match.start(), match.end(), str(number)))
        return sorted(found)

    def dates(self) -> list[str]:
        """Every date the text writes, in ISO form, in order of appearance."""
        return _unique(iso for _, _, iso in self._dated())

    @_read_once
    def _dated(self) -> list[_Found]:
        """The dates the text writes, where (a date of uncertain order twice, both ways)."""
        found: list[tuple[int, int, list[str]]] = []
        taken: list[tuple[int, int]] = []
        pending: list[tuple[int, int, int, int]] = []  # (start, end, month, day), no year
        for pattern in _DATES:
            for match in pattern.finditer(self.text):
                if any(s < match.end() and match.start() < e for s, e in taken):
                    continue
                parts = match.groupdict()
                if parts.get("month") and _month(parts["month"]) is None:
                    continue  # "APRİL": matched ignoring case, but no month's name
                taken.append((match.start(), match.end()))
                if parts.get("iso_y"):
                    found.append(
                        (
                            match.start(),
                            match.end(),
                            _iso(parts["iso_y"], parts["iso_m"], parts["iso_d"]),
                        )
                    )
                elif parts.get("month"):
                    month, day = _month(parts["month"]) or 0, int(parts["day"])
                    if parts.get("year"):
                        year = parts["year"]
                        if len(year) == 2:  # 21NOV24; 12MAR85 (a birth date) is 1985
                            year = ("19" if int(year) >= _CENTURY_PIVOT else "20") + year
                        found.append((match.start(), match.end(), _iso(year, month, day)))
                    else:
                        pending.append((match.start(), match.end(), month, day))
                else:
                    a, b, year = int(parts["a"]), int(parts["b"]), parts["year"]
                    readings = _iso(year, b, a) + _iso(year, a, b)  # day first, then month first
                    if len(readings) == 2 and self._month_first is not None:
                        readings = readings[1:] if self._month_first else readings[:1]
                    found.append((match.start(), match.end(), readings))
        years = [(pos, iso[:4]) for pos, _, isos in found for iso in isos[:1]]
        if not years:  # "European Tour 2025 ... Thu 8 May": the text's own year
            years = [(m.start(), m.group(0)) for m in _BARE_YEAR.finditer(self.text)]
        for pos, end, month, day in pending:
            if years:
                year = min(years, key=lambda item: abs(item[0] - pos))[1]
                found.append((pos, end, _iso(year, month, day)))
        return [(pos, end, iso) for pos, end, isos in sorted(found) for iso in isos]

    @functools.cached_property
    def _month_first(self) -> bool | None:
        """How the text orders its numeric dates: as one of them says (``27/09/2024``), else
        month first for a text in dollars only, day first for one with pounds or euros
        (``09/10/2024`` on a British bill is 9 October); None if nothing says."""
        for match in _DAY_MONTH.finditer(self.text):
            a, b = int(match.group(1)), int(match.group(2))
            if a > 12 >= b:
                return False
            if b > 12 >= a:
                return True
        dollars = bool(_US_DOLLARS.search(self.text))
        others = bool(_NOT_US_MONEY.search(self.text))
        if dollars != others:
            return dollars
        return None

    def times(self) -> list[str]:
        """Every clock time the text writes, as ``HH:MM``."""
        return _unique(clock for _, _, clock in self._timed())

    @_read_once
    def _timed(self) -> list[_Found]:
        found: list[_Found] = []
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
                found.append((match.start(), match.end(), clock))
        return sorted(found)


def _range_ends(text: str, found: list[_Found], end: str) -> list[_Found]:
    """The values of ``found`` that start (``end="start"``) or end a range with the next or
    the one before: ``10:00-16:00``, ``between 18:00 and 19:00``, ``12 April - 31 August``."""
    places = sorted({(f[0], f[1]) for f in found})  # a date read two ways is one place
    out: list[_Found] = []
    for first, second in itertools.pairwise(places):
        if _RANGE.fullmatch(text, first[1], second[0]):
            place = first if end == "start" else second
            out.extend(f for f in found if (f[0], f[1]) == place)  # each reading of it
    return list(dict.fromkeys(out))


# What joins the two ends of a range.
_RANGE = re.compile(r"\s*(?:-|\u2013|\u2014|to|until|till|and|through|thru)\s*", re.IGNORECASE)


def _minimum(node: Mapping[str, Any]) -> float | None:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    return float(low) if isinstance(low, (int, float)) and not isinstance(low, bool) else None


def _non_negative(node: Mapping[str, Any]) -> bool:
    low = _minimum(node)
    return low is not None and low >= 0


def _positive_minimum(node: Mapping[str, Any]) -> bool:
    low = _minimum(node)
    return low is not None and (low > 0 or ("exclusiveMinimum" in node and low >= 0))


def _word_number(match: re.Match[str]) -> int | None:
    """The number a :data:`_NUMBER_WORD` match writes (None for a match only a case-blind
    match makes: "NİNE" is matched as "nine" but lower-cases to no number word)."""
    if match.group("tens"):
        tens = _NUMBER_WORDS.get(match.group("tens").lower())
        unit = _NUMBER_WORDS.get(match.group("unit").lower())
        return None if tens is None or unit is None else tens + unit
    return _NUMBER_WORDS.get(match.group("word").lower())


def _month(name: str) -> int | None:
    """The month a name or an abbreviation of it written in a date is (None for "APRİL")."""
    return _MONTHS.get(name.lower().rstrip("."))


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


#: Narrowed strings that are the field's when the text holds one (a text's phone number).
_FOUND_BY_KIND = frozenset({"email", "phone", "url", "currency", "origin", "destination"})
#: Narrowed kinds a text may not write as such though it gives the value (an identifier of
#: letters, a count without "x", a journey without an arrow).
_NOT_NULL_WHEN_ABSENT = frozenset({"", *PROPERS, "identifier", "count", "origin", "destination"})
# Dollars of the United States ("$40", "USD", "US$"), and money of day-first countries (pounds,
# euros, Australian and New Zealand dollars...).
_US_DOLLARS = re.compile(r"(?<![A-Z])\$|\bUSD\b|\bUS\$")
_NOT_US_MONEY = re.compile(r"[£€]|\b(?:GBP|EUR|AUD|NZD|INR|ZAR)\b|\b(?:A|NZ|AU)\$")
#: Two-digit years from this one on are of the 1900s.
_CENTURY_PIVOT = 70
_DAY_MONTH = re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.]\d{4}\b")
_EMAILS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URLS = re.compile(
    r"\bhttps?://[^\s<>\"']+|\bwww\.[^\s<>\"']+"
    r"|(?<![@\w.-])(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|app|co|uk|de|fr|es|it|nl|eu|info)"
    r"(?:/[^\s<>\"']*)?(?![\w@])",
    re.IGNORECASE,
)
# Digit groups, each apart from the next by at most one space, dot, dash or slash; a group in
# brackets only when they close: "+44 (0)20 7946 0321", "0664/5552871" (not "2871. 3").
_PHONES = re.compile(r"(?<![\w+])\+?(?:\(\d+\)|\d+)(?:[ ./-]?(?:\(\d+\)|\d+))+(?!\w)")
# A phone number beyond doubt: from a "+", a bracket or a 0, with 9-15 digits ("07700 900412",
# "(707) 555-0148"; an account number "3004 7712 9" is none).
_PHONE_LIKE = re.compile(r"(?=[+(0])(?=(?:\D*\d){9,15}\D*$)[\d +().-]+")
# A three-letter code next to an amount (USD 86.40, 68,000 SEK), and a currency sign before one.
_CODES = re.compile(r"\b([A-Z]{3})\s?(?=\d)|(?<=\d)\s?([A-Z]{3})\b")
_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_SIGNED = re.compile(r"([$€£¥₹])\s?\d")
_AMOUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)$")
# Two-part identifiers: "LH 1234", "SW1A 1AA".
_PAIRED = re.compile(
    r"(?<!\S)([A-Z]{1,3}|(?=[A-Z0-9]{0,3}[A-Z])[A-Z0-9]{2,4})"
    r"\s(\d[A-Z0-9]{0,5}(?: \d[A-Z0-9]{0,5})*)(?=[.,;:!?)]?(?:\s|$))"
)
# A journey: a place, an arrow, a place (each without a bracketed code after it).
_PLACE = r"[^\W\d_](?:[^,;:()\n<>=\u2192-]|-(?!-*>))*?"
_JOURNEY = re.compile(
    rf"(?P<a>{_PLACE})\s*(?:\([^()\n]*\)\s*)?(?:->|-->|=>|\u2192| > )\s*"
    rf"(?P<b>{_PLACE})(?=\s*(?:[,;:(\n]|->|=>|\u2192| > |$))"
)
# Where a labelled enumeration's items part ("Walnut handle kit, Travel pouch and a mug").
_ENUMERATION = re.compile(r"\s*[,;]\s*|\s+(?:and|or)\s+", re.IGNORECASE)
# Where a labelled line's sentence ends ("... French (intermediate). Happy to relocate").
_SENTENCE_STOP = re.compile(r"(?<=[^\s.]{2})\.(?:\s|$)")
# A count written after a row's text: "x3", "x12".
_COUNT_WORD = re.compile(r"[x\u00d7]\d{1,4}")
# A count written with "x" (or the multiplication sign): "2 x milk", "3x", "x6".
_COUNTED = re.compile(
    r"(?<![\w.,])(?P<n>\d{1,4})\s?[x\u00d7](?![^\W\d_])|\b[x\u00d7]\s?(?P<n2>\d{1,4})\b"
)
# A currency code right before a value, a space between ("EUR 900").
_CODE_BEFORE = re.compile(r"(?<![^\W\d_])([A-Z]{3}) ?$")
_GROUPS = re.compile(r"(?<![\w.,+-])\d{2,}(?:[ -]\d+)+(?: [A-Z]{1,3}\d+)?(?![\w.,-]?\d)")
_CLOCK_12 = re.compile(r"\d{1,2}(?:[.:]\d{2})?(?:am|pm|a\.m\.|p\.m\.)", re.IGNORECASE)
_CLOCK_OR_DATE = re.compile(r"^(?:\d{1,2}:\d{2}(?::\d{2})?|\d{4}-\d{1,2}-\d{1,2})$")
_VAGUE = frozenset({"and", "or", "the", "of", "for", "with", "non", "not", "no", "other", "none"})


#: A value found in the text: where it starts and ends, and its JSON text (or string).
_Found = tuple[int, int, str]
# The end of a paragraph or a sentence (not "No." nor "Ltd."): a label and its value are not
# apart by one.
_SENTENCE_END = re.compile(r"\n\s*\n|(?:(?<=[a-z]{4})|(?<=[A-Z0-9]{3})|(?<=\d))[.!?](?:\s|$)|;\s")
_TEXT_WORD = re.compile(r"[^\W_]+(?:'t)?")
# Words of a yes/no field's name that are not its subject ("contains_batteries": batteries).
_YES_NO_WORDS = frozenset(
    [
        "is",
        "has",
        "have",
        "contains",
        "contain",
        "includes",
        "include",
        "included",
        "allowed",
        "available",
        "required",
        "accepted",
        "enabled",
        "free",
        "can",
        "does",
        "with",
        "are",
        "was",
        "were",
        "any",
        "provided",
        "given",
        "permitted",
        "needed",
        "offered",
        "supplied",
    ]
)
_NEGATIONS = frozenset({"no", "not", "non", "without", "never", "nor", "cannot", "isn't", "don't"})
_NEGATED_AFTER = frozenset({"not", "excluded", "unavailable", "extra", "no"})
# Where a yes/no mention's clause ends: a sentence's or line's end, a comma, a "but".
_CLAUSE_END = re.compile(r"[.!?;,](?=\s|$)|\n|\b(?:but|however|whereas|although)\b", re.IGNORECASE)
# Where a text says there is none of something (CopySource._zeros).
_ZERO = re.compile(
    r"(?i)\b(?:no\b(?!\s*[.:#\d])|none\b|nil\b|waived\b|free of charge\b|at no charge\b)"
)
# What a text writes after a label for "not given": "Contractor: none".
_NOTHING = frozenset({"none", "n", "na", "nil", "tbc", "tba", "tbd", "unknown", "not", "no", "-"})
_LINE_OR_SENTENCE_END = re.compile(r"\n|" + _SENTENCE_END.pattern)
_BARE_YEAR = re.compile(r"(?<![\d,.$€£¥])(?:19|20)\d\d(?!\d|[.,]\d)")
_WORD_OR_COMMA = re.compile(r"[^\W_]+|,")


def _atom(match: re.Match[str]) -> _Found:
    """A word without the punctuation around it (and a leading ``#``), where it is."""
    word = match.group(0)
    start = len(word) - len(word.lstrip(".,;:!?()[]{}\"'#"))
    stripped = word.strip(".,;:!?()[]{}\"'").lstrip("#")
    return (match.start() + start, match.start() + start + len(stripped), stripped)


def _with_commas(tokens: list[str]) -> list[tuple[str, int]]:
    """Words, each with the number of commas before it in ``tokens``."""
    out, commas = [], 0
    for token in tokens:
        if token == ",":
            commas += 1
        else:
            out.append((token, commas))
    return out


_MONEY = re.compile(
    r"(?:(?P<sign>[$€£¥₹])|\b(?P<code>[A-Z]{3})\s?)(?P<n>\d{1,3}(?:,\d{3})+|\d+)(?P<f>\.\d+)?"
    r"|(?<![\w.,])(?P<n2>\d{1,3}(?:,\d{3})+|\d+)(?P<f2>\.\d+)?\s?(?:(?P<code2>[A-Z]{3})\b|[€£])"
)


def _add(rules: dict[str, str], name: str, body: str) -> str:
    rules[name] = body
    return name


def _longest(found: list[_Found]) -> list[_Found]:
    """``found`` without a value that a longer one holds (``GB`` and ``1193`` of
    ``GB 284 1193 07``): a small model copies a part and stops."""
    return [
        f
        for f in found
        if not any(g[0] <= f[0] and f[1] <= g[1] and g[1] - g[0] > f[1] - f[0] for g in found)
    ]


def _spans(matches: Iterable[re.Match[str]]) -> list[_Found]:
    return [(m.start(), m.end(), m.group(0)) for m in matches]


def _plain(whole: str, fraction: str | None, *, integers: bool) -> str | None:
    """A number as the text writes it (``1,234.50``) in JSON (``1234.50``); None for a
    fraction where an integer is wanted."""
    fraction = _ascii_digits(fraction or "")
    digits = _ascii_digits(whole.replace(",", ""))
    if fraction is None or not digits or (integers and fraction.strip(".0")):
        return None  # (a "²" is a digit, but of no number)
    whole = digits.lstrip("0") or "0"
    return whole if integers or not fraction else whole + fraction


def _money_code(text: str, start: int, end: int, value: str) -> bool:
    """Whether ``value`` (at ``start``-``end`` of ``text``) is a currency code next to an
    amount ("EUR 900", "68,000 SEK") or the amount after a code: not a code (an airport's
    "MAD" alone is one)."""
    if value in CURRENCY_CODES:
        return text[end : end + 2].strip()[:1].isdigit() or text[:start].rstrip()[-1:].isdigit()
    found = _CODE_BEFORE.search(text, max(0, start - 4), start)
    return found is not None and found.group(1) in CURRENCY_CODES


def _outside(found: list[_Found], spans: list[tuple[int, int]]) -> list[_Found]:
    """``found`` without the values inside one of ``spans``."""
    return [f for f in found if not any(low <= f[0] and f[1] <= high for low, high in spans)]


def _capital_runs(atoms: list[_Found], text: str) -> list[tuple[int, int, str, int]]:
    """The runs of two or more words in capitals one space apart (an ``&`` may join them):
    where each starts and ends, its text and its number of words."""
    runs: list[tuple[int, int, str, int]] = []
    run: list[_Found] = []
    for atom in [*atoms, (len(text) + 2, len(text) + 2, "")]:
        word = atom[2]
        capital = len(word) > 1 and word.isalpha() and word.isupper()
        joined = bool(run) and text[run[-1][1] : atom[0]] == " "  # (not "REF: QX7T2M")
        if joined and (capital or word == "&"):
            run.append(atom)
            continue
        while run and run[-1][2] == "&":
            run.pop()
        words = [a for a in run if a[2] != "&"]
        if len(words) > 1:
            runs.append((run[0][0], run[-1][1], text[run[0][0] : run[-1][1]], len(words)))
        run = [atom] if capital else []
    return runs


def _identifier_like(atom: str) -> bool:
    """A word that may be a code: ``A-55812``, ``5521``, ``LHR``, ``QX7T2M`` (not ``3`` nor
    ``14``, a count or a house number; not an amount, a time or a date)."""
    if _AMOUNT.match(atom.lstrip("$€£¥")) or _CLOCK_OR_DATE.match(atom) or _is_date(atom):
        return False
    if _CLOCK_12.fullmatch(atom) or atom[:1] in _SIGNS:
        return False  # "4.30pm", "9am", "£24"
    if len(atom) < 2:
        return False
    if atom.endswith("%"):
        return False
    if atom.isdigit() and len(atom) < 3:
        return False
    if atom.isalpha() and len(atom) > 6:
        return False  # a word in capitals ("REYKJAVIK", "ACCEPTED"), not a code like "QZTMPX"
    return any(c.isdigit() for c in atom) or (atom.isupper() and atom.replace("-", "").isalnum())


def _ascii_digits(text: str) -> str | None:
    """``text`` with its digits in ASCII ("١٢٣" is 123 in JSON), None if one is no decimal
    digit."""
    out = []
    for char in text:
        if char.isdigit():
            value = unicodedata.decimal(char, None)
            if value is None:
                return None
            char = str(value)
        out.append(char)
    return "".join(out)


def _item(part: str) -> str:
    """An enumerated item as written, without its bracket, a leading "and" or the stop."""
    item = part.split(" (", 1)[0].strip().rstrip(".,;:!")
    return re.sub(r"^(?:and|or|&)\s+", "", item, flags=re.IGNORECASE)


def _is_year(number: str) -> bool:
    return len(number) == 4 and number.isdigit() and 1800 <= int(number) <= 2100


def _is_date(text: str) -> bool:
    """A numeric date, or a range of years (2017-2021): not a phone number nor a code."""
    return bool(
        re.fullmatch(
            r"\(?(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4}"
            r"|\d{4} ?[-\u2013] ?\d{4})\)?",
            text,
        )
    )


def _name_parts(value: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", value)
    return [part.lower() for part in re.findall(r"[^\W_]+", spaced)]


def _words_of(text: str) -> list[str]:
    return [w.lower() for w in _TEXT_WORD.findall(text)]


# Where a line's earlier parts end: "Store: Harwood Road   Tel: ..." ("·", "|", a wide gap).
_LABEL_APART = re.compile(r"[·|;]|\s{3,}|\t")
# How a text asks its reader to call its writer: "call", "ring us on", "text me on".
_CALL_US = re.compile(
    r"\b(?:(?:call|ring)(?:\s+(?:us|me))?(?:\s+(?:on|at))?"
    r"|(?:phone|text|contact|reach|email|e-mail|message|whatsapp)\s+(?:us|me)(?:\s+(?:on|at))?"
    r"|(?:us|me)\s+(?:on|at))\s*$",
    re.IGNORECASE,
)
# A letter's closing line: what follows is its writer's.
_SIGN_OFF = re.compile(
    r"^[ \t]*(?:(?:(?:kind|warm|best|many)\s+)?(?:regards|wishes|thanks)|thank you|cheers"
    r"|yours\s+(?:sincerely|faithfully|truly)|sincerely)[ \t]*[,!.]?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_EMAIL_DOMAIN = re.compile(r"[^@\s]+@([\w.-]+)")
# Domains anyone may have an address at (they name no one's business).
_WEBMAIL = frozenset(
    {"example", "mail", "mailbox", "gmail", "googlemail", "outlook", "hotmail", "yahoo", "com"}
    | {"proton", "protonmail", "fastmail", "icloud", "live", "aol", "gmx", "web", "org", "net"}
)
#: The words of a label that says how to reach someone, not whom: "Tel:", "Mobile:".
_CONTACT_WORDS = frozenset(
    {"tel", "telephone", "phone", "mob", "mobile", "cell", "email", "e", "mail", "contact"}
    | {"call", "text", "ring", "fax", "number", "no", "sms", "whatsapp", "direct", "main"}
    | {"home", "work", "personal", "private", "daytime", "evening", "day", "or", "and"}
)


def _clause_numbers(text: str) -> list[int]:
    """For each of the text's words (:data:`_TEXT_WORD`), the number of its clause."""
    numbers, clause, at = [], 0, 0
    for match in _TEXT_WORD.finditer(text):
        clause += len(_CLAUSE_END.findall(text, at, match.start()))
        numbers.append(clause)
        at = match.end()
    return numbers


def _same_word(part: str, word: str) -> bool:
    """``word`` is ``part`` or begins with it (renew: renewed), or ``part`` is its plural."""
    return word.startswith(part) or (part.endswith("s") and word == part[:-1])


def _unaccented(word: str) -> str:
    """``word`` without its accents: "cafe" of "café"."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stem_match(part: str, word: str) -> bool:
    """Whether a text ``word`` is a form of an enum value's ``part`` (bill: billed, billing)."""
    if len(part) <= 4:
        return word == part or (word.startswith(part) and len(word) <= len(part) + 3)
    return word.startswith(part[: max(4, len(part) - 3)])
