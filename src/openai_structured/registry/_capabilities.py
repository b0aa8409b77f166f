"""What one model accepts: limits, parameter rules, prices (SPEC §3).

A :class:`ModelCapabilities` is an immutable value built by the registry from its data file. It
answers the questions the request builder asks before anything is sent: is this parameter
allowed, is this value in range, does the model stream, which token-limit field does the API
take. Errors name the parameter, the value, the rule and what to do instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Any, Literal

from .._apis import API_NAMES, get_api
from .._apis import APIS as APIS_BY_NAME
from ..errors import OpenAIClientError, TokenLimitError, TokenParameterError

__all__ = [
    "APIS",
    "TOKEN_PARAMETERS",
    "ModelCapabilities",
    "ParameterSpec",
    "PriceTier",
    "Prices",
]

#: The three spellings of "maximum output tokens" users may pass. They are one limit: the
#: registry checks them against ``max_output_tokens`` and :meth:`ModelCapabilities.token_parameter`
#: says which spelling goes on the wire.
TOKEN_PARAMETERS: tuple[str, ...] = ("max_output_tokens", "max_completion_tokens", "max_tokens")

#: The APIs a model can be served on, in the order the library prefers them.
#: The API names, from the one object per API in ``_apis``.
APIS: tuple[str, ...] = API_NAMES


def _title(api: str) -> str:
    return APIS_BY_NAME[api].title if api in APIS_BY_NAME else api


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ParameterSpec:
    """The rule for one sampling parameter on one model.

    ``kind`` is ``"number"`` (``minimum``..``maximum`` inclusive) or ``"enum"`` (one of
    ``values``). ``requires`` makes the parameter conditional on another one, e.g. gpt-5.1 takes
    ``temperature`` only while ``reasoning_effort`` is ``"none"``; when the other parameter is
    not given its ``default`` counts.
    """

    name: str
    kind: Literal["number", "enum"]
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    default: Any = None
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=_empty, compare=False)

    def describe_allowed(self) -> str:
        """A human phrase for what the parameter accepts ("Allowed values: ..." style)."""
        if self.kind == "enum":
            return "Allowed values: " + ", ".join(self.values)
        return f"Allowed range: {_fmt(self.minimum)} to {_fmt(self.maximum)}"

    def check(self, value: Any, *, model: str) -> None:
        """Raise :class:`OpenAIClientError` if ``value`` breaks this rule."""
        if self.kind == "enum":
            if not isinstance(value, str) or value not in self.values:
                raise OpenAIClientError(self._invalid(value))
            return
        # bool is an int subclass; True as a temperature is a bug, not 1.0.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OpenAIClientError(self._invalid(value, expected="a number"))
        if math.isnan(value) or (self.minimum is not None and value < self.minimum):
            raise OpenAIClientError(self._invalid(value))
        if self.maximum is not None and value > self.maximum:
            raise OpenAIClientError(self._invalid(value))

    def _invalid(self, value: Any, *, expected: str | None = None) -> str:
        lines = [f"Invalid value {value!r} for parameter '{self.name}'."]
        if self.description:
            lines.append(f"Description: {self.description}")
        if expected:
            lines.append(f"Expected {expected}.")
        lines.append(self.describe_allowed())
        return "\n".join(lines)


#: The price tiers :class:`Prices` carries: the synchronous API and OpenAI's Batch API.
PriceTier = Literal["standard", "batch"]


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens. ``cached_input`` is None when the model has no cached-input price.

    ``batch`` holds the model's Batch API prices (asynchronous jobs, billed at 50% of the
    standard price for input and output), or None when the registry has none for the model (it
    is not offered on the Batch API, or nobody listed them). Batch prices are a :class:`Prices`
    of their own without a further ``batch``; their ``cached_input`` is None unless a source
    gives it, and cost estimates then bill cached tokens at the batch input price.
    """

    input: float
    output: float
    cached_input: float | None = None
    batch: Prices | None = None

    def __post_init__(self) -> None:
        if self.batch is not None and self.batch.batch is not None:
            raise ValueError("Batch prices cannot have batch prices of their own.")

    def tier(self, tier: PriceTier = "standard") -> Prices | None:
        """The prices of ``tier``: these for ``"standard"``, :attr:`batch` for ``"batch"``."""
        if tier == "standard":
            return self
        if tier == "batch":
            return self.batch
        raise ValueError(f"Unknown price tier {tier!r}: use 'standard' or 'batch'.")


