"""Someone's name starts with a capital (a person's is no company's, a company's no titled
person's); codes are no phone numbers, prices, clock times nor a heading's words in capitals;
a top-level date is none of the rows'; a list of an enum's values holds those the text
mentions.

The pure parts (``CopySource``, ``grammar_schema``), then the grammar in llama.cpp (a
vocabulary-only model).
"""

from __future__ import annotations

import json
from typing import Any

from local_support import grammar_admits, grammar_parses

from openai_structured.local._bounds import caps_for, grammar_schema, outside_lists
from openai_structured.local._copying import CopySource, sentinel_kind
from openai_structured.local._decoding import to_gbnf
from openai_structured.local._naming import string_qualifier

REPAIR = (
    "Repair ticket LT-20931\n"
    "Received 2024-11-05 14:20 by Marek at the front desk, for Dana Whitlock of\n"
    "Whitlock & Rowe Architects. Call 07700 900412 when ready; collection after 4.30pm.\n"
    "Diagnostic fee £24, paid.\n"
)

REPAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ticket_number": {"type": "string"},
        "received_by": {"type": "string"},
        "customer_company": {"type": ["string", "null"]},
    },
    "required": ["ticket_number", "received_by", "customer_company"],
}


def _gbnf(schema: dict[str, Any], text: str) -> str:
    caps = caps_for(text)
    source = outside_lists(schema, caps, CopySource(text))
    return to_gbnf(grammar_schema(schema, caps, copy_from=source), caps, source)


def _admits(model: Any, schema: dict[str, Any], text: str, answer: dict[str, Any]) -> bool:
    gbnf = _gbnf(schema, text)
    assert grammar_parses(model, gbnf)
    return grammar_admits(model, gbnf, json.dumps(answer), ends=True)


def _kind(schema: dict[str, Any], text: str, name: str) -> str:
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"][name]
    consts = [b["const"] for b in out.get("anyOf", [out]) if "const" in b]
    return sentinel_kind(consts[0])


# --- someone's name ---------------------------------------------------------------------------


def test_a_field_that_names_someone_copies_from_a_capitalised_word(vocab_model: Any) -> None:
    assert _kind(REPAIR_SCHEMA, REPAIR, "received_by").startswith("string/proper")

    def admits(received_by: str, company: str | None = "Whitlock & Rowe Architects") -> bool:
        answer = {
            "ticket_number": "LT-20931",
            "received_by": received_by,
            "customer_company": company,
        }
        return _admits(vocab_model, REPAIR_SCHEMA, REPAIR, answer)

    assert admits("Marek")
    assert admits("Dana Whitlock")  # which one is the model's to choose
    assert admits("Marek", company=None)
    # Not a date, a number or a lower-case word: "Received 2024-11-05 14:20 by Marek".
    assert not admits("2024-11-05 14:20")
    assert not admits("front desk")
    assert not admits("Marek", company="24, paid")


def test_a_plain_field_still_copies_any_run_of_words(vocab_model: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"note": {"type": "string"}},
        "required": ["note"],
    }
    assert _admits(vocab_model, schema, REPAIR, {"note": "front desk"})


def test_a_name_begun_after_a_list_number_is_one_name() -> None:
    source = CopySource("Team:\n1. Tomasz Wielgosz (captain)\n2. Aoife Brennan\n")
    words = [word for word, _ in source.words]
    # "1." ends no sentence: "Wielgosz" goes on the name "Tomasz" begins.
    assert source._inside_name(words.index("Wielgosz"))
    assert source._inside_name(words.index("Brennan"))
    assert not source._inside_name(words.index("Tomasz"))
    # A sentence's first word begins no name: "Thanks Tomasz" may start at "Tomasz".
    thanks = CopySource("Hello. Thanks Tomasz for the form.")
    assert not thanks._inside_name([w for w, _ in thanks.words].index("Tomasz"))


# --- codes ------------------------------------------------------------------------------------


def test_a_code_is_no_phone_number_price_or_clock_time() -> None:
    source = CopySource(REPAIR)
    assert source.values("string/identifier") == ['"LT-20931"']
    # An account number in groups is still one.
    groups = CopySource("Account 3004 7712 9. Phone 0161 555 0187.")
    assert groups.values("string/identifier") == ['"3004 7712 9"']


