"""Classify a product review (product, sentiment, stars); runs on the embedded model with no key.

    python examples/local_review.py ["Some review text."]

Enum fields (``sentiment``, ``stars``) become part of the server's grammar: the model cannot
answer anything but one of the listed values, so the schema does half the work a prompt would.
Validators do the rest the schema cannot say (the stars match the rating the review states, the
sentiment fits the stars, copied fields occur in the review); ``retries=`` re-asks when one
fails.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from openai_structured import StructuredResult, openai_structured_call_result

#: A rating as reviews write it: "5 stars", "1 star", "Five stars!".
STATED_RATING = re.compile(r"\b([1-5]|one|two|three|four|five)\s+stars?\b", re.IGNORECASE)
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


class Review(BaseModel):
    """Evidence first, conclusions after: the grammar makes the model write the fields in this
    order. With ``sentiment`` before ``stars`` it wrote "negative" and then 2 for both "1 star"
    and "4 stars" (measured); now it copies the rating's words, then gives the number."""

    product: str = Field(description="The product the review is about, in one or two words")
    rating_text: str = Field(description="The words of the review that give the rating, copied")
    stars: Literal[1, 2, 3, 4, 5] = Field(description="The star rating the reviewer gave")
    sentiment: Literal["positive", "negative", "mixed"] = Field(
        description="positive if the reviewer is happy, negative if not, mixed if both"
    )

    #: The review the answer is checked against; set by :meth:`for_text` (None: checks that
    #: need no review only). Not a field: it is not in the schema.
    source: ClassVar[str | None] = None

    @classmethod
    def for_text(cls, review: str) -> type[Review]:
        """``Review`` whose validators also check an answer against ``review``: the library
        validates with the class it is given, so each review gets its own (same schema)."""
        namespace = {"source": review, "__module__": cls.__module__, "__doc__": cls.__doc__}
        return type(cls.__name__, (cls,), namespace)

    # The rules the prompt asks for and the schema cannot say; a rejected answer is sent back
    # with these messages when max_validation_retries > 0.

    @field_validator("product")
    @classmethod
    def _product_named(cls, product: str) -> str:
        if not 1 <= len(product.split()) <= 2:
            raise ValueError(f"{product!r} is not one or two words")
        if cls.source is not None and not _occurs(product, cls.source):
            raise ValueError(f"the review does not name {product!r}; use its word for the product")
        return product

    @field_validator("rating_text")
    @classmethod
    def _rating_copied(cls, rating_text: str) -> str:
        if cls.source is not None and not _occurs(rating_text, cls.source):
            raise ValueError(f"{rating_text!r} does not occur in the review; copy its words")
        return rating_text

    @field_validator("stars")
    @classmethod
    def _stars_as_stated(cls, stars: int) -> int:
        stated = STATED_RATING.search(cls.source or "")
        if stated:
            number = stated.group(1).lower()
            given = int(number) if number.isdigit() else _NUMBERS[number]
            if stars != given:
                raise ValueError(f"the review says {stated.group(0)!r}, which is {given}")
        return stars

    @field_validator("sentiment")
    @classmethod
    def _sentiment_fits_stars(cls, sentiment: str, info: ValidationInfo) -> str:
        stars = info.data.get("stars")  # absent when stars failed
        allowed = {"positive": (4, 5), "mixed": (2, 3, 4), "negative": (1, 2)}[sentiment]
        if stars is not None and stars not in allowed:
            raise ValueError(f"{sentiment!r} does not fit {stars} stars")
        return sentiment


def _occurs(words: str, text: str) -> bool:
    """``words`` occur in ``text`` as whole words, in any case."""
    return re.search(rf"\b{re.escape(words)}\b", text, re.IGNORECASE) is not None


SYSTEM = "You classify product reviews. Answer with JSON only."


def _shot(text: str, **fields: Any) -> list[dict[str, str]]:
    """A worked example as a user turn and the assistant's JSON answer (fields in schema order,
    the order the grammar makes the model write them in), validated against its own text."""
    answer = Review.for_text(text)(**fields)
    return [
        {"role": "user", "content": f"Review: {text}"},
        {"role": "assistant", "content": json.dumps(answer.model_dump())},
    ]


# Worked examples, one per way this model went wrong without them: "1 star" (it answered 2), a
# good review with one complaint after "but" (it answered negative, 2 stars), a rating in words.
FEW_SHOT: list[dict[str, str]] = [
    *_shot(
        "The kettle boils fast but the lid broke after a week. 3 stars.",
        product="kettle",
        rating_text="3 stars",
        stars=3,
        sentiment="mixed",
    ),
    *_shot(
        "Solid drill with a long battery life, but the case is flimsy. 4 stars.",
        product="drill",
        rating_text="4 stars",
        stars=4,
        sentiment="mixed",
    ),
    *_shot(
        "Terrible umbrella, it flipped inside out on day one. 1 star.",
        product="umbrella",
        rating_text="1 star",
        stars=1,
        sentiment="negative",
    ),
    *_shot(
        "Comfortable chair and easy to build, though one armrest squeaks. Four stars.",
        product="chair",
        rating_text="Four stars",
        stars=4,
        sentiment="mixed",
    ),
    *_shot(
        "Great toaster, quick and even, worth every cent. 5 stars.",
        product="toaster",
        rating_text="5 stars",
        stars=5,
        sentiment="positive",
    ),
]

#: Inputs and the answer a correct extraction gives (used by measure_accuracy.py).
CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "I love these headphones! The sound is amazing and they are so comfortable. 5 stars.",
        {"product": "headphones", "sentiment": "positive", "stars": 5},
    ),
    (
        "The blender is loud and it stopped working after two days. 1 star.",
        {"product": "blender", "sentiment": "negative", "stars": 1},
    ),
    (
        "Nice backpack, lots of pockets, but the zipper feels cheap. 4 stars.",
        {"product": "backpack", "sentiment": "mixed", "stars": 4},
    ),
    (
        "This lamp is perfect for my desk: bright, small and cheap. Five stars!",
        {"product": "lamp", "sentiment": "positive", "stars": 5},
    ),
]


def extract(
    text: str, *, client: Any = None, model: str | None = None, retries: int = 0
) -> StructuredResult[Review]:
    """The classified review (``.value``), with the attempts it took: an answer that breaks a
    rule is sent back with the errors up to ``retries`` times."""
    return openai_structured_call_result(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=Review.for_text(text),
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Review: {text}"},
        ],
        temperature=0,
        max_output_tokens=100,
        max_validation_retries=retries,
    )


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).value.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
