"""Classify a product review (product, sentiment, stars); runs on the embedded model with no key.

    python examples/local_review.py ["Some review text."]

Enum fields (``sentiment``, ``stars``) become part of the server's grammar: the model cannot
answer anything but one of the listed values, so the schema does half the work a prompt would.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Literal

from pydantic import BaseModel, Field

from openai_structured import openai_structured_call


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


SYSTEM = "You classify product reviews. Answer with JSON only."


def _shot(text: str, answer: Review) -> list[dict[str, str]]:
    """A worked example as a user turn and the assistant's JSON answer (fields in schema order,
    the order the grammar makes the model write them in)."""
    return [
        {"role": "user", "content": f"Review: {text}"},
        {"role": "assistant", "content": json.dumps(answer.model_dump())},
    ]


# Worked examples, one per way this model went wrong without them: "1 star" (it answered 2), a
# good review with one complaint after "but" (it answered negative, 2 stars), a rating in words.
FEW_SHOT: list[dict[str, str]] = [
    *_shot(
        "The kettle boils fast but the lid broke after a week. 3 stars.",
        Review(product="kettle", rating_text="3 stars", stars=3, sentiment="mixed"),
    ),
    *_shot(
        "Solid drill with a long battery life, but the case is flimsy. 4 stars.",
        Review(product="drill", rating_text="4 stars", stars=4, sentiment="mixed"),
    ),
    *_shot(
        "Terrible umbrella, it flipped inside out on day one. 1 star.",
        Review(product="umbrella", rating_text="1 star", stars=1, sentiment="negative"),
    ),
    *_shot(
        "Comfortable chair and easy to build, though one armrest squeaks. Four stars.",
        Review(product="chair", rating_text="Four stars", stars=4, sentiment="mixed"),
    ),
    *_shot(
        "Great toaster, quick and even, worth every cent. 5 stars.",
        Review(product="toaster", rating_text="5 stars", stars=5, sentiment="positive"),
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


def extract(text: str, *, client: Any = None, model: str | None = None) -> Review:
    """The classified review."""
    return openai_structured_call(
        client=client,
        model=model or os.environ.get("OSTRUCT_MODEL", "gpt-4o-mini"),
        output_schema=Review,
        messages=[
            {"role": "system", "content": SYSTEM},
            *FEW_SHOT,
            {"role": "user", "content": f"Review: {text}"},
        ],
        temperature=0,
        max_output_tokens=100,
    )


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