@dataclass(frozen=True)
class ModelCapabilities:
    """Everything the library needs to know about one model, resolved from a name.

    ``name`` is what the caller asked for (``"gpt-4o-2024-11-20"``), ``canonical`` the registry
    entry it resolved to (``"gpt-4o"``) and ``version`` the date of a dated name. ``None`` limits
    mean "unknown, do not check" (the permissive profile used for custom servers).
    """

    name: str
    canonical: str
    context_window: int | None
    max_output_tokens: int | None
    supports_streaming: bool = True
    supports_structured_output: bool = True
    encoding: str | None = None
    prices: Prices | None = None
    parameters: Mapping[str, ParameterSpec] = field(default_factory=_empty, compare=False)
    chat_token_parameter: str = "max_completion_tokens"
    reasoning: bool = False
    version: date | None = None
    min_version: str | None = None
    aliases: tuple[str, ...] = ()
    dated_versions: tuple[str, ...] = ()
    sources: Mapping[str, Any] = field(default_factory=_empty, compare=False, repr=False)
    permissive_profile: bool = False
    #: Names of every sampling parameter the registry knows. A parameter in this set that the
    #: model does not list is rejected; anything else (seed, stop, metadata, ...) passes through.
    known_parameters: frozenset[str] = frozenset()
    #: The APIs that serve the model: both for most, ``("responses",)`` for the pro models that
    #: OpenAI serves on the Responses API only (o3-pro, gpt-5-pro, ...).
    apis: tuple[str, ...] = APIS

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def permissive(cls, name: str) -> ModelCapabilities:
        """A profile that allows everything and checks no limit.

        For models served by a custom ``base_url`` (llama.cpp, vLLM, Ollama, LM Studio): the
        registry knows nothing about them and must not block them. Local servers broadly accept
        ``max_tokens`` on chat, so that is the token parameter this profile sends.
        """
        return cls(
            name=name,
            canonical=name,
            context_window=None,
            max_output_tokens=None,
            supports_streaming=True,
            supports_structured_output=True,
            encoding=None,
            prices=None,
            parameters=MappingProxyType({}),
            chat_token_parameter="max_tokens",
            permissive_profile=True,
        )

    # --- questions ----------------------------------------------------------------------------

    @property
    def max_completion_tokens(self) -> int | None:
        """Alias of ``max_output_tokens`` under the Chat Completions spelling."""
        return self.max_output_tokens

    def supports_parameter(self, name: str) -> bool:
        """True if the model accepts ``name`` (token parameters and unknown names always pass)."""
        if self.permissive_profile or name in TOKEN_PARAMETERS:
            return True
        if name in self.parameters:
            return True
        return name not in self.known_parameters

    def token_parameter(self, api: Literal["chat", "responses"] = "chat") -> str:
        """The request field that carries the output-token limit for ``api``.

        Responses always takes ``max_output_tokens``. Chat takes the registry's
        ``chat_token_parameter``: ``max_completion_tokens`` for every OpenAI model in the data
        file (``max_tokens`` is deprecated and rejected by o-series and gpt-5 models),
        ``max_tokens`` for the permissive profile.
        """
        try:
            spec = get_api(api)
        except ValueError as exc:
            raise OpenAIClientError(str(exc)) from None
        return spec.token_parameter(self)

    # --- validation ---------------------------------------------------------------------------

    def validate_parameter(self, name: str, value: Any) -> None:
        """Raise if the model does not accept ``name`` or ``value`` breaks its rule.

        ``None`` means "not given" and always passes, so documented defaults never trip a
        "not supported" error. Token parameters are checked against ``max_output_tokens``
        (:class:`TokenLimitError`). Conditional rules (``requires``) are checked against the
        other parameter's default here; :meth:`validate_parameters` checks them against the
        values actually given.
        """
        self._validate_one(name, value, given={})

    def validate_parameters(self, params: Mapping[str, Any]) -> None:
        """Validate a whole set of request parameters, including rules between them.

        Raises :class:`TokenParameterError` when more than one token-limit spelling is given.
        """
        tokens = [p for p in TOKEN_PARAMETERS if params.get(p) is not None]
        if len(tokens) > 1:
            raise TokenParameterError(
                f"Cannot specify both '{tokens[0]}' and '{tokens[1]}' parameters.\n"
                "These parameters are mutually exclusive as they control the same "
                "functionality.\nChoose one:\n"
                "- max_output_tokens (recommended)\n"
                "- max_completion_tokens (legacy)\n"
                "- max_tokens (legacy)"
            )
        given = {k: v for k, v in params.items() if v is not None}
        for key, value in given.items():
            self._validate_one(key, value, given=given)

    def check_api(self, api: str) -> None:
        """Raise :class:`OpenAIClientError` if the model is not served on ``api``."""
        if self.permissive_profile or api in self.apis:
            return
        served = " and ".join(f"the {_title(a)} API" for a in self.apis)
        lines = [f"Model '{self.name}' is not available on the {_title(api)} API."]
        lines.append(f"It is served on {served} only.")
        if "responses" in self.apis:
            lines.append(
                "Call it with api='responses' (ostruct: --api responses), or use a model that "
                "supports Chat Completions."
            )
        raise OpenAIClientError("\n".join(lines))

    def check_streaming(self) -> None:
        """Raise :class:`OpenAIClientError` if the model cannot stream."""
        if self.supports_streaming:
            return
        raise OpenAIClientError(
            f"Model '{self.name}' does not support streaming.\n"
            "Use the non-streaming call (openai_structured_call / .complete) with this model, "
            "or stream with a model that supports it (e.g. o3-mini, gpt-4o)."
        )

    def _validate_one(self, name: str, value: Any, *, given: Mapping[str, Any]) -> None:
        if value is None or self.permissive_profile:
            return
        if name in TOKEN_PARAMETERS:
            self._check_token_limit(name, value)
            return
        spec = self.parameters.get(name)
        if spec is None:
            if name in self.known_parameters:
                raise OpenAIClientError(self._unsupported_message(name))
            return  # pass-through field (seed, stop, metadata, ...): not ours to judge
        spec.check(value, model=self.name)
        for other, allowed in spec.requires.items():
            effective = given.get(other)
            if effective is None:
                other_spec = self.parameters.get(other)
                effective = other_spec.default if other_spec is not None else None
            if effective not in allowed:
                shown = ", ".join(repr(a) for a in allowed)
                raise OpenAIClientError(
                    f"Parameter '{name}' is only supported by model '{self.name}' when "
                    f"'{other}' is {shown} (got {effective!r}).\n"
                    f"Either remove '{name}' or set {other}={allowed[0]!r}."
                )

    def _check_token_limit(self, name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OpenAIClientError(
                f"Invalid value {value!r} for parameter '{name}'.\n"
                "Expected a positive integer (the maximum number of output tokens)."
            )
        limit = self.max_output_tokens
        if limit is not None and value > limit:
            raise TokenLimitError(
                f"Requested {value:,} output tokens ({name}), but model '{self.name}' allows "
                f"at most {limit:,}.\nLower {name} to {limit:,} or less, or use a model with "
                "a larger output limit.",
                requested_tokens=value,
                model_limit=limit,
            )

    def _unsupported_message(self, name: str) -> str:
        supported = [*sorted(self.parameters), "max_output_tokens"]
        lines = [
            f"Parameter '{name}' is not supported by model '{self.name}'.",
            "Supported parameters: " + ", ".join(supported),
        ]
        if self.reasoning:
            lines.append(
                f"'{self.canonical}' is a reasoning model: it chooses its own sampling. Remove "
                f"'{name}' (use reasoning_effort to trade speed for depth), or use a "
                "non-reasoning model such as gpt-4.1 or gpt-4o if you need it."
            )
        else:
            lines.append(f"Remove '{name}' from the call, or use a model that accepts it.")
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    if x is None:
        return "unbounded"
    return str(int(x)) if float(x).is_integer() else str(x)
