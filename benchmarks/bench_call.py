"""Non-streaming call cost (SPEC §9): ours vs raw ``create()`` + ``model_validate_json`` vs the
SDK's ``parse()``, same loopback server, same run.

    python benchmarks/bench_call.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json

import openai
from pydantic import BaseModel, Field

from _common import compare, served
from openai_structured import openai_structured_call
from openai_structured.schema import to_strict_schema


class Address(BaseModel):
    street: str
    city: str
    postcode: str | None = None


class Person(BaseModel):
    name: str = Field(description="Full name")
    age: int
    email: str
    addresses: list[Address]
    tags: list[str]


ANSWER = {
    "name": "Ada Lovelace",
    "age": 36,
    "email": "ada@example.org",
    "addresses": [
        {"street": "12 St James's Square", "city": "London", "postcode": "SW1Y 4JH"},
        {"street": "Ockham Park", "city": "Ockham", "postcode": None},
    ],
    "tags": ["mathematician", "writer", "analyst"],
}
MESSAGES = [
    {"role": "system", "content": "Extract the person."},
    {"role": "user", "content": "Ada Lovelace, 36, ada@example.org, lived in London."},
]


def main() -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with served("--default-json", json.dumps(ANSWER)) as url:
        client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
        strict = to_strict_schema(Person)
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": "Person", "schema": strict, "strict": True},
        }

        def raw() -> None:
            for _ in range(args.calls):
                completion = client.chat.completions.create(
                    model="gpt-4o",
                    messages=MESSAGES,
                    response_format=response_format,  # type: ignore[arg-type]
                )
                Person.model_validate_json(completion.choices[0].message.content or "")

        def ours() -> None:
            for _ in range(args.calls):
                openai_structured_call(
                    client=client, model="gpt-4o", output_schema=Person, messages=MESSAGES
                )

        def sdk_parse() -> None:
            for _ in range(args.calls):
                completion = client.chat.completions.parse(
                    model="gpt-4o",
                    messages=MESSAGES,
                    response_format=Person,  # type: ignore[arg-type]
                )
                assert completion.choices[0].message.parsed is not None

        ours()  # warm caches (schema compilation happens once per model class)
        results = compare(
            {
                "raw create()+model_validate_json": raw,
                "openai_structured_call": ours,
                "SDK chat.completions.parse()": sdk_parse,
            },
            rounds=args.rounds,
        )
    base = results["raw create()+model_validate_json"]
    print(f"non-streaming call, {args.calls} calls per round, median of {args.rounds} rounds")
    print(f"{'contender':36} {'CPU s':>8} {'per call':>10} {'vs raw':>7}")
    for name, seconds in results.items():
        print(
            f"{name:36} {seconds:8.3f} {seconds / args.calls * 1e6:8.0f}us {seconds / base:6.2f}x"
        )
    return results


if __name__ == "__main__":
    main()
