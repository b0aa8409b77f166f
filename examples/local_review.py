"""Classify a product review (product, sentiment, stars); runs on the embedded model with no key.

    python examples/local_review.py ["Some review text."]

An enum field (``sentiment``) becomes part of the server's grammar: the model cannot answer
anything but one of the three words, so the schema does half the work a prompt would.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

from pydantic import BaseModel, Field

from openai_structured import openai_structured_call


class Review(BaseModel):
    product: str = Field(description="The product the review is about, in one or two words")
    sentiment: Literal["positive", "negative", "mixed"] = Field(
        description="positive if the reviewer is happy, negative if not, mixed if both"
    )
    stars: int = Field(description="The star rating the reviewer gave, 1 to 5")


SYSTEM = "You classify product reviews. Answer with JSON only."

FEW_SHOT: list[dict[str, str]] = [
    {
        "role": "user",
        "content": "Review: The kettle boils fast but the lid broke after a week. 3 stars.",
    },
    {
        "role": "assistant",
        "content": '{"product": "kettle", "sentiment": "mixed", "stars": 3}',
    },
    {
        "role": "user",
        "content": "Review: Terrible umbrella, it flipped inside out on day one. 1 star.",
    },
    {
        "role": "assistant",
        "content": '{"product": "umbrella", "sentiment": "negative", "stars": 1}',
    },
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
        max_output_tokens=60,
    )


def main() -> None:
    text = " ".join(sys.argv[1:]) or CASES[0][0]
    print(extract(text).model_dump_json(indent=2))


if __name__ == "__main__":
    main()
