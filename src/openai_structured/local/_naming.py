"""What a field's name says its value is (pure): an email, a phone number, a year, km.

A person filling in ``seller_phone`` from a car ad writes the ad's phone number, not the
seller's name; ``mileage_km`` is the number before "km", ``year`` a year, ``currency`` the
code next to an amount. The 270M model, given every run of the text's words to choose from,
often takes a neighbouring field's value instead. So where a field's name (or its title or
description) says what kind of value it is, :mod:`._copying` narrows the copy to the text's
values of that kind; where the text holds none, the field keeps the wider copy.

The words are read from ``snake_case``, ``camelCase``, ``kebab-case`` and titles alike
(:func:`name_words`). The tables are small and English, like the month names of dates.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ABBREVIATIONS",
    "COMPANY_WORDS",
    "CURRENCY_CODES",
    "CURRENCY_UNITS",
    "ORDINALS",
    "PEOPLE",
    "ROLE_WORDS",
    "UNITS",
    "name_words",
    "number_qualifier",
    "range_qualifier",
    "string_qualifier",
]

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

#: A unit a number field's name may end with, and how a text writes it after the number
#: (lower case). Currencies may come before the number too (``EUR 14,900``, ``€14,900``).
UNITS: dict[str, tuple[str, ...]] = {
    "km": ("km", "kms", "kilometre", "kilometres", "kilometer", "kilometers"),
    "miles": ("mi", "mile", "miles"),
    "m": ("m", "metre", "metres", "meter", "meters"),
    "cm": ("cm", "centimetre", "centimetres", "centimeter", "centimeters"),
    "mm": ("mm", "millimetre", "millimetres", "millimeter", "millimeters"),
    "sqm": ("m2", "m²", "sqm", "sq m", "square metres", "square meters"),
    "sqft": ("sq ft", "sqft", "ft2", "ft²", "square feet"),
    "kg": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"),
    "g": ("g", "gram", "grams"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "l": ("l", "litre", "litres", "liter", "liters"),
    "ml": ("ml", "millilitre", "millilitres", "milliliter", "milliliters"),
    "hp": ("hp", "bhp", "ps", "horsepower"),
    "kw": ("kw", "kilowatt", "kilowatts"),
    "kwh": ("kwh",),
    "mph": ("mph",),
    "kmh": ("km/h", "kmh", "kph"),
    "mg": ("mg", "milligram", "milligrams"),
    "micrograms": ("mcg", "µg", "μg", "ug", "microgram", "micrograms"),
    "seconds": ("s", "sec", "secs", "second", "seconds"),
    "minutes": ("min", "mins", "minute", "minutes"),
    "hours": ("h", "hr", "hrs", "hour", "hours"),
    "days": ("day", "days"),
    "nights": ("night", "nights"),
    "weeks": ("wk", "wks", "week", "weeks"),
    "months": ("month", "months"),
    "years": ("yr", "yrs", "year", "years"),
    "percent": ("%", "percent", "per cent"),
    "celsius": ("°c", "°", "degrees", "c"),
    "fahrenheit": ("°f", "°", "degrees", "f"),
    "eur": ("eur", "€", "euro", "euros"),
    "usd": ("usd", "$", "us$", "dollar", "dollars"),
    "gbp": ("gbp", "£", "pound", "pounds"),
}
#: Names of a unit in a field's name, by the unit.
_UNIT_NAMES: dict[str, str] = {
    **{unit: unit for unit in UNITS},
    "mi": "miles",
    "mcg": "micrograms",
    "ug": "micrograms",
    "metres": "m",
    "meters": "m",
    "m2": "sqm",
    "kilometres": "km",
    "kilometers": "km",
    "kgs": "kg",
    "grams": "g",
    "lbs": "lb",
    "litres": "l",
    "liters": "l",
    "kph": "kmh",
    "sec": "seconds",
    "secs": "seconds",
    "min": "minutes",
    "mins": "minutes",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "wks": "weeks",
    "yrs": "years",
    "pct": "percent",
    "c": "celsius",
    "f": "fahrenheit",
}
#: Units that are currencies: their text may come before the number.
CURRENCY_UNITS = frozenset({"eur", "usd", "gbp"})

#: ISO 4217 codes of the currencies most written (the codes a three-letter word next to an
#: amount is read as; "TSI" in "1.5 TSI" is not one). Source: the ISO 4217 list of codes.
CURRENCY_CODES = frozenset(
    [
        "AED",
        "ARS",
        "AUD",
        "BDT",
        "BGN",
        "BRL",
        "CAD",
        "CHF",
        "CLP",
        "CNY",
        "COP",
        "CZK",
        "DKK",
        "EGP",
        "EUR",
        "GBP",
        "HKD",
        "HUF",
        "IDR",
        "ILS",
        "INR",
        "ISK",
        "JPY",
        "KES",
        "KRW",
        "MAD",
        "MXN",
        "MYR",
        "NGN",
        "NOK",
        "NZD",
        "PEN",
        "PHP",
        "PKR",
        "PLN",
        "QAR",
        "RON",
        "RSD",
        "RUB",
        "SAR",
        "SEK",
        "SGD",
        "THB",
        "TRY",
        "TWD",
        "UAH",
        "USD",
        "VND",
        "ZAR",
    ]
)


def distinct_labels(names: list[str]) -> dict[str, tuple[str, ...]]:
    """Each field's :func:`label_words` without those a sibling's name has too, in the
    singular or the plural (``ticket`` of ``advance_ticket_price`` and ``door_ticket_price``
    tells them apart from nothing). A shared word stays the label of the one field it names
    (``hotel`` of ``hotel_name``, not of ``hotel_contact``: "Marlowe Quay Hotel" is a hotel's
    name, its contact someone at it)."""
    words = {name: label_words(name) for name in names}
    counts: dict[str, int] = {}
    for ws in words.values():
        for w in set(map(_singular, ws)):
            counts[w] = counts.get(w, 0) + 1
    # What each name names ("hotel" of hotel_name and of hotel_name_local): a word two
    # fields name is neither's label.
    heads = [
        _singular(w)
        for name in names
        for w, nxt in itertools.pairwise(name_words(name))
        if nxt == "name"
    ]
    heads += [_singular(w) for w in map(_counted, map(name_words, names)) if w]
    named = {head for head in heads if heads.count(head) == 1}
    return {
        name: tuple(
            w for w in ws if counts[_singular(w)] == 1 or _head(name) == _singular(w) in named
        )
        for name, ws in words.items()
    }


def _head(name: str) -> str | None:
    """What a field's name names, when it is a name: ``hotel`` of ``hotel_name``; or what
    it counts: ``instalment`` of ``number_of_instalments`` (not of ``instalment_amount``)."""
    words = name_words(name) if name else ()
    if len(words) == 2 and words[-1] == "name" and words[0] not in _THINGS:
        return _singular(words[0])
    counted = _counted(words)
    return _singular(counted) if counted else None


def _counted(words: tuple[str, ...]) -> str | None:
    """What a ``number_of_...`` field counts: ``payments`` of ``number_of_payments``."""
    if len(words) == 3 and words[0] in ("number", "num") and words[1] == "of":
        return words[2]
    return None


#: Words of a number field's name that make it an amount of money.
_MONEY = frozenset(
    [
        "price",
        "cost",
        "amount",
        "total",
        "subtotal",
        "fee",
        "fare",
        "balance",
        "salary",
        "rent",
        "charge",
        "tax",
        "deposit",
        "paid",
        "due",
        "refund",
        "payment",
        "budget",
        "damage",
        "value",
    ]
)
_MONEY_DESCRIBED = frozenset({"cost", "price", "amount", "paid", "money"})
#: Name words too generic to find a value by.
_NOT_LABELS = frozenset(
    [
        "number",
        "num",
        "the",
        "and",
        "for",
        "with",
        "value",
        "name",
        "code",
        "date",
        "time",
        "count",
        "type",
        "kind",
        "info",
        *list(_UNIT_NAMES),
    ]
)
_EMAIL = frozenset({"email", "mail", "e"})
_PHONE = frozenset({"phone", "telephone", "tel", "mobile", "fax", "cell", "cellphone"})
_URL = frozenset({"url", "website", "homepage", "link", "uri"})
_IDENTIFIER_LAST = frozenset(
    {"number", "no", "nr", "num", "id", "ref", "reference", "code", "iban", "sku", "vin"}
)
_IDENTIFIER_ANY = frozenset({"postcode", "zip", "zipcode", "postal", "reference"})
#: Words of a place's name that make it where a journey starts or ends ("Koeln -> Frankfurt",
#: a translation's "Norwegian > English").
_ORIGIN = frozenset({"origin", "from", "departure", "source"})
_PLACES = frozenset({"city", "station", "airport", "place", "location", "port", "language", "town"})
_DESTINATION = frozenset({"destination", "dest", "to", "arrival", "target"})
# "country_code" is "DE", "language_code" "en": not the identifiers this means.
_NOT_IDENTIFIER = frozenset(
    {"country", "language", "currency", "colour", "color", "area", "dial", "discount", "promo"}
)


def name_words(name: str) -> tuple[str, ...]:
    """The lower-case words of a field name or title: ``sellerPhone`` -> (seller, phone)."""
    return tuple(word.lower() for word in _WORDS.findall(name))


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(name: str, node: Mapping[str, Any]) -> tuple[str, ...]:
    title = node.get("title")
    text = f"{name} {title}" if isinstance(title, str) and name else name or str(title or "")
    return tuple(_singular(word) for word in name_words(text))


def string_qualifier(name: str, node: Mapping[str, Any], owner: str = "") -> str | None:
    """The kind of string a field named ``name`` holds: ``email``, ``phone``, ``url``,
    ``currency``, ``origin`` or ``destination`` (of a journey: ``A -> B``), ``identifier``,
    or someone's name (``person``, ``organisation`` or ``proper`` for either: also a
    ``name`` of an ``owner`` that is someone, a list of ``members`` or a ``dog``); None when
    its name does not say."""
    words = _words(name, node)
    if not words:
        return None
    found = set(words)
    description = node.get("description")
    described = name_words(description) if isinstance(description, str) else ()
    if "email" in found or ("mail" in found and ("e" in found or words[-1] == "mail")):
        return "email"
    if found & _PHONE:
        return "phone"
    if found & _URL or ("web" in found and "site" in found):
        return "url"
    if "currency" in found or ("currency" in described and "symbol" not in described):
        return "currency"
    place = words[-1] in _PLACES or len(words) == 1  # "origin", "from_city": not "from_iban"
    if found & _ORIGIN and (words[-1] in _ORIGIN or place):
        return "origin"
    if found & _DESTINATION and (words[-1] in _DESTINATION or place):
        return "destination"
    if found & _NOT_IDENTIFIER:
        return None
    last_digits = (  # last4, card_last_four
        len(words) >= 2 and words[-2] == "last" and (words[-1].isdigit() or words[-1] in _FEW)
    )
    if words[-1] in _IDENTIFIER_LAST or found & _IDENTIFIER_ANY or last_digits:
        return "identifier"
    own = _words(name, {}) or words  # (not its title)
    whose = _words(owner, {})
    if _names_someone(own):
        return _whose_name(own[-2] if own[-1] == "name" else own[-1])
    if own == ("name",) and whose and whose[-1] in _WHOSE:
        return _whose_name(whose[-1])
    return None


def _whose_name(word: str) -> str:
    """``person`` for a name a person has (a ``dentist``'s, a ``first_name``),
    ``organisation`` for one a company has (a ``shop``'s, a ``salon_name``), ``proper`` for
    either (a ``customer``, a ``landlord``)."""
    if word in PEOPLE:
        return "person"
    return "organisation" if word in _ORGANISATIONS else "proper"


def _names_someone(words: tuple[str, ...]) -> bool:
    """Whether a field named ``words`` (singular) holds a person's or an organisation's name:
    ``dentist``, ``received_by``, ``hotel_name`` (not ``name`` alone: a medicine's is
    "salbutamol"; nor ``product_name``)."""
    if words[-1] == "name":
        return len(words) > 1 and words[-2] not in _THINGS
    return words[-1] in _WHO


def number_qualifier(name: str, node: Mapping[str, Any]) -> str | None:
    """``year`` for a field that holds a year, ``count`` for an integer quantity, a unit of
    :data:`UNITS` for one whose name ends with it (``mileage_km``, ``duration_minutes``, or
    a rate's ``hours_per_week``), ``money`` for an amount (``price``, ``amount_due``,
    ``rate_per_day``, or "cost" in its description), else None."""
    words = name_words(name) if name else ()
    if not words:
        return None
    if words[-1] == "year" or (words[0] == "year" and len(words) <= 2):
        return "year"
    if words[-1] in _COUNTS and node.get("type") == "integer":
        return "count"
    if _counted(words):  # how many: ``number_of_payments`` is no amount of money
        return "count" if node.get("type") == "integer" else None
    # What a rate is counted in: hours of ``funded_hours_per_week``, not its week.
    last = words[words.index("per") - 1] if "per" in words[1:] else words[-1]
    unit = _UNIT_NAMES.get(last)
    if unit is not None and (len(last) > 1 or len(words) > 1):
        return unit  # "m" alone is no unit; "height_m" is
    description = node.get("description")
    described = set(name_words(description)) if isinstance(description, str) else set()
    if {_singular(word) for word in words} & _MONEY or described & _MONEY_DESCRIBED:
        return "money"
    if last == "rate" and "per" in words:
        return "money"  # what is charged per something: ``rate_per_word``, ``rate_per_day``
    return None


def range_qualifier(name: str) -> str | None:
    """``start`` or ``end`` for a date or a time field named as one end of a range
    (``valid_from``, ``opens``, ``end_date``, ``access_until``), else None."""
    words = set(name_words(name)) if name else set()
    if words & _STARTS:
        return "start"
    if words & _ENDS:
        return "end"
    return None


#: The last word of a field's name that makes its value someone's name: a person's or an
#: organisation's, which begins with a capital letter.
_WHO = frozenset(
    {"by", "company", "business", "firm", "organisation", "organization", "organiser"}
    | {"organizer", "employer", "client", "customer", "supplier", "vendor", "seller", "buyer"}
    | {"tenant", "landlord", "teacher", "tutor", "instructor", "trainer", "coach", "dentist"}
    | {"doctor", "physician", "surgeon", "vet", "nurse", "pharmacist", "artist", "author"}
    | {"creator", "presenter", "manager", "officer", "mentor", "captain", "producer"}
    | {"engineer", "technician", "mechanic", "agent", "agency", "hotel", "shop", "store"}
    | {"practice", "clinic", "hospital", "charity", "operator", "airline", "carrier", "club"}
    | {"school", "person", "owner", "patient", "member", "guest", "renter", "driver"}
    | {"recipient", "sender", "witness", "performer", "speaker", "curator", "surveyor"}
    | {"inspector", "plumber", "contractor", "insurer", "lender", "employee", "applicant"}
    | {"pupil", "student", "parent", "traveller", "traveler", "passenger", "donor", "backer"}
    | {"signatory", "courier", "consignee", "shipper", "provider", "bank", "studio"}
    | {"restaurant", "garage", "team", "representative", "director", "secretary"}
    | {"treasurer", "referee", "winner", "leader", "band", "publisher", "editor"}
    | {"photographer", "designer", "architect", "solicitor", "lawyer", "accountant"}
    | {"broker", "builder", "installer", "caterer", "florist", "chef", "examiner"}
    | {"claimant", "policyholder", "beneficiary", "landlady", "groomer", "chair"}
    | {"orthodontist", "childminder", "audiologist", "optician", "midwife", "therapist"}
)
#: Of the words of :data:`_WHO` and those before ``name``, the ones that name a person ("Dr
#: Fenella Marsh", not "Harbourside Dental Care"), and below those that name an organisation
#: ("Spokesmith Cycles", not "Lena Vogt"); the others may name either (a ``customer``).
PEOPLE = frozenset(
    {"teacher", "tutor", "instructor", "trainer", "coach", "dentist", "doctor"}
    | {"physician", "surgeon", "nurse", "pharmacist", "author", "presenter", "manager"}
    | {"officer", "mentor", "captain", "producer", "engineer", "technician", "mechanic"}
    | {"person", "patient", "member", "guest", "renter", "driver", "witness", "speaker"}
    | {"curator", "surveyor", "inspector", "employee", "applicant", "pupil", "student"}
    | {"parent", "traveller", "traveler", "passenger", "donor", "backer", "signatory"}
    | {"representative", "director", "secretary", "treasurer", "referee", "leader"}
    | {"editor", "photographer", "solicitor", "lawyer", "accountant", "chef", "examiner"}
    | {"claimant", "policyholder", "beneficiary", "landlady", "groomer", "chair"}
    | {"orthodontist", "childminder", "audiologist", "optician", "midwife", "therapist"}
    | {"first", "last", "full", "given", "family", "middle", "contact", "child", "baby"}
)
_ORGANISATIONS = frozenset(
    {"company", "business", "firm", "organisation", "organization", "employer", "supplier"}
    | {"vendor", "agency", "hotel", "shop", "store", "practice", "clinic", "hospital"}
    | {"charity", "operator", "airline", "carrier", "club", "school", "bank", "studio"}
    | {"restaurant", "garage", "insurer", "lender", "publisher", "salon", "kennel", "marina"}
    | {"venue", "gym", "surgery", "pharmacy", "university", "college", "merchant", "brand"}
    | {"manufacturer", "retailer", "institution", "society", "trust"}
)
#: Words that make a run of capitalised words a role, not a person's name, when each of its
#: words is one ("Specialist Orthodontist", "Customer"; not "Paul Guest"): what a field's
#: name says someone is, and the words that qualify a role.
_QUALIFIED_ROLES = frozenset(
    {"specialist", "consultant", "assistant", "receptionist", "senior", "head", "chief"}
    | {"lead", "deputy", "duty", "staff"}
)
ROLE_WORDS = (_WHO | PEOPLE | _QUALIFIED_ROLES) - {
    "by",
    "first",
    "last",
    "full",
    "given",
    "family",
    "middle",
    "child",
    "baby",
}
#: Words that make a name a company's, not a person's ("Spokesmith Cycles", "Olsson Ror AB",
#: "Harbourside Dental Care"; lower case): legal forms and what businesses call themselves.
COMPANY_WORDS = frozenset(
    {"ltd", "limited", "inc", "llc", "llp", "plc", "gmbh", "ag", "ab", "as", "asa", "sa"}
    | {"sarl", "srl", "bv", "nv", "oy", "pty", "co", "corp", "corporation", "company", "group"}
    | {"holdings", "partners", "associates", "society", "trust", "foundation", "association"}
    | {"club", "council", "authority", "institute", "university", "college", "school"}
    | {"academy", "centre", "center", "clinic", "hospital", "surgery", "practice", "pharmacy"}
    | {"dental", "medical", "health", "healthcare", "care", "vets", "veterinary", "hotel"}
    | {"inn", "hostel", "resort", "restaurant", "cafe", "bakery", "brewery", "kitchen", "bar"}
    | {"shop", "store", "stores", "market", "supplies", "services", "solutions", "systems"}
    | {"technologies", "labs", "studio", "studios", "media", "design", "agency", "travel"}
    | {"tours", "airways", "airlines", "rail", "railway", "ferries", "transport", "logistics"}
    | {"freight", "couriers", "removals", "motors", "garage", "cycles", "repairs", "roofing"}
    | {"plumbing", "heating", "electrical", "builders", "construction", "landscaping"}
    | {"gardens", "cleaning", "hire", "rentals", "insurance", "bank", "finance", "estates"}
    | {"lettings", "properties", "homes", "housing", "kennels", "cattery", "grooming", "salon"}
    | {"spa", "fitness", "gym", "marina", "orthodontics", "opticians", "optometrists"}
    | {"translations", "tutoring", "theatre", "cinema", "museum", "gallery", "library"}
    | {"orchestra", "choir", "press", "publishing", "records", "farm", "farms", "nursery"}
    | {"florist", "florists", "catering", "events", "productions", "consulting"}
    | {"consultants", "accountants", "solicitors", "architects", "engineering", "printing"}
    | {"storage", "parking", "energy", "solar", "utilities", "networks", "broadband", "works"}
    | {"workshop", "industries", "international", "trading", "wholesale", "foods", "wines"}
    | {"winery", "vineyard", "distillery", "taxis", "coaches", "childcare", "charity"}
)
#: Whose ``name`` begins with a capital: someone's, a ``Dog``'s, an ``emergency_contact``'s.
_WHOSE = _WHO | {"dog", "cat", "pet", "horse", "animal", "contact"}
#: What a ``<word>_name`` field may name that is no one: often written in lower case.
_THINGS = frozenset(
    {"product", "item", "medication", "medicine", "drug", "dish", "food", "ingredient"}
    | {"file", "user", "domain", "part", "component", "material", "host", "field"}
)
#: How a name may write a few digits: ``card_last_four``.
_FEW = frozenset({"two", "three", "four", "five", "six"})

_STARTS = frozenset({"from", "start", "starts", "opens", "open", "begin", "begins", "since"})
_ENDS = frozenset({"until", "to", "end", "ends", "closes", "close", "till"})


def label_words(name: str) -> tuple[str, ...]:
    """The words of a field's name a text may write next to its value (``policy`` of
    ``policy_number``, ``balance`` of ``balance_after``): not the generic ones."""
    words = name_words(name) if name else ()
    kept = [w for w in words if len(w) > 2 and not w.isdigit() and w not in _NOT_LABELS]
    return tuple(dict.fromkeys(a for w in kept for a in (w, *ABBREVIATIONS.get(w, ()))))


#: How a text may shorten a word of a field's name where it labels the value ("Qty 4",
#: "dep 06:12").
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "quantity": ("qty",),
    "number": ("no", "nr"),
    "reference": ("ref",),
    "departs": ("dep",),
    "departure": ("dep",),
    "arrives": ("arr",),
    "arrival": ("arr",),
    "telephone": ("tel",),
    "amount": ("amt",),
    "weight": ("wt",),
    "description": ("desc",),
    "department": ("dept",),
    "account": ("acct",),
    "registration": ("reg",),
    # (how a text says where something starts or ends: "First lessons in the week of ...")
    "start": ("first", "starts", "starting", "begins", "commences"),
    "end": ("last", "ends", "ending", "until"),
}

#: The last word of an integer field's name that makes it an item's place in a numbered
#: list ("1. Amara Wanjiku", "Leg 2: ..."): the number the text puts before the row.
ORDINALS = frozenset(
    {"position", "rank", "place", "placing", "pos", "step", "seq", "sequence", "order"}
    | {"index", "leg", "round", "lap", "stage", "line"}
)

#: The words of a number field's name that make it a count of things ("2 x milk", "x6").
_COUNTS = frozenset({"quantity", "qty", "count", "pieces", "pcs", "units"})
