"""Drive the fake server with the real openai SDK and fold what came back into one shape.

The folding is shared by sync and async: only the loop that gathers chunks/events differs.
Clients use strict response validation, so a payload that does not match the SDK's types
fails the test instead of being accepted loosely.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from openai_structured.testing import FakeOpenAIServer

Api = Literal["chat", "responses"]
Mode = Literal["sync", "async"]

MESSAGES = [{"role": "user", "content": "Extract the person."}]


@dataclass
class Outcome:
    """What a call produced, independent of API and mode."""

    content: str | None
    refusal: str | None
    finish: str | None  # stop / length / content_filter (Responses mapped onto these)
    usage: tuple[int, int, int] | None  # prompt, completion, total
    model: str
    id: str
    deltas: list[str] = field(default_factory=list)


def request_kwargs(api: Api, stream: bool, **extra: Any) -> dict[str, Any]:
    """Minimal valid arguments for `create` on either API."""
    base: dict[str, Any] = {"model": "gpt-4o"}
    if api == "chat":
        base["messages"] = MESSAGES
        if stream:
            base["stream_options"] = {"include_usage": True}
    else:
        base["input"] = "Extract the person."
    if stream:
        base["stream"] = True
    base.update(extra)
    return base


def _finish_from_response(resp: Response) -> str | None:
    if resp.status == "completed":
        return "stop"
    if resp.status == "incomplete" and resp.incomplete_details is not None:
        return {"max_output_tokens": "length", "content_filter": "content_filter"}.get(
            resp.incomplete_details.reason or ""
        )
    return None


def fold_chat(completion: ChatCompletion) -> Outcome:
    choice = completion.choices[0]
    u = completion.usage
    return Outcome(
        content=choice.message.content,
        refusal=choice.message.refusal,
        finish=choice.finish_reason,
        usage=(u.prompt_tokens, u.completion_tokens, u.total_tokens) if u else None,
        model=completion.model,
        id=completion.id,
    )


def fold_chat_chunks(chunks: Sequence[ChatCompletionChunk]) -> Outcome:
    content: str | None = None
    refusal: str | None = None
    finish: str | None = None
    usage = None
    deltas: list[str] = []
    for chunk in chunks:
        if chunk.usage is not None:
            u = chunk.usage
            usage = (u.prompt_tokens, u.completion_tokens, u.total_tokens)
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content is not None:
                content = (content or "") + delta.content
                if delta.content:
                    deltas.append(delta.content)
            if delta.refusal is not None:
                refusal = (refusal or "") + delta.refusal
                if delta.refusal:
                    deltas.append(delta.refusal)
            if choice.finish_reason is not None:
                finish = choice.finish_reason
    return Outcome(content, refusal, finish, usage, chunks[0].model, chunks[0].id, deltas)


def fold_response(resp: Response) -> Outcome:
    content: str | None = None
    refusal: str | None = None
    for item in resp.output:
        if item.type == "message":
            for part in item.content:
                if part.type == "output_text":
                    content = (content or "") + part.text
                elif part.type == "refusal":
                    refusal = (refusal or "") + part.refusal
    u = resp.usage
    return Outcome(
        content=content,
        refusal=refusal,
        finish=_finish_from_response(resp),
        usage=(u.input_tokens, u.output_tokens, u.total_tokens) if u else None,
        model=resp.model,
        id=resp.id,
    )


def fold_response_events(events: Sequence[ResponseStreamEvent]) -> Outcome:
    """Fold a Responses stream, checking the event protocol along the way."""
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    assert events[1].type == "response.in_progress"
    deltas: list[str] = []
    text_done: str | None = None
    refusal_done: str | None = None
    final: Response | None = None
    for event in events:
        if event.type in ("response.output_text.delta", "response.refusal.delta"):
            deltas.append(event.delta)
        elif event.type == "response.output_text.done":
            text_done = event.text
        elif event.type == "response.refusal.done":
            refusal_done = event.refusal
        elif event.type in ("response.completed", "response.incomplete", "response.failed"):
            final = event.response
    assert final is not None, "the stream has no terminal response event"
    outcome = fold_response(final)
    streamed = "".join(deltas)
    if text_done is not None:
        assert text_done == streamed == outcome.content
    if refusal_done is not None:
        assert refusal_done == streamed == outcome.refusal
    outcome.deltas = deltas
    return outcome


def call_sync(client: OpenAI, api: Api, stream: bool, **extra: Any) -> Outcome:
    kwargs = request_kwargs(api, stream, **extra)
    if api == "chat":
        if stream:
            return fold_chat_chunks(list(client.chat.completions.create(**kwargs)))
        return fold_chat(client.chat.completions.create(**kwargs))
    if stream:
        return fold_response_events(list(client.responses.create(**kwargs)))
    return fold_response(client.responses.create(**kwargs))


async def call_async(client: AsyncOpenAI, api: Api, stream: bool, **extra: Any) -> Outcome:
    kwargs = request_kwargs(api, stream, **extra)
    if api == "chat":
        if stream:
            chunks = [c async for c in await client.chat.completions.create(**kwargs)]
            return fold_chat_chunks(chunks)
        return fold_chat(await client.chat.completions.create(**kwargs))
    if stream:
        events = [e async for e in await client.responses.create(**kwargs)]
        return fold_response_events(events)
    return fold_response(await client.responses.create(**kwargs))


Runner = Callable[..., Awaitable[Outcome]]


def make_runner(
    server: FakeOpenAIServer, mode: Mode
) -> tuple[Runner, Callable[[], Awaitable[None]]]:
    """An awaitable `run(api, stream, **extra)` for the mode, and its cleanup."""
    if mode == "sync":
        sync_client = server.client(_strict_response_validation=True)

        async def run_sync(api: Api, stream: bool, **extra: Any) -> Outcome:
            return call_sync(sync_client, api, stream, **extra)

        async def close_sync() -> None:
            sync_client.close()

        return run_sync, close_sync

    async_client = server.async_client(_strict_response_validation=True)

    async def run_async(api: Api, stream: bool, **extra: Any) -> Outcome:
        return await call_async(async_client, api, stream, **extra)

    return run_async, async_client.close