def test_a_last_four_field_is_the_cards_code() -> None:
    text = "$195 was charged on Aug 28, 2024 to the card ending 4417."
    schema = {"type": "object", "properties": {"card_last_four": {"type": "string"}}}
    kind = _kind(schema, text, "card_last_four")
    assert kind.startswith("string/identifier")
    assert CopySource(text).values(kind) == ['"4417"']


# --- dates outside the rows -------------------------------------------------------------------

INVOICE = (
    "INVOICE No. 2024-031\n"
    "Date: 30 Sept 2024\n"
    "\n"
    "Date\tSubject\tHours\n"
    "05/09/2024\tMaths\t1.5\n"
    "12/09/2024\tPhysics\t1\n"
    "19/09/2024\tMaths\t1.5\n"
)

INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_date": {"type": "string", "format": "date"},
        "lessons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "subject": {"type": "string"},
                    "hours": {"type": "number"},
                },
                "required": ["date", "subject", "hours"],
            },
        },
    },
    "required": ["invoice_date", "lessons"],
}


def test_a_date_outside_a_list_is_none_of_its_rows(vocab_model: Any) -> None:
    lessons = [
        {"date": "2024-09-05", "subject": "Maths", "hours": 1.5},
        {"date": "2024-09-12", "subject": "Physics", "hours": 1},
        {"date": "2024-09-19", "subject": "Maths", "hours": 1.5},
    ]

    def admits(invoice_date: str) -> bool:
        answer = {"invoice_date": invoice_date, "lessons": lessons}
        return _admits(vocab_model, INVOICE_SCHEMA, INVOICE, answer)

    assert admits("2024-09-30")
    assert not admits("2024-09-05")  # the first lesson's


def test_a_date_in_rows_only_is_still_a_date_of_the_text() -> None:
    text = INVOICE.replace("Date: 30 Sept 2024\n", "")
    caps = caps_for(text)
    source = outside_lists(INVOICE_SCHEMA, caps, CopySource(text))
    assert source.taken  # the lessons' rows
    assert source.values("date/") == ['"2024-09-05"', '"2024-09-12"', '"2024-09-19"']


# --- the choices a text mentions --------------------------------------------------------------

DIETS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "dietary_requirements": {
            "type": "array",
            "items": {"type": "string", "enum": ["vegetarian", "vegan", "gluten_free", "halal"]},
        }
    },
    "required": ["dietary_requirements"],
}


def _diets(text: str) -> dict[str, Any]:
    out = grammar_schema(DIETS, caps_for(text), copy_from=CopySource(text))
    return dict(out["properties"]["dietary_requirements"])


def test_a_list_of_choices_holds_each_one_the_text_mentions() -> None:
    text = "Guests: 35 (4 vegetarian, 2 gluten-free). Dietary needs noted."
    assert _diets(text) == {
        "type": "array",
        "prefixItems": [{"const": "vegetarian"}, {"const": "gluten_free"}],
    }


def test_a_list_of_choices_is_the_models_when_the_text_mentions_one_or_all() -> None:
    one = _diets("Dietary needs: one vegan.")
    assert "prefixItems" not in one and one["items"] == {"enum": ["vegan"]}
    every = _diets("We cater vegetarian, vegan, gluten-free and halal.")
    assert "prefixItems" not in every and len(every["items"]["enum"]) == 4


# --- a table's columns --------------------------------------------------------------------------

BLOCK = (
    "MARLOWE QUAY HOTEL - GROUP BLOCK CONFIRMATION\n"
    "Night | Singles | Doubles\n"
    "Sun 14 Sep 2025 | 20 | 6\n"
    "Mon 15 Sep 2025 | 35 | 10\n"
    "\n"
    "Rates per room per night: single £129, double £149.\n"
)

BLOCK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "room_nights": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "date": {"type": "string", "format": "date"},
                    "single_rooms": {"type": "integer"},
                    "double_rooms": {"type": "integer"},
                },
                "required": ["date", "single_rooms", "double_rooms"],
            },
        }
    },
    "required": ["room_nights"],
}


def test_a_tables_cells_are_read_under_its_heading() -> None:
    from openai_structured.local._rows import row_blocks, table_columns

    blocks = [rows for rows, _ in row_blocks(BLOCK)]
    rows = [row for row in blocks[0] if BLOCK[row[0] : row[1]].startswith(("Sun", "Mon"))]
    table = table_columns(BLOCK, rows)
    assert table is not None
    headings, cells = table
    assert headings == ["Night", "Singles", "Doubles"]
    assert [[BLOCK[a:b] for a, b in row] for row in cells] == [
        ["Sun 14 Sep 2025", "20", "6"],
        ["Mon 15 Sep 2025", "35", "10"],
    ]
    # A row with a cell too many or too few: no columns to read.
    ragged = BLOCK.replace("Mon 15 Sep 2025 | 35 | 10", "Mon 15 Sep 2025 | 35")
    assert table_columns(ragged, [*rows[:1], (rows[1][0], rows[1][1] - 5)]) is None


