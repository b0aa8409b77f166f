"""Structured decoding in the server process: valid JSON, bounded, greedy, and fast.

Imported only by the server wrapper (:mod:`._child`), which calls :func:`install` before
llama-cpp-python's server starts. Each piece replaces one llama-cpp-python internal (pinned in
``pyproject.toml``; :func:`check_internals` and ``tests/local/test_fast_valid.py`` fail loudly
when one moves). A piece whose internal moved is left out with a line on the server's output:
the server then works as llama-cpp-python's own, only slower or less bounded.

1. **A grammar that admits only valid JSON.** llama-cpp-python's schema-to-grammar converter lets
   a string hold raw control characters (a raw newline is invalid JSON) and, for ``maxLength``/
   ``maxItems``, writes n nested groups that llama.cpp refuses beyond ~1,000. We give it JSON's
   own string rule, a ``.`` that stays inside a string, and llama.cpp's ``{m,n}`` repetition.
2. **Bounded answers** (:func:`shape_chat_request`, around ``Llama.create_chat_completion``):
   the request's schema becomes a grammar with lists and strings capped by the input and no
   unbounded repetition left (:mod:`._bounds`), and a request without ``max_tokens`` gets one
   derived from the schema and the input. A schema the converter cannot express, which used
   to give a silently unconstrained answer (or, for a ``pattern`` like ``^\\d{4}$``, a crashed
   server), is rewritten into a looser one it can; what still fails is an HTTP 400 that says so.
3. **Greedy by default**: a request without ``temperature`` is decoded at temperature 0 (the
   server's default was 0.8), and without ``repeat_penalty`` at 1.0 (was 1.1, which penalises
   copying a word the answer already holds); the caps and the limit stop loops instead.
4. **The grammar checks the chosen token only** (:class:`FirstChoiceGrammarSampler`, in place
   of ``Llama._init_sampler``'s chain when there is a grammar). llama-cpp-python applies the
   grammar to all 262,144 candidates of Gemma 3's vocabulary before choosing, 25-50 ms per
   token on 2 cores (the decode itself takes ~15 ms). As llama.cpp's own sampler does, we
   choose first and check that one token; only when the grammar rejects it, we apply the
   grammar to the best 64 candidates, then to the best 4,096, and to the whole vocabulary
   only when none of those is allowed. Greedy output is identical. A loop of a few tokens
   repeated to 16 is broken (:data:`LOOP_RUN`).
5. **HTTP 400, not 500**, for a schema that cannot be made a grammar (the SDK retries a 500).
6. **The output layer for the candidates only** (:mod:`._head`): where the grammar admits
   only pieces of the prompt, the schema and its literals, a decode stops after the final
   norm and the sampler computes those tokens' logits itself (the output layer is more than
   half of a decode's work with Gemma's 262k vocabulary); the same greedy answers.
7. **The same request, the same answer**: every request evaluates its whole prompt. Reusing the
   previous request's cached prefix changes the logits slightly (llama.cpp's arithmetic
   depends on the batch) and, measured, the greedy answer of the same request.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import ctypes
import functools
import importlib
import json
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._bounds import (
    Caps,
    caps_for,
    grammar_schema,
    input_text,
    output_limit,
    outside_lists,
    safe_pattern,
)
from ._bounds import skeleton as schema_skeleton
from ._choosing import MAX_CHOICES, ValuePath, closed_choices, closed_places, spanned_places
from ._copying import CopySource, rule_name
from ._drafting import CopiedWords, KeyDraft
from ._prompting import completion_prompt, schema_of, style_from_environment
from ._repeats import HISTORY, ListRepeats, loop_continuation

if TYPE_CHECKING:  # numpy is the [local] extra's; _head is imported where it is used
    from ._head import HiddenTap, RequestHead

__all__ = [
    "GrammarError",
    "check_internals",
    "document_prompt",
    "install",
    "shape_chat_request",
    "to_gbnf",
]

#: JSON's string character: anything but a quote, a backslash or a control character, or an
#: escape (GBNF, as llama-cpp-python's converter writes rules).
JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
#: A pattern's ``.`` inside a JSON string: no quote, backslash or control character.
JSON_DOT = r'[^"\\\x7F\x00-\x1F]'
#: Candidates the grammar is applied to when it rejects the chosen token (at least top_k),
#: then, when it allows none of them, this many (a forced key is often further down), then
#: all. On 2 cores: 0.2 ms, 1.2 ms and 25 ms; a token's decode is ~15 ms.
TOP_CANDIDATES = 64
WIDE_CANDIDATES = 4096
#: A repetition (:mod:`._repeats`) is broken by pushing the token that would continue it down
#: by this many logits: chosen only if the grammar allows nothing else.
LOOP_PENALTY = 1000.0
#: Sequences a context holds: the answer, and one per value of a closed choice.
CHOICE_SEQUENCES = MAX_CHOICES + 1
#: A closed choice scores the values whose first token's log-probability is within
#: CHOICE_MARGIN of the best one's, at most CHOICE_WIDTH of them; a first token ahead of every
#: other value's by CHOICE_DECISIVE decides alone (measured on the tuning half: docs/local.md).
CHOICE_MARGIN = 4.0
CHOICE_WIDTH = 5
CHOICE_DECISIVE = 2.0
#: The prefix of :class:`GrammarError` messages (the server's error handler answers 400).
ERROR_PREFIX = "openai-structured: the embedded model cannot follow this schema"
_STOCK_CHAR = r'[^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'


class GrammarError(ValueError):
    """The request's schema cannot be turned into a grammar llama.cpp accepts."""


def _module(name: str) -> Any:
    # By name: mypy must pass whether or not the [local] extra is installed.
    return importlib.import_module(name)


def _say(message: str) -> None:
    print(f"openai-structured: {message}", file=sys.stderr, flush=True)


# --- internals we rely on --------------------------------------------------------------------

_BINDINGS = (
    "ggml_backend_sched_eval_callback",
    "llama_get_logits_ith",
    "llama_model_n_embd",
    "llama_vocab_is_eog",
    "llama_sampler_accept",
    "llama_sampler_apply",
    "llama_sampler_chain_get",
    "llama_sampler_chain_n",
    "llama_sampler_free",
    "llama_sampler_init_grammar",
    "llama_sampler_init_top_k",
    "llama_sampler_name",
    "llama_token_data",
    "llama_token_data_array",
    "llama_token_data_p",
)


def check_internals() -> list[str]:
    """What moved in llama-cpp-python among the internals this module replaces (empty: none)."""
    import inspect

    problems: list[str] = []
    bindings = _module("llama_cpp.llama_cpp")
    problems += [f"llama_cpp.{name} is gone" for name in _BINDINGS if not hasattr(bindings, name)]
    grammar = _module("llama_cpp.llama_grammar")
    for name in (
        "PRIMITIVE_RULES",
        "SchemaConverter",
        "_build_repetition",
        "DOT",
        "BuiltinRule",
        "GRAMMAR_LITERAL_ESCAPE_RE",
        "GRAMMAR_LITERAL_ESCAPES",
    ):
        if not hasattr(grammar, name):
            problems.append(f"llama_grammar.{name} is gone")
    if not problems:
        char = grammar.PRIMITIVE_RULES.get("char")
        if char is None or char.content not in (_STOCK_CHAR, JSON_CHAR):
            problems.append("llama_grammar.PRIMITIVE_RULES['char'] changed")
        for name in ("string", "array", "object", "value"):
            if name not in grammar.PRIMITIVE_RULES:
                problems.append(f"llama_grammar.PRIMITIVE_RULES[{name!r}] is gone")
        build = getattr(grammar._build_repetition, "__wrapped__", grammar._build_repetition)
        wanted = ["item_rule", "min_items", "max_items", "separator_rule", "item_rule_is_literal"]
        if list(inspect.signature(build).parameters) != wanted:
            problems.append("llama_grammar._build_repetition's signature changed")
        for method in ("resolve_refs", "visit", "format_grammar", "_rules"):
            if method != "_rules" and not hasattr(grammar.SchemaConverter, method):
                problems.append(f"llama_grammar.SchemaConverter.{method} is gone")
    internals = _module("llama_cpp._internals")
    context = getattr(internals.LlamaContext.__init__, "__wrapped__", None)
    context = context or internals.LlamaContext.__init__
    if not {"model", "params"} <= set(inspect.signature(context).parameters):
        problems.append("_internals.LlamaContext() takes no model= and params=")
    llama = _module("llama_cpp.llama").Llama
    init = getattr(llama._init_sampler, "__wrapped__", llama._init_sampler)
    parameters = inspect.signature(init).parameters
    for name in ("temp", "top_k", "grammar"):
        if name not in parameters:
            problems.append(f"Llama._init_sampler has no {name}= parameter")
    for method, needle, what in (
        (
            "generate",
            "self._sampler = self._init_sampler(",
            "builds its sampler with _init_sampler",
        ),
        ("sample", "self._sampler.sample(self._ctx, ridx)", "calls self._sampler.sample(ctx, idx)"),
        ("generate", "draft_tokens = self.draft_model(", "takes a draft_model's tokens"),
        ("eval", "self._batch.set_batch(", "fills self._batch with set_batch"),
    ):
        try:
            found = needle in inspect.getsource(getattr(llama, method))
        except (OSError, TypeError):  # no source to read: cannot tell
            found = False
        if not found:
            problems.append(f"Llama.{method} no longer {what}")
    chat = getattr(llama.create_chat_completion, "__wrapped__", llama.create_chat_completion)
    for name in ("messages", "response_format", "max_tokens", "grammar"):
        if name not in inspect.signature(chat).parameters:
            problems.append(f"Llama.create_chat_completion has no {name}= parameter")
    types = _module("llama_cpp.server.types")
    for model in ("CreateChatCompletionRequest", "CreateCompletionRequest"):
        fields = getattr(getattr(types, model, None), "model_fields", {})
        for name in ("temperature", "repeat_penalty"):
            if name not in fields:
                problems.append(f"server.types.{model} has no {name} field")
    errors = _module("llama_cpp.server.errors")
    if not isinstance(
        getattr(getattr(errors, "RouteErrorHandler", None), "pattern_and_formatters", None), dict
    ):
        problems.append("server.errors.RouteErrorHandler.pattern_and_formatters is gone")
    settings = _module("llama_cpp.server.settings")
    if "logits_all" not in settings.ModelSettings.model_fields:
        problems.append("server.settings.ModelSettings has no logits_all")
    return problems


# --- install ---------------------------------------------------------------------------------


def install() -> None:
    """Put every piece in place (before ``llama_cpp.server.app`` is imported)."""
    if "llama_cpp.server.app" in sys.modules:
        _say("llama_cpp.server.app was imported first: request defaults left unchanged")
    try:
        problems = check_internals()
    except Exception as exc:  # never keep the server from starting
        problems = [f"checking them failed: {type(exc).__name__}: {exc}"]
    if problems:
        _say(
            "this llama-cpp-python differs from the versions the embedded model was built for "
            f"({'; '.join(problems)}): structured decoding is left as llama-cpp-python's own"
        )
        return
    _json_grammar()
    _parallel_sequences()
    _request_defaults()
    _error_status()
    llama = _module("llama_cpp.llama").Llama
    _wrap_chat(llama)
    _wrap_sampler(llama)
    _wrap_eval(llama)
    _tap_contexts()