def test_each_field_copies_from_the_column_its_name_heads(vocab_model: Any) -> None:
    def admits(nights: list[dict[str, Any]]) -> bool:
        return _admits(vocab_model, BLOCK_SCHEMA, BLOCK, {"room_nights": nights})

    right = [
        {"date": "2025-09-14", "single_rooms": 20, "double_rooms": 6},
        {"date": "2025-09-15", "single_rooms": 35, "double_rooms": 10},
    ]
    assert admits(right)
    swapped = [{**night, "single_rooms": night["double_rooms"]} for night in right]
    assert not admits(swapped)  # a row's doubles are no singles


def test_a_heading_two_fields_share_decides_neither() -> None:
    from openai_structured.local._bounds import _under_headings

    headings = ["Leg", "Sched arr", "Actual arr", "Qty", "Unit £", "Line £"]
    under = _under_headings(
        ["scheduled_arrival", "actual_arrival", "quantity", "unit_price", "line_total"],
        headings,
    )
    # "arr" heads two columns; "Actual arr" holds both words of actual_arrival.
    assert under == {"actual_arrival": 2, "quantity": 3, "unit_price": 4, "line_total": 5}


def test_of_two_headings_holding_a_name_word_the_field_s_last_word_wins() -> None:
    from openai_structured.local._bounds import _under_headings

    headings = ["Place", "No.", "Couple", "Club", "North"]
    under = _under_headings(["place", "couple_number", "club"], headings)
    # "Couple" and "No." each hold one word of couple_number: it is a number, under "No.".
    assert under == {"place": 0, "couple_number": 1, "club": 3}
    # An abbreviation is matched whole: "North" is no "No.".
    assert _under_headings(["seat_number"], ["Seat", "North"]) == {"seat_number": 0}
    assert _under_headings(["seat_number"], ["Row", "North"]) == {}


def test_a_rows_text_stops_at_a_leader() -> None:
    source = CopySource("Item 3: Ridge re-pointing, 9 m ....... £495.00\nItem 4: Gutter, 2 m\n")
    words = [word for word, _ in source.words]
    assert source._column_break(words.index("m"))  # "9 m ......." : its cell ends
    assert not source._column_break(words.index("Ridge"))


def test_someones_name_does_not_stop_inside_the_name(vocab_model: Any) -> None:
    text = "Team:\n1. Tomasz Wielgosz (captain), backend\n2. Aoife Brennan, UX design\n"
    schema = {
        "type": "object",
        "properties": {"captain_name": {"type": "string"}, "note": {"type": "string"}},
        "required": ["captain_name", "note"],
    }

    def admits(captain: str, note: str = "backend") -> bool:
        return _admits(vocab_model, schema, text, {"captain_name": captain, "note": note})

    assert admits("Tomasz Wielgosz")
    assert admits("Aoife Brennan")
    assert not admits("Tomasz")  # the name goes on
    assert not admits("Wielgosz")  # nor starts inside it
    assert admits("Tomasz Wielgosz", note="Aoife")  # a plain string may stop anywhere


def test_someones_name_stops_at_a_comma(vocab_model: Any) -> None:
    text = "Received with thanks.\nSigned: Gordon Ashdown, Treasurer, 15 January 2025\n"
    schema = {
        "type": "object",
        "properties": {"signed_by": {"type": "string"}, "note": {"type": "string"}},
        "required": ["signed_by", "note"],
    }

    def admits(signed_by: str, note: str = "Received with thanks.") -> bool:
        return _admits(vocab_model, schema, text, {"signed_by": signed_by, "note": note})

    assert admits("Gordon Ashdown")
    assert not admits("Gordon Ashdown, Treasurer")  # a role after a comma is no name
    assert admits("Gordon Ashdown", note="Gordon Ashdown, Treasurer")  # a plain string runs on


def test_a_name_is_someones_where_what_holds_it_is_someone() -> None:
    assert string_qualifier("name", {}, "members") == "person"
    assert string_qualifier("name", {"title": "Name"}, "EmergencyContact") == "person"
    assert string_qualifier("name", {}, "Dog") == "proper"
    assert string_qualifier("name", {}, "hotels") == "organisation"
    assert string_qualifier("name", {}, "medications") is None  # "salbutamol"
    assert string_qualifier("name", {}) is None


def test_a_definitions_name_is_what_holds_its_fields() -> None:
    schema = {
        "$defs": {
            "Dog": {"type": "object", "properties": {"name": {"type": "string"}}},
            "Item": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
        "type": "object",
        "properties": {
            "dogs": {"type": "array", "items": {"$ref": "#/$defs/Dog"}},
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
        },
    }
    text = "Bramble and Pip stay for 7 nights; bring dry food."
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))
    assert out["$defs"]["Dog"]["properties"]["name"] == {
        "const": "@@openai-structured:copy-string/proper@@"
    }
    assert out["$defs"]["Item"]["properties"]["name"] == {
        "const": "@@openai-structured:copy-string@@"
    }


def test_a_range_of_weekdays_mentions_each_day_in_it() -> None:
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    text = "Open Tuesday to Sunday, 10:00-17:30, with late opening on Thursdays."
    assert CopySource(text).mentioned(days) == days[1:]
    assert CopySource("Off-Peak (Mon-Fri 10:00-16:00)").mentioned(days) == days[:5]
    assert CopySource("Fri-Mon only").mentioned(days) == ["monday", *days[4:]]  # round the week
    assert CopySource("On Tuesdays and Fridays.").mentioned(days) == ["tuesday", "friday"]


def test_the_time_something_happens_at_is_a_clock_time() -> None:
    from openai_structured.local._copying import copy_kind

    assert copy_kind({"type": "string"}, "departure_time") == "time//departure-dep"
    assert copy_kind({"type": "string"}, "appointment_time") == "time//appointment"
    assert copy_kind({"type": "string"}, "finish_time") == "string//finish"  # a duration?
    assert copy_kind({"type": "string"}, "elapsed_time") == "string//elapsed"
    text = "Flight AU 2318 departs 6.55am, 21NOV24. Boarding closes 6.15am."
    assert CopySource(text).values("time//departure-dep") == ['"06:55"']  # its label's


def test_a_cell_without_such_a_value_leaves_the_field_its_row() -> None:
    text = "Order\nItem      Qty    Price\nWidget 3  n/a    4.50\nGadget    2      7.25\n"
    schema = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "item": {"type": "string"},
                        "qty": {"type": "integer"},
                        "price": {"type": "number"},
                    },
                    "required": ["item", "qty", "price"],
                },
            }
        },
    }
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))
    first, second = out["properties"]["lines"]["prefixItems"]
    widget, gadget = text.index("Widget"), text.index("Gadget")
    # "n/a" is no integer: the first row's qty copies from its row, as without the heading;
    # the second's from the cell under "Qty".
    assert sentinel_kind(first["properties"]["qty"]["const"]).endswith(
        f"at{widget}-{widget + len('Widget 3  n/a    4.50')}"
    )
    qty = text.index("2      7.25")
    assert sentinel_kind(second["properties"]["qty"]["const"]).endswith(f"at{qty}-{qty + 1}")
    assert gadget < qty


# --- a person's name, a company's, a code ----------------------------------------------------

GROOMING = (
    "Hi Lorna, thanks for booking in both of the boys!\n"
    "Pawfect Finish Grooming - booking confirmed\n"
    "Your groomer is Jade Marsh; Harbourside Dental Care is next door.\n"
    "Salon: 01632 960913 - 22 Mill Lane, Carrowby\n"
)