def _json_grammar() -> None:
    """JSON's string rule, a string-safe ``.``, ``{m,n}`` repetitions, and literals with their
    backslashes escaped (idempotent). The converter escapes only ``\r``, ``\n`` and ``"`` in a
    literal, so an enum value or key holding a quote (``13" laptop``: JSON ``13\" laptop``) gave
    a grammar llama.cpp rejects, and one holding a backslash or a tab could only be written as
    something else."""
    grammar = _module("llama_cpp.llama_grammar")
    grammar.PRIMITIVE_RULES["char"] = grammar.BuiltinRule(JSON_CHAR, [])
    grammar.DOT = JSON_DOT
    grammar.GRAMMAR_LITERAL_ESCAPE_RE = re.compile(r'[\r\n"\\]')
    grammar.GRAMMAR_LITERAL_ESCAPES = {"\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\"}
    stock = grammar._build_repetition
    if getattr(stock, "__wrapped__", None) is None:
        grammar._build_repetition = functools.wraps(stock)(_native_repetition(stock))


def _parallel_sequences() -> None:
    """Contexts with room for one sequence per value of a closed choice, in one KV buffer.

    The answer is sequence 0; scoring the values of a closed choice copies it to sequences
    1..n (llama.cpp only tags the cells: no copy) and decodes every value in one batch. With a
    unified buffer the context's size is unchanged (idempotent).
    """
    bindings = _module("llama_cpp.llama_cpp")
    stock = bindings.llama_context_default_params
    if getattr(stock, "__openai_structured__", False):
        return

    def with_sequences() -> Any:
        params = stock()
        params.n_seq_max = max(int(params.n_seq_max), CHOICE_SEQUENCES)
        params.kv_unified = True
        return params

    with_sequences.__openai_structured__ = True  # type: ignore[attr-defined]
    # llama_cpp.llama reads it through the module attribute when a model is loaded.
    setattr(bindings, "llama_context_default_params", with_sequences)  # noqa: B010


def _native_repetition(stock: Callable[..., str]) -> Callable[..., str]:
    def build(
        item_rule: str,
        min_items: int,
        max_items: int | None,
        separator_rule: str | None = None,
        item_rule_is_literal: bool = False,
    ) -> str:
        """llama.cpp's ``{m,n}`` (n rules) instead of n nested optional groups."""
        if max_items is None or item_rule_is_literal or max_items - min_items < 2:
            return stock(item_rule, min_items, max_items, separator_rule, item_rule_is_literal)
        if separator_rule is None:
            return f"({item_rule}){{{min_items},{max_items}}}"
        rest = f"({separator_rule} {item_rule}){{{max(min_items - 1, 0)},{max_items - 1}}}"
        return f"{item_rule} {rest}" if min_items > 0 else f"({item_rule} {rest})?"

    return build


def _request_defaults() -> None:
    """Temperature 0 and repeat penalty 1.0 when the request gives none (before app import)."""
    types = _module("llama_cpp.server.types")
    pydantic = _module("pydantic")
    for name in ("CreateChatCompletionRequest", "CreateCompletionRequest"):
        base = getattr(types, name)
        if getattr(base, "__openai_structured__", False):
            continue
        fields: dict[str, Any] = {}
        # The stock bounds: none for temperature (negative: sampling without top-k...), >= 0
        # for the penalty.
        for field, default, bounds in (
            ("temperature", 0.0, {}),
            ("repeat_penalty", 1.0, {"ge": 0.0}),
        ):
            info = base.model_fields[field]
            fields[field] = (
                float,
                pydantic.Field(
                    default=default,
                    description=f"{info.description or field} (openai-structured: {default})",
                    **bounds,
                ),
            )
        model = pydantic.create_model(name, __base__=base, __module__=base.__module__, **fields)
        model.__openai_structured__ = True
        setattr(types, name, model)


def _error_status() -> None:
    errors = _module("llama_cpp.server.errors")
    pattern = re.compile("^" + re.escape(ERROR_PREFIX) + ".*", re.DOTALL)

    def bad_request(request: Any, match: Any) -> tuple[int, Any]:
        return 400, errors.ErrorResponse(
            message=match.group(0),
            type="invalid_request_error",
            param="response_format",
            code=None,
        )

    errors.RouteErrorHandler.pattern_and_formatters[pattern] = bad_request


# --- the request: schema -> bounded grammar, max_tokens ------------------------------------


# A copied value's placeholder (``_copying.sentinel``) as the converter writes its literal.
_PLACEHOLDER = re.compile(r'"\\"@@openai-structured:copy-([a-z0-9/-]+)@@\\""')


def to_gbnf(schema: Mapping[str, Any], caps: Caps, copy_from: CopySource | None = None) -> str:
    """The GBNF grammar of a :func:`~._bounds.grammar_schema` schema, with every repetition
    bounded and the placeholders of copied values replaced by ``copy_from``'s rules. Raises
    :class:`GrammarError` when the converter fails."""
    grammar = _module("llama_cpp.llama_grammar")
    _json_grammar()  # idempotent; also when this runs outside the server (tests)
    converter = grammar.SchemaConverter(
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    try:
        resolved = converter.resolve_refs(json.loads(json.dumps(schema)), "input")
        converter.visit(resolved, "")
    except RecursionError:
        raise GrammarError(f"{ERROR_PREFIX}: it nests too deeply for a grammar") from None
    except Exception as exc:
        raise GrammarError(f"{ERROR_PREFIX}: {type(exc).__name__}: {exc}") from exc
    rules: dict[str, str] = converter._rules
    items = caps.items - 1
    generic = {
        # "Any value" places: the converter's own primitives, with bounded lists and strings.
        "string": rf'"\"" char{{0,{caps.chars}}} "\"" space',
        "array": f'"[" space ( value ("," space value){{0,{items}}} )? "]" space',
        "object": (
            '"{" space ( string ":" space value ("," space string ":" space value)'
            f'{{0,{items}}} )? "}}" space'
        ),
    }
    for name, rule in generic.items():
        if rules.get(name) == grammar.PRIMITIVE_RULES[name].content:
            rules[name] = rule
    gbnf = bound_repetitions(converter.format_grammar(), caps.chars)
    if copy_from is None:
        return gbnf
    used: list[str] = []

    def copied(match: re.Match[str]) -> str:
        used.append(match.group(1))
        return rule_name(match.group(1))

    gbnf = _PLACEHOLDER.sub(copied, gbnf)
    rules = copy_from.rules(dict.fromkeys(used))
    lines = "".join(f"{name} ::= {body}\n" for name, body in rules.items())
    return gbnf.rstrip("\n") + "\n" + lines


def bound_repetitions(gbnf: str, limit: int) -> str:
    """``gbnf`` with every unbounded ``*`` / ``+`` (outside literals and classes) bounded to
    ``limit`` repetitions (additional properties, patterns' ``+``...)."""
    out: list[str] = []
    i, n = 0, len(gbnf)
    while i < n:
        char = gbnf[i]
        if char in '"[':
            end = _skip_token(gbnf, i)
            out.append(gbnf[i:end])
            i = end
            continue
        if char == "*":
            out.append(f"{{0,{limit}}}")
        elif char == "+":
            out.append(f"{{1,{limit}}}")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _skip_token(gbnf: str, start: int) -> int:
    """The index after the literal or class starting at ``start`` (GBNF escapes honoured)."""
    close = '"' if gbnf[start] == '"' else "]"
    i = start + 1
    while i < len(gbnf):
        if gbnf[i] == "\\":
            i += 2
            continue
        if gbnf[i] == close:
            return i + 1
        i += 1
    return len(gbnf)


def shape_chat_request(
    kwargs: Mapping[str, Any],
    *,
    count_tokens: Callable[[str], int],
    n_ctx: int,
    parses: Callable[[str], bool],
    copying: bool = True,
    by_name: bool = True,
    mentions: bool = True,
    listed: bool = True,
    rows: bool = True,
    prompt: str | None = None,
    choices: dict[tuple[str, ...], list[str]] | None = None,
    draft_values: bool = True,
    draft_words: bool = True,
    draft_out: list[KeyDraft] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of ``Llama.create_chat_completion`` for a request, bounded.

    For ``response_format={"type": "json_object"[, "schema": ...]}`` (and no grammar of the
    caller's own): the schema's bounded grammar replaces ``response_format``, and without a
    ``max_tokens`` the request gets :func:`~._bounds.output_limit` (None when that would not
    leave the prompt room: llama-cpp-python then stops at the end of the context).
    ``parses`` says whether llama.cpp accepts a grammar. With ``copying``, values the schema
    types are only copied from the user's text (:mod:`._copying`). ``prompt`` is the document
    the model is shown, when it is one (its tokens are counted for the limit). ``choices``,
    when given, is filled with the answer's closed choices (:func:`~._choosing.closed_choices`);
    ``draft_out`` with the :class:`~._drafting.KeyDraft` of the grammar's schema (with its
    closed places, :func:`~._choosing.closed_places`, if ``draft_values``; with the runs of
    the text's words it copies, if ``draft_words``).
    Anything else passes unchanged.
    """
    out = dict(kwargs)
    response_format = out.get("response_format")
    if not isinstance(response_format, Mapping) or response_format.get("type") != "json_object":
        return out
    if out.get("grammar") is not None:
        return out
    messages = list(out.get("messages") or [])
    text = input_text(messages)
    caps = caps_for(text)
    schema = response_format.get("schema") or {}

    def checked(pattern: str) -> str | None:
        safe = safe_pattern(pattern)
        if safe is None:
            return None
        try:
            alone = to_gbnf({"type": "string", "pattern": safe}, caps)
        except GrammarError:
            return None
        return safe if parses(alone) else None

    users = [m for m in messages if m.get("role") == "user"]
    source = CopySource(
        input_text(users),
        by_name=by_name,
        mentions=mentions,
        listed=listed,
        rows=rows,
        labelled=len(users) == 1,
    )
    copy_from = source if copying and source.usable else None
    if copy_from is not None:
        copy_from = outside_lists(schema, caps, copy_from, pattern=checked)
    bounded = grammar_schema(schema, caps, pattern=checked, copy_from=copy_from)
    gbnf = to_gbnf(bounded, caps, copy_from)
    if not parses(gbnf):
        raise GrammarError(
            f"{ERROR_PREFIX}: llama.cpp rejects the grammar made from it (see the server's "
            "output). Simplify the schema (fewer nested lists, smaller maxItems/maxLength)."
        )
    grammar = _module("llama_cpp.llama_grammar").LlamaGrammar.from_string(gbnf, verbose=False)
    if choices is not None:
        choices.update(closed_choices(bounded, copy_from))
    if draft_out is not None and bounded:
        places = closed_places(bounded, copy_from) if draft_values else None
        copied = None
        if draft_words and copy_from is not None:
            copied = CopiedWords(spanned_places(bounded), copy_from.words)
        draft_out.append(KeyDraft(bounded, places, copied))
    out["grammar"] = grammar
    out["response_format"] = None
    if out.get("max_tokens") is None:
        input_tokens = count_tokens(text)
        limit = output_limit(
            skeleton_tokens=count_tokens(schema_skeleton(bounded)), input_tokens=input_tokens
        )
        # The prompt is the messages' text plus a few template tokens per message; llama.cpp
        # refuses a request whose prompt + max_tokens exceeds the context.
        others = sum(
            count_tokens(input_text([{**m, "role": "user"}]))
            for m in messages
            if m.get("role") == "assistant"
        )
        if prompt is not None:  # the document the model is shown (see _prompting)
            prompt_tokens = count_tokens(prompt) + 8
        else:
            prompt_tokens = input_tokens + others + 8 * len(messages) + 16
        out["max_tokens"] = limit if prompt_tokens + limit <= n_ctx else None
    return out


@dataclass(frozen=True)
class _Request:
    #: The prompt and stop strings, when the request is put as a document (:mod:`._prompting`)
    #: rather than chat turns: for the chat formatter (``_child.format_gemma3``).
    document: tuple[str, list[str]] | None
    #: The answer's closed choices, for the sampler (:mod:`._choosing`).
    choices: Mapping[tuple[str, ...], list[str]]
    #: What the answer can be made of (:func:`~._head.request_texts`): where the grammar
    #: admits only pieces of these, the sampler needs only their logits.
    texts: tuple[str, ...] = ()


#: The structured request being answered in this thread (set around llama-cpp-python's
#: create_chat_completion, which formats the prompt and builds the sampler synchronously).
_REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "openai_structured_request", default=None
)


def document_prompt() -> tuple[str, list[str]] | None:
    """The document prompt of the request being answered in this thread, if it has one."""
    request = _REQUEST.get()
    return None if request is None else request.document


def _wrap_chat(llama_class: Any) -> None:
    stock = llama_class.create_chat_completion
    if getattr(stock, "__wrapped__", None) is not None:
        return
    bindings = _module("llama_cpp.llama_cpp")
    style = style_from_environment()

    @functools.wraps(stock)
    def create_chat_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not args:

            def count(text: str) -> int:
                return len(self.tokenize(text.encode("utf-8"), add_bos=False, special=False))

            def parses(gbnf: str) -> bool:
                sampler = bindings.llama_sampler_init_grammar(
                    self._model.vocab, gbnf.encode("utf-8"), b"root"
                )
                if not sampler:
                    return False
                bindings.llama_sampler_free(sampler)
                return True

            document = None
            schema = schema_of(kwargs.get("response_format"))
            messages = list(kwargs.get("messages") or [])
            if kwargs.get("grammar") is None:
                document = completion_prompt(messages, schema, style)
            choices: dict[tuple[str, ...], list[str]] = {}
            drafts: list[KeyDraft] = []
            kwargs = shape_chat_request(
                kwargs,
                count_tokens=count,
                n_ctx=self.n_ctx(),
                parses=parses,
                copying=style.copy_values,
                by_name=style.by_name,
                mentions=style.mentions,
                listed=style.listed,
                rows=style.rows,
                prompt=document[0] if document else None,
                choices=choices if style.choose_whole else None,
                draft_values=style.draft_values,
                draft_words=style.draft_words,
                draft_out=drafts,
            )
            texts: tuple[str, ...] = ()
            grammar = kwargs.get("grammar")
            if grammar is not None and style.partial_head:
                shown = document[0] if document else input_text(messages)
                from ._head import request_texts

                texts = tuple(request_texts(shown, schema, str(grammar._grammar)))
            request = _Request(document, choices, texts)
        else:
            request = _Request(None, {})
            drafts = []
        draft = self.draft_model
        if isinstance(draft, KeyTokens):  # a new request: its own keys, or none
            draft.begin(drafts[0] if drafts and style.draft_keys else None)
        # Evaluate the whole prompt, as for the first request: reusing the previous request's
        # prefix changes the logits a little (llama.cpp's sums depend on the batch), and with
        # them a small model's greedy answer. The same request gets the same answer.
        self.reset()
        token = _REQUEST.set(request)
        try:
            return stock(self, *args, **kwargs)
        finally:
            _REQUEST.reset(token)

    llama_class.create_chat_completion = create_chat_completion


# --- the sampler -----------------------------------------------------------------------------


def _plan_for(llama: Any, kwargs: Mapping[str, Any]) -> ChoicePlan | None:
    """The closed choices of the request being answered (set by the chat wrapper), if any."""
    request = _REQUEST.get()
    if request is None or not request.choices:
        return None
    temperature = kwargs.get("temp", 0.0)
    return ChoicePlan(
        choices=request.choices,
        greedy=temperature is not None and float(temperature) <= 0.0,
        tokenize=lambda text: list(
            llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        ),
        n_tokens=lambda: int(llama.n_tokens),
    )


class KeyTokens:
    """llama-cpp-python's ``draft_model`` for a structured answer: the tokens of
    :class:`~._drafting.KeyDraft`'s text, given the answer so far (``input_ids``)."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama
        self._draft: KeyDraft | None = None
        self._seen: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def begin(self, draft: KeyDraft | None) -> None:
        """A new request: its draft, or None (nothing drafted)."""
        self._draft = draft
        self._seen = None
        self._decoder.reset()
        self._llama._openai_structured_sampler = None  # the request's own, once it has one

    def __call__(self, input_ids: Any) -> Any:
        numpy = _module("numpy")
        none = numpy.zeros(0, dtype=numpy.intc)
        if self._draft is None:
            return none
        # Called once per token with the whole context: read only the tokens new since.
        if self._seen is None or self._seen > len(input_ids):
            self._seen = len(input_ids) - 1  # the prompt: all but the answer's first token
        piece = self._llama.detokenize([int(token) for token in input_ids[self._seen :]])
        self._seen = len(input_ids)
        self._draft.feed(self._decoder.decode(piece))
        text = self._draft.next_text()
        sampler = getattr(self._llama, "_openai_structured_sampler", None)
        if not text or sampler is None:
            return none  # (llama-cpp-python's own sampler would need every row's logits)
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        # Only what the grammar admits: the sampler then takes every drafted token without
        # their logits, which the batch does not compute (see _wrap_eval).
        tokens = tokens[: sampler.admitted(tokens)]
        if not tokens:
            return none
        self._llama._openai_structured_batch = len(tokens)
        return numpy.array(tokens, dtype=numpy.intc)


def _drafted_token(llama: Any, idx: int) -> int | None:
    """The token a draft put right after the logits row ``idx`` (negative: from the end of
    the last evaluation), or None where there is none."""
    if idx >= -1:
        return None
    return int(llama.input_ids[llama.n_tokens + idx + 1])


def _wrap_eval(llama_class: Any) -> None:
    """A drafted batch is evaluated in one decode with the logits of its last token only:
    the sampler takes each drafted token, which the grammar admits (:class:`KeyTokens`),
    without looking at logits (a vocabulary of 262k makes each row's logits cost as much as
    the rest of the model's work for the token)."""
    stock = llama_class.eval
    if getattr(stock, "__wrapped__", None) is not None:
        return

    @functools.wraps(stock)
    def eval(self: Any, tokens: Any) -> None:
        tap: HiddenTap | None = getattr(self._ctx, "_openai_structured_tap", None)
        if tap is None:
            _evaluate(self, tokens)
            return
        sampler = getattr(self, "_openai_structured_sampler", None)
        # Where the grammar admits only the request's candidates after these tokens, the
        # output layer is skipped (the sampler computes the candidates' logits, _head).
        tap.begin(skip=sampler is not None and self.n_tokens > 0 and sampler.restricted(tokens))
        try:
            _evaluate(self, tokens)
        finally:
            tap.armed = False

    def _evaluate(self: Any, tokens: Any) -> None:
        drafted = getattr(self, "_openai_structured_batch", 0)
        self._openai_structured_batch = 0
        if not drafted or len(tokens) < 2 or len(tokens) > self.n_batch:
            stock(self, tokens)
            return
        self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)
        batch = list(tokens)
        self._batch.set_batch(batch=batch, n_past=self.n_tokens, logits_all=False)
        self._ctx.decode(self._batch)
        self.input_ids[self.n_tokens : self.n_tokens + len(batch)] = batch
        self.n_tokens += len(batch)
        self._requires_eval = False

    llama_class.eval = eval
    original_init = llama_class.__init__
    if getattr(original_init, "__wrapped__", None) is None:

        @functools.wraps(original_init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            if self.draft_model is None:
                self.draft_model = KeyTokens(self)

        llama_class.__init__ = __init__


def _tap_contexts() -> None:
    """Every llama.cpp context gets a :class:`~._head.HiddenTap` as its eval callback (kept
    on the context: ctypes frees a callback nothing refers to)."""
    internals = _module("llama_cpp._internals")
    stock = internals.LlamaContext.__init__
    if getattr(stock, "__wrapped__", None) is not None:
        return
    bindings = _module("llama_cpp.llama_cpp")
    from ._head import HiddenTap

    @functools.wraps(stock)
    def __init__(self: Any, *args: Any, model: Any, params: Any, **kwargs: Any) -> None:
        n_embd = int(bindings.llama_model_n_embd(model.model))
        tap = HiddenTap(n_embd, bindings.ggml_backend_sched_eval_callback)
        params.cb_eval = tap.callback
        stock(self, *args, model=model, params=params, **kwargs)
        self._openai_structured_tap = tap

    internals.LlamaContext.__init__ = __init__


#: The output layer of each model file (None: this module cannot compute its logits), read
#: at the first request that can use it.
_HEADS: dict[str, Any] = {}
#: Our logits against llama.cpp's, checked once per process at the first request: [ok].
_HEAD_CHECK: list[bool] = []
#: How far our logits may be from llama.cpp's (measured: 7e-6 at most for Gemma 3 270M).
HEAD_TOLERANCE = 0.05


def _vocab_pieces(llama: Any) -> Any:
    """The text of every token of the model's vocabulary (once per vocabulary size)."""
    from ._head import VocabPieces

    n = int(llama._n_vocab)
    vocab = _VOCABS.get(n)
    if vocab is None:
        bindings = _module("llama_cpp.llama_cpp")

        def ends(token: int) -> bool:
            return bool(bindings.llama_vocab_is_eog(llama._model.vocab, token))

        pieces = _pieces(n, functools.partial(_piece, llama._model))
        vocab = _VOCABS[n] = VocabPieces(pieces, ends)
    return vocab


def _request_head(llama: Any, kwargs: Mapping[str, Any]) -> RequestHead | None:
    """The output layer for the candidates of the request being answered, where the sampler
    may use it: a greedy request with candidates, no logits processor, no closed choices."""
    from ._head import OutputHead, RequestHead, candidate_ids, probe_ids

    request = _REQUEST.get()
    tap = getattr(llama._ctx, "_openai_structured_tap", None)
    temperature = kwargs.get("temp", 0.0)
    if (
        request is None
        or not request.texts
        or request.choices
        or tap is None
        or kwargs.get("logits_processor") is not None
        or temperature is None
        or float(temperature) > 0.0
        or _HEAD_CHECK == [False]
    ):
        return None
    path = str(llama.model_path)
    if path not in _HEADS:
        from ._head import read_gguf, token_pieces

        bindings = _module("llama_cpp.llama_cpp")
        n_vocab = int(llama._n_vocab)
        n_embd = int(bindings.llama_model_n_embd(llama._model.model))
        try:
            gguf = read_gguf(path)
            _HEADS[path] = OutputHead.load(gguf, n_vocab, n_embd)
        except (OSError, ValueError) as exc:
            _say(f"the output layer cannot be read ({exc}): every token's logits computed")
            _HEADS[path] = None
        else:  # the tokens' text from the file: 0.2 s, not 0.9 s of llama.cpp calls
            read = token_pieces(gguf[1])
            if read is not None and len(read) == n_vocab and n_vocab not in _PIECES:
                model = llama._model
                _PIECES[n_vocab] = [
                    _piece(model, token) if piece is None else piece
                    for token, piece in enumerate(read)
                ]
    head = _HEADS[path]
    if head is None:
        return None
    vocab = _vocab_pieces(llama)
    candidates = candidate_ids(vocab, request.texts)
    return RequestHead(
        head, candidates, probe_ids(vocab, candidates), relogit=functools.partial(_relogit, llama)
    )


def _relogit(llama: Any) -> Any:
    """The logits of the last token, decoded again with its output layer."""
    numpy = _module("numpy")
    bindings = _module("llama_cpp.llama_cpp")
    position = int(llama.n_tokens) - 1
    llama._ctx.kv_cache_seq_rm(-1, position, -1)
    llama._batch.set_batch(batch=[int(llama.input_ids[position])], n_past=position, logits_all=True)
    llama._ctx._openai_structured_tap.begin(skip=False)
    llama._ctx.decode(llama._batch)
    logits = bindings.llama_get_logits_ith(llama._ctx.ctx, -1)
    return numpy.ctypeslib.as_array(logits, shape=(int(llama._n_vocab),))


def _wrap_sampler(llama_class: Any) -> None:
    stock = llama_class._init_sampler
    if getattr(stock, "__wrapped__", None) is not None:
        return
    bindings = _module("llama_cpp.llama_cpp")
    warned: list[str] = []

    @functools.wraps(stock)
    def _init_sampler(self: Any, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
        self._openai_structured_sampler = None  # this generation's own, if it has one
        if grammar is None or args:
            return stock(self, *args, grammar=grammar, **kwargs)
        compiled = bindings.llama_sampler_init_grammar(
            self._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not compiled:
            # llama-cpp-python would add the NULL sampler to its chain and crash the process.
            raise GrammarError(f"{ERROR_PREFIX}: llama.cpp rejects its grammar")
        chain = stock(self, grammar=None, **kwargs)
        try:
            top = max(TOP_CANDIDATES, int(kwargs.get("top_k", 0) or 0))
            sampler = FirstChoiceGrammarSampler(
                chain,
                compiled,
                self._n_vocab,
                top=top,
                with_processor=kwargs.get("logits_processor") is not None,
                piece=functools.partial(_piece, self._model),
                plan=_plan_for(self, kwargs),
                drafted=functools.partial(_drafted_token, self),
                null_bias=style_from_environment().null_bias,
                head=_request_head(self, kwargs),
                tap=getattr(self._ctx, "_openai_structured_tap", None),
            )
            self._openai_structured_sampler = sampler  # what checks and takes the drafts
            return sampler
        except Exception as exc:  # an unexpected chain: the stock one, slower but right
            bindings.llama_sampler_free(compiled)
            if not warned:
                warned.append(str(exc))
                _say(f"grammar sampler not used ({exc}): llama-cpp-python's own instead")
            return stock(self, grammar=grammar, **kwargs)

    llama_class._init_sampler = _init_sampler


#: The first character (spaces aside) of every token of the server's vocabulary, by its size
#: (one model per server).
_FIRST_CHARS: dict[int, Any] = {}
#: The text of every token of the server's vocabulary, by its size, and those pieces indexed
#: for the output layer's candidates (:class:`~._head.VocabPieces`).
_PIECES: dict[int, list[str]] = {}
_VOCABS: dict[int, Any] = {}


def _pieces(n_vocab: int, piece: Callable[[int], str]) -> list[str]:
    found = _PIECES.get(n_vocab)
    if found is None:  # 0.9 s once per server, unless the GGUF's list was read (_request_head)
        found = _PIECES[n_vocab] = [piece(token) for token in range(n_vocab)]
    return found


@dataclass(frozen=True)
class ChoicePlan:
    """What the sampler of one request needs to choose closed values whole."""

    #: The closed places of the answer and their values (:func:`~._choosing.closed_choices`).
    choices: Mapping[tuple[str, ...], list[str]]
    #: Whether the request is decoded greedily (a sampled request keeps its sampling).
    greedy: bool
    tokenize: Callable[[str], list[int]]
    #: The tokens in the context so far (where a value's scoring starts).
    n_tokens: Callable[[], int]


def _piece(model: Any, token: int) -> str:
    """The text of one token."""
    return str(model.detokenize([token]).decode("utf-8", errors="replace"))


class FirstChoiceGrammarSampler:
    """Stands in for the ``LlamaSampler`` chain of ``Llama.generate()`` when there is a grammar.

    ``chain`` is llama-cpp-python's own chain built without the grammar: its logit modifiers
    (a logits processor, the penalties), then its choice (greedy, or top-k ... dist). Per token:

    1. apply the chain to all candidates; if the grammar admits the chosen token, take it
       (greedy: the best token overall is allowed, so it is also the best allowed one);
    2. else apply the modifiers, keep the ``top`` best candidates, drop those the grammar
       rejects and choose among the rest (greedy: the same token as the grammar applied to
       every candidate first, llama-cpp-python's order);
    3. else (none of them allowed: e.g. only the end of the turn is) apply the grammar to the
       whole vocabulary, then choose.

    The chosen token is accepted by the chain (the penalties' history) and by the grammar,
    which has always admitted it: llama.cpp aborts the process on a token its grammar rejects.
    """

    def __init__(
        self,
        chain: Any,
        grammar: Any,
        n_vocab: int,
        *,
        top: int,
        with_processor: bool,
        piece: Callable[[int], str],
        plan: ChoicePlan | None = None,
        drafted: Callable[[int], int | None] = lambda idx: None,
        null_bias: float = 0.0,
        head: RequestHead | None = None,
        tap: HiddenTap | None = None,
    ) -> None:
        import numpy as np

        #: The output layer for the request's candidates, and the decodes' hidden states: where
        #: a decode skipped the output layer, the candidates' logits (:mod:`._head`).
        self._head = head if tap is not None else None
        self._tap = tap
        #: Where the tokens of each set (:meth:`_tokens_starting`) sit among the candidates.
        self._positions: dict[str, Any] = {}

        #: The token drafted (:class:`KeyTokens`) right after the logits at ``idx``, if any.
        self._drafted = drafted
        self._null_bias = null_bias
        self._np = np
        self._b = _module("llama_cpp.llama_cpp")
        b = self._b
        # Owned only once everything below worked (see close()).
        self._chain: Any = None
        self._grammar: Any = None
        self._top_k: Any = None
        self._wide_k: Any = None
        handle = chain.sampler
        samplers = [
            b.llama_sampler_chain_get(handle, i) for i in range(b.llama_sampler_chain_n(handle))
        ]
        # The modifiers: a logits processor (a Python sampler: asking its name crashes), then
        # the penalties ("?penalties" when they do nothing).
        split = 2 if with_processor else 1
        if len(samplers) <= split or b.llama_sampler_name(samplers[split - 1]).lstrip(b"?") != (
            b"penalties"
        ):
            raise ValueError("the sampler chain is not the one this llama-cpp-python built")
        self._modifiers, self._choice = samplers[:split], samplers[split:]
        self._n = n_vocab
        self._top = min(top, n_vocab)
        dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
        if dtype.itemsize != ctypes.sizeof(b.llama_token_data):
            raise ValueError("llama_token_data has an unexpected layout")
        self._ids = np.arange(n_vocab, dtype=np.intc)
        self._buf = np.zeros(n_vocab, dtype=dtype)
        self._arr = self._array(self._buf)
        self._one = np.zeros(1, dtype=dtype)
        self._one_arr = self._array(self._one)
        probes = 0 if self._head is None else len(self._head.probes)
        self._probes = np.zeros(probes, dtype=dtype)
        if self._head is not None:
            self._probes["id"] = self._head.probes
        self._probes_arr = self._array(self._probes)
        #: How each token was chosen: the first choice, among the top candidates, or all; and
        #: how often a loop was broken.
        self.counts = {
            "first": 0,
            "top": 0,
            "wide": 0,
            "all": 0,
            "loop": 0,
            "chosen": 0,
            "decisive": 0,
            "drafted": 0,
            "partial": 0,
            "relogit": 0,
        }
        self._history: list[int] = []
        self._looping: int | None = None
        self._piece = piece
        self._repeats = ListRepeats()
        self._path = ValuePath()
        self._plan = plan
        self._queue: list[int] = []
        self._batch_size = 512
        self._batch: Any = None
        if plan is not None and plan.greedy:
            self._batch = _module("llama_cpp._internals").LlamaBatch(
                n_tokens=self._batch_size, embd=0, n_seq_max=1, verbose=False
            )
        self._starting: dict[str, Any] = {}  # token sets by first characters, when needed
        self._top_k = b.llama_sampler_init_top_k(self._top)
        self._wide_k = b.llama_sampler_init_top_k(min(max(WIDE_CANDIDATES, self._top), n_vocab))
        self._chain = chain  # owns the C chain and the Python callbacks in it
        self._grammar = grammar

    def _array(self, buf: Any) -> Any:
        b = self._b
        return b.llama_token_data_array(
            data=buf.ctypes.data_as(b.llama_token_data_p),
            size=len(buf),
            selected=-1,
            sorted=False,
        )

    def _load(self, logits: Any, head: RequestHead | None = None) -> Any:
        """The candidates (every token, or ``head``'s) with their ``logits``, biased."""
        size = len(logits)
        buf = self._buf[:size]
        buf["id"] = self._ids if head is None else head.ids
        buf["logit"] = logits
        scores = buf["logit"]
        if self._looping is not None:
            scores[self._at([self._looping], head)] -= LOOP_PENALTY
        if self._repeats.repeated:
            scores[self._starting_at(",", head)] -= LOOP_PENALTY
        if self._null_bias and self._path.at_value() is not None:
            scores[self._starting_at("n", head)] += self._null_bias
        arr = self._arr
        arr.size, arr.selected, arr.sorted = size, -1, False
        return arr

    def _at(self, tokens: Any, head: RequestHead | None) -> Any:
        return tokens if head is None else head.positions(tokens)

    def _starting_at(self, chars: str, head: RequestHead | None) -> Any:
        """Where the tokens starting with one of ``chars`` sit among the candidates."""
        if head is None:
            return self._tokens_starting(chars)
        found = self._positions.get(chars)
        if found is None:
            found = self._positions[chars] = head.positions(self._tokens_starting(chars))
        return found

    def _structural(self, token: int) -> bool:
        return any(char in self._piece(token) for char in ',"{[')

    def _tokens_starting(self, chars: str) -> Any:
        """The tokens whose text (spaces aside) starts with one of ``chars``."""
        found = self._starting.get(chars)
        if found is None:
            np = self._np
            firsts = _FIRST_CHARS.get(self._n)
            if firsts is None:
                firsts = np.array([p.lstrip()[:1] for p in _pieces(self._n, self._piece)])
                _FIRST_CHARS[self._n] = firsts
            found = np.flatnonzero(np.isin(firsts, list(chars))).astype(np.intc)
            self._starting[chars] = found
        return found

    def _apply(self, samplers: list[Any], arr: Any) -> None:
        for sampler in samplers:
            self._b.llama_sampler_apply(sampler, ctypes.byref(arr))

    def _chosen(self, arr: Any) -> int | None:
        index = int(arr.selected)
        if not 0 <= index < int(arr.size) or not math.isfinite(float(self._buf["logit"][index])):
            return None
        return int(self._buf["id"][index])

    def admitted(self, tokens: Sequence[int]) -> int:
        """How many of ``tokens``, in turn, the grammar admits from where the answer is."""
        b = self._b
        grammar = b.llama_sampler_clone(self._grammar)
        if not grammar:
            return 0
        try:
            return self._advance(grammar, tokens)
        finally:
            b.llama_sampler_free(grammar)

    def _advance(self, grammar: Any, tokens: Sequence[int]) -> int:
        """Accept ``tokens`` in turn into ``grammar`` (a copy) while it admits them; how many."""
        for count, token in enumerate(tokens):
            if not self._admitted_by(grammar, int(token)):
                return count
            self._b.llama_sampler_accept(grammar, int(token))
        return len(tokens)

    def _admits(self, token: int) -> bool:
        return self._admitted_by(self._grammar, token)

    def restricted(self, tokens: Sequence[int]) -> bool:
        """Whether, after ``tokens`` (the token just taken, then a draft), the grammar admits
        none of the request's probes: then only its candidates matter, and the next decode
        needs no output layer (:mod:`._head`)."""
        head = self._head
        if head is None or not len(tokens) or not self._history:
            return False
        if int(tokens[0]) != self._history[-1]:
            return False  # not this answer's next decode
        b = self._b
        grammar = self._grammar
        if len(tokens) > 1:
            grammar = b.llama_sampler_clone(self._grammar)
            if not grammar:
                return False
        try:
            if self._advance(grammar, tokens[1:]) < len(tokens) - 1:
                return False
            if not len(self._probes):
                return True
            self._probes["logit"] = 0.0  # the grammar sets those it rejects to -inf
            arr = self._probes_arr
            arr.size, arr.selected, arr.sorted = len(self._probes), -1, False
            b.llama_sampler_apply(grammar, ctypes.byref(arr))
            return not bool(self._np.isfinite(self._probes["logit"]).any())
        finally:
            if grammar is not self._grammar:
                b.llama_sampler_free(grammar)

    def _admitted_by(self, grammar: Any, token: int) -> bool:
        """Whether ``grammar`` (the request's, or a copy of it) admits ``token`` next."""
        self._one[0] = (token, 1.0, 0.0)
        arr = self._one_arr
        arr.size, arr.selected, arr.sorted = 1, -1, False
        self._b.llama_sampler_apply(grammar, ctypes.byref(arr))
        return math.isfinite(float(self._one["logit"][0]))

    def _continues_repeat(self, token: int) -> bool:
        """Whether ``token`` goes on with a list right after an item that repeats."""
        text = self._piece(token)
        return "," in text and self._repeats.would_continue(text)

    def _keep_allowed(self, arr: Any, *, check_repeats: bool = False) -> bool:
        """Drop the candidates the grammar rejected (its -inf), keeping their order (and, with
        ``check_repeats``, those that would go on with a list after a repeated item)."""
        np = self._np
        size = int(arr.size)
        allowed = np.isfinite(self._buf["logit"][:size])
        if check_repeats:
            for i in np.flatnonzero(allowed):
                if self._continues_repeat(int(self._buf["id"][i])):
                    allowed[i] = False
        count = int(allowed.sum())
        if count == 0:
            return False
        if count < size:
            self._buf[:count] = self._buf[:size][allowed]
            arr.size = count
        arr.selected = -1
        return True

    def sample(self, ctx: Any, idx: int = -1) -> int:
        b = self._b
        drafted = self._drafted(idx)
        if drafted is not None and self._admits(drafted):
            if self._queue and self._queue[0] != drafted:
                self._queue.clear()
            elif self._queue:
                self._queue.pop(0)
            # A key the grammar writes anyway, in the draft's tokens (the model might have
            # split it otherwise: the text is the same, and the batch is kept).
            self.counts["drafted"] += 1
            return self._take(drafted)
        if self._queue:  # the rest of a value chosen whole
            token = self._queue.pop(0)
            if self._admits(token):
                self.counts["chosen"] += 1
                return self._take(token)
            self._queue.clear()
        self._looping = loop_continuation(self._history, self._structural)
        if self._looping is not None:
            self.counts["loop"] += 1
        logits = None
        if self._head is not None and self._tap is not None and self._tap.stopped:
            partial = self._choose(self._head.logits(self._tap.hidden), self._head)
            if partial is not None:
                self.counts["partial"] += 1
                return self._take(partial)
            self.counts["relogit"] += 1  # no candidate admitted: every token's logits
            logits = self._head.relogit()
        if logits is None:
            logits = self._np.ctypeslib.as_array(
                b.llama_get_logits_ith(ctx.ctx, idx), shape=(self._n,)
            )
            self._check_head(logits, idx)
        choice = self._choose(logits)
        if choice is None:
            raise GrammarError(f"{ERROR_PREFIX}: its grammar admits no next token")
        token = choice
        values = self._closed_values(token)
        if values is not None:
            chosen = self._likeliest(ctx, values, logits)
            if chosen and self._admits(chosen[0]):
                self.counts["chosen"] += 1
                token, self._queue = chosen[0], chosen[1:]
        return self._take(token)

    def _choose(self, logits: Any, head: RequestHead | None = None) -> int | None:
        """The token chosen among every token (or ``head``'s candidates, None when the grammar
        admits none of them) with these logits."""
        arr = self._load(logits, head)
        self._apply(self._modifiers, arr)
        self._apply(self._choice, arr)
        first = self._chosen(arr)
        if first is not None and self._admits(first) and not self._continues_repeat(first):
            self.counts["first"] += 1
            return first
        return self._resample(logits, head)

    def _check_head(self, logits: Any, idx: int) -> None:
        """Once per process: the candidates' logits as we compute them against llama.cpp's
        (a model whose output layer differs is then decoded with its own, always)."""
        head, tap = self._head, self._tap
        if _HEAD_CHECK or head is None or tap is None or tap.hidden is None or idx != -1:
            return
        ours = head.logits(tap.hidden)
        worst = float(self._np.abs(ours - self._np.asarray(logits)[head.ids]).max())
        _HEAD_CHECK.append(worst <= HEAD_TOLERANCE)
        if worst > HEAD_TOLERANCE:
            self._head = None
            _say(
                f"the output layer's logits differ from llama.cpp's by {worst:.3g}: every "
                "token's logits computed"
            )

    def _take(self, token: int) -> int:
        b = self._b
        b.llama_sampler_accept(self._chain.sampler, token)
        b.llama_sampler_accept(self._grammar, token)
        self._history.append(token)
        del self._history[:-HISTORY]
        text = self._piece(token)
        self._repeats.feed(text)
        self._path.feed(text)
        return token

    def _closed_values(self, token: int) -> list[str] | None:
        """The values of the closed choice about to begin (see :mod:`._choosing`), unless the
        model's own next token ends the list or object instead."""
        if self._plan is None or not self._plan.greedy:
            return None
        path = self._path.at_value()
        values = self._plan.choices.get(path) if path is not None else None
        text = self._piece(token)
        if not values or text.lstrip()[:1] in ("]", "}") or (text and text.isspace()):
            return None  # the list or object ends; or a space first, written as it comes
        return values

    def _likeliest(self, ctx: Any, values: list[str], logits: Any) -> list[int]:
        """The tokens of the likeliest of ``values`` written here, with its end (a ``,``, ``}``
        or ``]`` next). All of them are decoded in one batch, each in its own sequence sharing
        the answer so far (:func:`_parallel_sequences`), then taken back out of the context."""
        plan = self._plan
        assert plan is not None and self._batch is not None
        b = self._b
        start = int(plan.n_tokens())
        lead = " " if self._path.last in (":", ",") and not self._path.spaced else ""
        first = self._log_probs(logits)
        candidates = [tokens for tokens in (plan.tokenize(lead + v) for v in values) if tokens]
        if not candidates:
            return []
        # Only the values the model would plausibly begin (their first token within
        # CHOICE_MARGIN of the best), at most CHOICE_WIDTH of them; when one value's first
        # token is far ahead and begins no other value, it is chosen as greedy decoding would.
        candidates.sort(key=lambda tokens: -float(first[tokens[0]]))
        best = float(first[candidates[0][0]])
        plausible = [t for t in candidates if float(first[t[0]]) >= best - CHOICE_MARGIN]
        if len(plausible) == 1 or (
            sum(t[0] == candidates[0][0] for t in candidates) == 1
            and best - float(first[candidates[1][0]]) >= CHOICE_DECISIVE
        ):
            self.counts["decisive"] += 1
            return candidates[0]
        candidates = plausible[:CHOICE_WIDTH]
        if sum(map(len, candidates)) > self._batch_size:
            return []
        if len(candidates) + 1 > int(b.llama_n_seq_max(ctx.ctx)):
            return []  # a context with one sequence (not our server's): token by token
        batch = self._batch.batch
        batch.n_tokens = 0
        rows: list[list[int]] = []
        for seq, tokens in enumerate(candidates, start=1):
            ctx.kv_cache_seq_cp(0, seq, 0, start)  # the answer so far, shared (not copied)
            rows.append([])
            for i, token in enumerate(tokens):
                k = batch.n_tokens
                batch.token[k], batch.pos[k] = token, start + i
                batch.seq_id[k][0], batch.n_seq_id[k], batch.logits[k] = seq, 1, True
                batch.n_tokens += 1
                rows[-1].append(k)
        ends = self._tokens_starting(",}]")
        scores = []
        try:
            ctx.decode(self._batch)
            for tokens, indices in zip(candidates, rows, strict=True):
                score = float(first[tokens[0]])
                for i, k in enumerate(indices):
                    probs = self._log_probs(
                        self._np.ctypeslib.as_array(
                            b.llama_get_logits_ith(ctx.ctx, k), shape=(self._n,)
                        )
                    )
                    if i + 1 < len(tokens):
                        score += float(probs[tokens[i + 1]])
                    else:
                        score += float(self._np.logaddexp.reduce(probs[ends]))
                scores.append(score)
        finally:
            for seq in range(1, len(candidates) + 1):
                ctx.kv_cache_seq_rm(seq, -1, -1)
        return candidates[max(range(len(scores)), key=scores.__getitem__)]

    def _log_probs(self, row: Any) -> Any:
        np = self._np
        row = np.asarray(row, dtype=np.float32)
        top = row.max()
        return row - (top + np.log(np.exp(row - top).sum(dtype=np.float64)))

    def _resample(self, logits: Any, head: RequestHead | None = None) -> int | None:
        b = self._b
        tier = "all"
        for which, top_k in (("top", self._top_k), ("wide", self._wide_k), ("all", None)):
            tier = which
            arr = self._load(logits, head)
            self._apply(self._modifiers, arr)
            if top_k is not None:
                b.llama_sampler_apply(top_k, ctypes.byref(arr))  # the best ones, sorted
            b.llama_sampler_apply(self._grammar, ctypes.byref(arr))
            if self._keep_allowed(arr, check_repeats=which == "top"):
                break
        else:
            return None
        self._apply(self._choice, arr)
        token = self._chosen(arr)
        if token is None:
            raise GrammarError(f"{ERROR_PREFIX}: no allowed token could be chosen")
        self.counts[tier] += 1
        return token

    def close(self) -> None:
        b = self._b
        if self._grammar is not None:
            b.llama_sampler_free(self._grammar)
            self._grammar = None
        for name in ("_top_k", "_wide_k"):
            sampler = getattr(self, name)
            if sampler is not None:
                b.llama_sampler_free(sampler)
                setattr(self, name, None)
        if self._chain is not None:
            self._chain.close()
            self._chain = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