def _object(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def test_a_fields_name_says_whether_a_person_or_a_company_has_the_name() -> None:
    assert string_qualifier("groomer", {}) == "person"
    assert string_qualifier("tutor_name", {}) == "person"
    assert string_qualifier("kennel_business", {}) == "organisation"
    assert string_qualifier("practice_name", {}) == "organisation"
    assert string_qualifier("customer", {}) == "proper"  # either
    assert string_qualifier("landlord", {}) == "proper"


def test_a_companys_name_is_a_company_s_where_the_text_names_one(vocab_model: Any) -> None:
    schema = _object(salon_name={"type": "string"})

    def admits(name: str) -> bool:
        return _admits(vocab_model, schema, GROOMING, {"salon_name": name})

    assert admits("Pawfect Finish Grooming")
    assert admits("Harbourside Dental Care")
    assert not admits("Carrowby")  # a place, no company's name
    assert not admits("Lorna")
    # A text that names no company: any capitalised name, as before.
    text = "Booked with Tillpoint for Lorna."
    assert _admits(vocab_model, schema, text, {"salon_name": "Tillpoint"})


def test_a_companys_name_is_no_titled_persons(vocab_model: Any) -> None:
    text = "Booked by Dr Femke Jansen for the Society for Coastal Ecology, with Callum Reid."
    schema = _object(client_organisation={"type": "string"})

    def admits(name: str) -> bool:
        return _admits(vocab_model, schema, text, {"client_organisation": name})

    assert admits("Society for Coastal Ecology")
    assert not admits("Dr Femke Jansen")
    assert not admits("Callum Reid")  # the text names a company


def test_a_persons_name_is_no_companys(vocab_model: Any) -> None:
    schema = _object(groomer={"type": "string"})

    def admits(name: str) -> bool:
        return _admits(vocab_model, schema, GROOMING, {"groomer": name})

    assert admits("Jade Marsh")
    assert admits("Lorna")
    assert not admits("Pawfect Finish Grooming")
    assert not admits("Harbourside Dental Care")
    # Nor a role: "Dr Samir Qadri, Specialist Orthodontist".
    text = "Yours sincerely,\nDr Samir Qadri\nSpecialist Orthodontist\n"
    assert _admits(vocab_model, schema, text, {"groomer": "Dr Samir Qadri"})
    assert not _admits(vocab_model, schema, text, {"groomer": "Specialist Orthodontist"})
    # Two people joined by "&" are no company.
    text = "1. Lucy Brandt & Mateo Ferreira, Starlight DC\n"
    assert _admits(vocab_model, schema, text, {"groomer": "Lucy Brandt"})


def test_a_company_word_alone_or_with_accents() -> None:
    text = "Care is taken. The Copper Kettle Café, 3 Mill St. As Tom Ng said: Olsson Ror AB."
    source = CopySource(text)
    capitalised = [i for i, (word, _) in enumerate(source.words) if word[0].isupper()]
    starts = {source.words[i][0] for i in capitalised if source._name_at(i)[1]}
    assert starts == {"The", "Copper", "Kettle", "Olsson", "Ror"}  # not "Care" nor "As"


def test_a_code_is_no_word_of_a_heading_in_capitals() -> None:
    text = (
        "OFFICIAL DONATION RECEIPT FOR INCOME TAX PURPOSES\n"
        "Receipt no.: 2024-00718\n"
        "Charitable registration no.: 84213 5567 RR0001\n"
        "Please pay by bank transfer, reference ADEYEMI MAR. From: MANCHESTER MAN\n"
    )
    source = CopySource(text)
    codes = {json.loads(v) for v in source.values("string/identifier")}
    assert not codes & {"OFFICIAL", "RECEIPT", "FOR", "INCOME", "TAX", "PURPOSES"}
    assert {"2024-00718", "84213 5567 RR0001", "ADEYEMI MAR", "MAN"} <= codes
    assert "MANCHESTER MAN" in codes  # (two words in capitals may be one code)
    assert source.values("string/identifier/receipt") == ['"2024-00718"']


def test_a_code_keeps_a_label_a_date_field_shares() -> None:
    text = "KITTIWAKE HARBOUR MARINA      Invoice MR-2025-0418\nDate: 2 April 2025\nLOA 9.4 m"
    schema = _object(
        invoice_number={"type": "string"},
        invoice_date={"type": "string", "format": "date"},
        berth_number={"type": "integer"},
    )
    kind = _kind(schema, text, "invoice_number")
    assert kind == "string/identifier/invoice"
    assert CopySource(text).values(kind) == ['"MR-2025-0418"']
    # The registration's label as a text shortens it.
    text = "From: Bethany Clarke, registered childminder (reg. no. EY553810), sort code 00-99-41"
    schema = _object(registration_number={"type": "string"}, sort_code={"type": "string"})
    kind = _kind(schema, text, "registration_number")
    assert CopySource(text).values(kind) == ['"EY553810"']


# --- a birth date -------------------------------------------------------------------------------


def test_a_birth_date_is_a_date_the_text_says_is_one() -> None:
    schema = _object(
        patient_date_of_birth={"type": ["string", "null"], "format": "date"},
        appointment_date={"type": "string", "format": "date"},
    )
    text = "Dear Ms Okafor, your appointment is on 14 November 2024 at 10:30."
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    assert all(b == {"type": "null"} for b in out["patient_date_of_birth"]["anyOf"])
    assert sentinel_kind(out["appointment_date"]["const"]).startswith("date/")
    text = "Patient: Ada Okafor (DOB 12 March 1985). Appointment: 14 November 2024."
    kind = _kind(schema, text, "patient_date_of_birth")
    assert kind.startswith("date/birth/")
    assert CopySource(text).values(kind) == ['"1985-03-12"']
    # Required: any date, if none is said to be a birth date (the schema wants one).
    schema["properties"]["patient_date_of_birth"] = {"type": "string", "format": "date"}
    text = "Your appointment is on 14 November 2024."
    assert _kind(schema, text, "patient_date_of_birth").startswith("date//")


def test_a_type_lists_null_is_null_whatever_the_field_says() -> None:
    # {"type": ["string", "null"], "format": "date"}: its null branch is null, not a "date"
    # null, so the field is read as nullable (and null where the text holds no such value).
    schema = _object(seller_phone={"type": ["string", "null"], "description": "Mobile"})
    text = "Golf 1.5 TSI, 2018, 86,500 km."
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    assert all(b == {"type": "null"} for b in out["seller_phone"]["anyOf"])


def test_a_number_the_text_asks_its_reader_to_call_is_no_readers() -> None:
    text = "Your appointment is on 14 November 2024. To change it, call 01632 960552."
    schema = _object(
        applicant_phone={"type": ["string", "null"]},
        helpline_phone={"type": ["string", "null"]},
    )
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    assert all(b == {"type": "null"} for b in out["applicant_phone"]["anyOf"])
    helpline = [sentinel_kind(b["const"]) for b in out["helpline_phone"]["anyOf"] if "const" in b]
    assert helpline and CopySource(text).values(helpline[0]) == ['"01632 960552"']
    # A label is no request to call: "Phone: ..." of a form's applicant is the applicant's.
    text = "Applicant: Ada Okafor\nPhone: 01632 960552\n"
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    kinds = [sentinel_kind(b["const"]) for b in out["applicant_phone"]["anyOf"] if "const" in b]
    assert kinds and CopySource(text).values(kinds[0]) == ['"01632 960552"']


def test_an_amount_after_a_currency_code_is_no_code() -> None:
    source = CopySource("Deposit EUR 900 held on card. Agreement RA-558210, voucher GBP 12.")
    assert [json.loads(v) for v in source.values("string/identifier")] == ["RA-558210"]


def test_what_a_review_found_of_names_codes_and_numbers(vocab_model: Any) -> None:
    # A label is no request to call: the applicant's own phone stays theirs.
    text = "Applicant: Jane Doe\nPhone 07700 900412\n"
    schema = _object(applicant_phone={"type": ["string", "null"]})
    out = grammar_schema(schema, caps_for(text), copy_from=CopySource(text))["properties"]
    kinds = [sentinel_kind(b["const"]) for b in out["applicant_phone"]["anyOf"] if "const" in b]
    assert kinds and CopySource(text).values(kinds[0]) == ['"07700 900412"']
    # A surname that is a role word is still a name; a company may sign as "issued_by".
    text = "Your dentist: Dr Paul Guest, Harbourside Dental Care"
    assert _admits(
        vocab_model, _object(dentist={"type": "string"}), text, {"dentist": "Dr Paul Guest"}
    )
    assert string_qualifier("issued_by", {}) == "proper"
    assert CopySource("Smith & Co. Ltd")._name_at(0)[1]
    # Codes: a heading joined by "&", a label in capitals, an airport that is a currency's
    # code, an amount's digit groups.
    codes = [
        json.loads(v) for v in CopySource("SMITH & SONS LTD AB-12").values("string/identifier")
    ]
    assert codes == ["AB-12"]
    assert [
        json.loads(v) for v in CopySource("BOOKING REF: QX7T2M").values("string/identifier")
    ] == ["QX7T2M"]
    assert [json.loads(v) for v in CopySource("LHR to MAD").values("string/identifier")] == [
        "LHR",
        "MAD",
    ]
    assert CopySource("Paid SEK 68 000 today").values("string/identifier") == []
    # A birth date said after the date.
    text = "Patient: Anna Reyes, 12 March 1985 (date of birth). Seen 4 May 2025."
    assert CopySource(text).values("date/birth") == ['"1985-03-12"']
