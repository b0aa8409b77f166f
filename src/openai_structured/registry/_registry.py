"""The model registry: packaged data + user overrides -> :class:`ModelCapabilities` (SPEC §3).

Layers, later wins, each merged per model (fields given replace fields, ``"replace": true``
replaces the whole entry):

1. ``models.json`` shipped in this package (read-only; never written);
2. the file :func:`refresh_registry` downloaded into the user's cache directory, if any;
3. the user's file: the ``path`` argument, else the ``OSTRUCT_MODEL_REGISTRY`` variable.

Name resolution accepts a model's name or alias (``gpt-4o``), a dated name
(``gpt-4o-2024-08-06``), and any newer date than the model's minimum (``gpt-4o-2024-11-20``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import (
    InvalidDateError,
    ModelNotSupportedError,
    OpenAIClientError,
    VersionTooOldError,
)
from ._capabilities import APIS, TOKEN_PARAMETERS, ModelCapabilities, ParameterSpec, Prices

__all__ = [
    "ENV_VAR",
    "ModelRegistry",
    "get_registry",
    "load_registry_data",
    "registry_cache_path",
    "reset_registry",
]

#: Environment variable naming a user registry file merged over the packaged data.
ENV_VAR = "OSTRUCT_MODEL_REGISTRY"

_CACHE_APP = "openai-structured"
_CACHE_FILE = "models.json"
# A dated name is <base>-YYYY-MM-DD. The date part is matched loosely (\d{1,2}) so that
# "gpt-4o-2024-13-01" is reported as a bad date rather than an unknown model.
_DATED = re.compile(r"^(?P<base>.+)-(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$")
_DATE_FORMAT_HINT = "Use format: YYYY-MM-DD (e.g. 2024-08-06)"
_MODEL_FIELDS = {
    "aliases",
    "dated_versions",
    "min_version",
    "context_window",
    "max_output_tokens",
    "supports_streaming",
    "supports_structured_output",
    "reasoning",
    "encoding",
    "chat_token_parameter",
    "apis",
    "parameters",
    "prices",
    "sources",
    "replace",
    "$comment",
    "note",
}


def registry_cache_path() -> Path:
    """Where :func:`refresh_registry` stores a downloaded registry (user cache dir)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(_CACHE_APP)) / _CACHE_FILE


def load_registry_data() -> dict[str, Any]:
    """The packaged registry document, parsed (a fresh copy each call)."""
    text = resources.files(__package__).joinpath("models.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):  # pragma: no cover - guarded by tests of the data file
        raise OpenAIClientError("The packaged models.json is not a JSON object.")
    return data


class ModelRegistry:
    """Models, aliases, dated versions and their capabilities.

    ``ModelRegistry()`` loads the packaged data, the refreshed cache file (if present and
    ``use_cache``) and the user file (``path``, else ``$OSTRUCT_MODEL_REGISTRY``). Building one
    is cheap; most code uses the shared :func:`get_registry`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        use_env: bool = True,
        use_cache: bool = True,
    ) -> None:
        doc = load_registry_data()
        self.layers: list[str] = ["<package>/models.json"]
        if use_cache:
            cached = registry_cache_path()
            if cached.is_file():
                _merge(doc, _read_user_file(cached), origin=str(cached))
                self.layers.append(str(cached))
        user = os.fspath(path) if path is not None else None
        if user is None and use_env:
            user = os.environ.get(ENV_VAR) or None
        if user is not None:
            _merge(doc, _read_user_file(Path(user)), origin=user)
            self.layers.append(user)
        self.data: Mapping[str, Any] = doc
        self.sources: Mapping[str, Any] = MappingProxyType(dict(doc.get("sources", {})))
        self._specs = _parse_specs(doc.get("parameter_specs", {}))
        self._known = frozenset(self._specs) | frozenset(TOKEN_PARAMETERS)
        self._models: dict[str, ModelCapabilities] = {}
        for name, raw in doc.get("models", {}).items():
            self._models[name] = self._parse_model(name, raw)
        self._names: dict[str, str] = {}
        for name, caps in self._models.items():
            self._names[name] = name
            for alias in caps.aliases:
                self._names.setdefault(alias, name)

    # --- lookups ------------------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.get_capabilities(name)
        except OpenAIClientError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def models(self) -> list[ModelCapabilities]:
        """Every registry entry, in data-file order."""
        return list(self._models.values())

    def get_capabilities(self, name: str) -> ModelCapabilities:
        """Resolve ``name`` (alias, dated or newer dated) to its capabilities.

        Raises :class:`ModelNotSupportedError` for unknown names, :class:`InvalidDateError` for
        impossible dates and :class:`VersionTooOldError` for dates before the model's first
        version with structured outputs.
        """
        canonical = self._names.get(name)
        if canonical is not None:
            caps = self._models[canonical]
            return caps if name == canonical else _renamed(caps, name)
        match = _DATED.match(name)
        if match is None or match["base"] not in self._names:
            raise ModelNotSupportedError(self._not_supported_message(name), model=name)
        base = self._names[match["base"]]
        version = _parse_date(name, int(match["y"]), int(match["m"]), int(match["d"]))
        caps = self._models[base]
        if len(match["m"]) != 2 or len(match["d"]) != 2:
            raise InvalidDateError(
                f"Invalid date format in model version: '{name}' must end in -YYYY-MM-DD "
                f"with two-digit month and day (e.g. {base}-{version.isoformat()})",
                model=name,
            )
        if caps.min_version is not None and version < date.fromisoformat(caps.min_version):
            raise VersionTooOldError(
                f"Model '{name}' version {version.isoformat()} is too old.\n"
                f"Minimum supported version: {caps.min_version}\n"
                f"Note: Use the alias '{base}' to always get the latest version",
                model=name,
            )
        return _renamed(caps, name, version=version)

    def knows(self, name: str) -> bool:
        """True if ``name`` is a model name or alias here, or a dated name of one.

        The date is not judged: ``knows("gpt-4o-2024-07-01")`` is True although
        :meth:`get_capabilities` refuses that version. Servers that check only the names the
        registry knows (the ``compatible`` profile) ask this first, so that a known base with a
        bad date gets the registry's verdict rather than passing unchecked.
        """
        if name in self._names:
            return True
        match = _DATED.match(name)
        return match is not None and match["base"] in self._names

    def lookup(self, name: str, *, custom_server: bool = False) -> ModelCapabilities:
        """Capabilities for a request: permissive for a custom server, else the registry's.

        A model behind a custom ``base_url`` (a local server) is never blocked by the registry.
        """
        if custom_server:
            return ModelCapabilities.permissive(name)
        return self.get_capabilities(name)

    def supports_structured_output(self, name: str) -> bool:
        """False for unknown names and invalid or too-old versions (the seed's contract)."""
        try:
            return self.get_capabilities(name).supports_structured_output
        except (ModelNotSupportedError, InvalidDateError, VersionTooOldError):
            return False

    def dated_names(self) -> list[str]:
        """Every listed dated name (``gpt-4o-2024-08-06``, ...)."""
        return [f"{n}-{v}" for n, c in self._models.items() for v in c.dated_versions]

    def aliases(self) -> list[str]:
        """Every undated name: model names and their extra aliases."""
        return list(self._names)

    # --- internals ----------------------------------------------------------------------------

    def _not_supported_message(self, name: str) -> str:
        lines = [
            f"Model '{name}' is not supported.",
            "Available models:",
            "- Dated models: " + ", ".join(self.dated_names()),
            "- Aliases: " + ", ".join(self.aliases()),
        ]
        close = difflib.get_close_matches(name, self.aliases() + self.dated_names(), n=3)
        if close:
            lines.append("Did you mean: " + ", ".join(close) + "?")
        lines.append("Note: For dated models, use format: base-YYYY-MM-DD (e.g. gpt-4o-2024-08-06)")
        lines.append(
            "A model served by your own server (base_url) is not checked against the registry; "
            f"to add a model, list it in a registry file named by ${ENV_VAR} "
            "(see docs/models.md)."
        )
        return "\n".join(lines)

    def _parse_model(self, name: str, raw: Any) -> ModelCapabilities:
        where = f"model '{name}'"
        if not isinstance(raw, dict):
            raise OpenAIClientError(f"Registry {where}: expected an object, got {raw!r}.")
        unknown = set(raw) - _MODEL_FIELDS
        if unknown:
            raise OpenAIClientError(
                f"Registry {where}: unknown field(s) {', '.join(sorted(unknown))}. "
                f"Known fields: {', '.join(sorted(_MODEL_FIELDS - {'$comment', 'note'}))}."
            )
        dated = tuple(_str_list(raw.get("dated_versions", []), f"{where}.dated_versions"))
        for v in dated:
            _iso_date(v, f"{where}.dated_versions")
        min_version = raw.get("min_version")
        if min_version is not None:
            _iso_date(min_version, f"{where}.min_version")
        params: dict[str, ParameterSpec] = {}
        raw_params = raw.get("parameters")
        if raw_params is None:  # a user-added model without rules: the standard sampling set
            raw_params = {p: {} for p in ("temperature", "top_p")}
            raw_params.update({"frequency_penalty": {}, "presence_penalty": {}})
        if not isinstance(raw_params, dict):
            raise OpenAIClientError(f"Registry {where}.parameters: expected an object.")
        for pname, override in raw_params.items():
            base = self._specs.get(pname)
            if base is None:
                raise OpenAIClientError(
                    f"Registry {where}.parameters: unknown parameter '{pname}'. Define it in "
                    f"'parameter_specs' first (known: {', '.join(sorted(self._specs))})."
                )
            params[pname] = _apply_override(base, override, f"{where}.parameters.{pname}")
        prices = raw.get("prices")
        return ModelCapabilities(
            name=name,
            canonical=name,
            context_window=_opt_int(raw.get("context_window"), f"{where}.context_window"),
            max_output_tokens=_opt_int(raw.get("max_output_tokens"), f"{where}.max_output_tokens"),
            supports_streaming=_bool(raw.get("supports_streaming", True), where),
            supports_structured_output=_bool(raw.get("supports_structured_output", True), where),
            encoding=_opt_str(raw.get("encoding"), f"{where}.encoding"),
            prices=_parse_prices(prices, f"{where}.prices") if prices is not None else None,
            parameters=MappingProxyType(params),
            chat_token_parameter=_token_param(raw.get("chat_token_parameter"), where),
            reasoning=_bool(raw.get("reasoning", False), where),
            min_version=min_version,
            aliases=tuple(_str_list(raw.get("aliases", []), f"{where}.aliases")),
            dated_versions=dated,
            sources=MappingProxyType(dict(raw.get("sources", {}))),
            known_parameters=self._known,
            apis=_apis(raw.get("apis"), where),
        )


# --- the shared registry -------------------------------------------------------------------------

_shared: ModelRegistry | None = None
_shared_lock = threading.Lock()


def get_registry() -> ModelRegistry:
    """The process-wide registry, built on first use (honours ``$OSTRUCT_MODEL_REGISTRY``)."""
    global _shared
    reg = _shared
    if reg is None:
        with _shared_lock:
            if _shared is None:
                _shared = ModelRegistry()
            reg = _shared
    return reg


def reset_registry() -> None:
    """Forget the shared registry so the next :func:`get_registry` reloads (tests, env edits)."""
    global _shared
    with _shared_lock:
        _shared = None


# --- parsing helpers -----------------------------------------------------------------------------


def _renamed(
    caps: ModelCapabilities, name: str, *, version: date | None = None
) -> ModelCapabilities:
    from dataclasses import replace

    return replace(caps, name=name, version=version)


def _parse_date(name: str, y: int, m: int, d: int) -> date:
    if not 1 <= m <= 12:
        raise InvalidDateError(
            "Invalid date format in model version: Month must be between 1 and 12\n"
            + _DATE_FORMAT_HINT,
            model=name,
        )
    try:
        return date(y, m, d)
    except ValueError:
        pass
    if not 1 <= d <= 31:
        reason = "Day must be between 1 and 31"
    else:
        reason = f"Day {d} is out of range for month {m} of {y}"
    raise InvalidDateError(
        f"Invalid date format in model version: {reason}\n{_DATE_FORMAT_HINT}", model=name
    )


def _read_user_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OpenAIClientError(
            f"Cannot read model registry file '{path}': {exc.strerror or exc}.\n"
            f"Check the path given as argument or in ${ENV_VAR}."
        ) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OpenAIClientError(
            f"Model registry file '{path}' is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})."
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise OpenAIClientError(
            f"Model registry file '{path}' must be a JSON object with a 'models' object, "
            'e.g. {"models": {"my-model": {"context_window": 32768, "max_output_tokens": 4096}}}.'
        )
    return data


def _merge(doc: dict[str, Any], user: Mapping[str, Any], *, origin: str) -> None:
    """Merge a user document into ``doc`` in place (per model, per top-level table)."""
    for table in ("sources", "parameter_specs"):
        extra = user.get(table)
        if extra is not None:
            if not isinstance(extra, dict):
                raise OpenAIClientError(f"Registry file '{origin}': '{table}' must be an object.")
            doc.setdefault(table, {}).update(extra)
    models = doc.setdefault("models", {})
    for name, entry in user.get("models", {}).items():
        if not isinstance(entry, dict):
            raise OpenAIClientError(
                f"Registry file '{origin}': model '{name}' must be an object, got {entry!r}."
            )
        if entry.get("replace") or name not in models:
            models[name] = {k: v for k, v in entry.items() if k != "replace"}
        else:
            models[name] = {**models[name], **{k: v for k, v in entry.items() if k != "replace"}}


def _parse_specs(raw: Any) -> dict[str, ParameterSpec]:
    if not isinstance(raw, dict):
        raise OpenAIClientError("Registry 'parameter_specs' must be an object.")
    specs: dict[str, ParameterSpec] = {}
    for name, body in raw.items():
        where = f"parameter_specs.{name}"
        if not isinstance(body, dict) or body.get("type") not in ("number", "enum"):
            raise OpenAIClientError(f'Registry {where}: needs "type": "number" or "enum".')
        specs[name] = ParameterSpec(
            name=name,
            kind=body["type"],
            description=str(body.get("description", "")),
            minimum=_opt_num(body.get("min"), where),
            maximum=_opt_num(body.get("max"), where),
            values=tuple(_str_list(body.get("values", []), f"{where}.values")),
            default=body.get("default"),
        )
    return specs


def _apply_override(base: ParameterSpec, override: Any, where: str) -> ParameterSpec:
    from dataclasses import replace

    if not isinstance(override, dict):
        raise OpenAIClientError(f"Registry {where}: expected an object, got {override!r}.")
    changes: dict[str, Any] = {}
    if "min" in override:
        changes["minimum"] = _opt_num(override["min"], where)
    if "max" in override:
        changes["maximum"] = _opt_num(override["max"], where)
    if "values" in override:
        changes["values"] = tuple(_str_list(override["values"], f"{where}.values"))
    if "default" in override:
        changes["default"] = override["default"]
    if "description" in override:
        changes["description"] = str(override["description"])
    if "requires" in override:
        req = override["requires"]
        if not isinstance(req, dict):
            raise OpenAIClientError(f"Registry {where}.requires: expected an object.")
        changes["requires"] = MappingProxyType(
            {k: tuple(_str_list(v, f"{where}.requires.{k}")) for k, v in req.items()}
        )
    return replace(base, **changes)


_BATCH_PRICE_FIELDS = ("input", "output", "cached_input")


def _parse_prices(raw: Any, where: str) -> Prices:
    """A model's ``prices`` object: standard prices, and Batch API prices under ``batch``.

    ``"batch": {...}`` gives the Batch API prices (same fields, no further ``batch``);
    ``"batch": null`` or no ``batch`` means the registry has no batch prices for the model.
    """
    if not isinstance(raw, dict) or "input" not in raw or "output" not in raw:
        raise OpenAIClientError(
            f'Registry {where}: expected {{"input": ..., "output": ..., '
            '"cached_input": ...}} in USD per 1M tokens.'
        )
    inp = _opt_num(raw["input"], where)
    out = _opt_num(raw["output"], where)
    if inp is None or out is None:
        raise OpenAIClientError(f"Registry {where}: input and output prices are required.")
    raw_batch = raw.get("batch")
    batch = _parse_batch_prices(raw_batch, f"{where}.batch") if raw_batch is not None else None
    return Prices(
        input=inp,
        output=out,
        cached_input=_opt_num(raw.get("cached_input"), where),
        batch=batch,
    )


def _parse_batch_prices(raw: Any, where: str) -> Prices:
    example = '{"input": ..., "output": ..., "cached_input": ...}'
    if not isinstance(raw, dict):
        raise OpenAIClientError(
            f"Registry {where}: expected an object {example} of Batch API prices in USD per 1M "
            f"tokens (or null for none), got {raw!r}."
        )
    if "batch" in raw:
        raise OpenAIClientError(
            f"Registry {where}: batch prices cannot have batch prices of their own; give "
            f"{example} only."
        )
    unknown = sorted(set(raw) - set(_BATCH_PRICE_FIELDS))
    if unknown:
        raise OpenAIClientError(
            f"Registry {where}: unknown field(s) {', '.join(unknown)}. Known fields: "
            f"{', '.join(_BATCH_PRICE_FIELDS)}."
        )
    inp = _opt_num(raw.get("input"), f"{where}.input")
    out = _opt_num(raw.get("output"), f"{where}.output")
    if inp is None or out is None:
        missing = " and ".join(f for f, v in (("input", inp), ("output", out)) if v is None)
        raise OpenAIClientError(
            f"Registry {where}: {missing} price required ({example}, USD per 1M tokens). "
            "Without batch prices, leave 'batch' out or set it to null."
        )
    return Prices(
        input=inp,
        output=out,
        cached_input=_opt_num(raw.get("cached_input"), f"{where}.cached_input"),
    )


def _opt_num(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise OpenAIClientError(f"Registry {where}: expected a number, got {v!r}.")
    return float(v)


def _opt_int(v: Any, where: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise OpenAIClientError(f"Registry {where}: expected a positive integer, got {v!r}.")
    return v


def _opt_str(v: Any, where: str) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise OpenAIClientError(f"Registry {where}: expected a string, got {v!r}.")
    return v


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise OpenAIClientError(f"Registry {where}: expected true or false, got {v!r}.")
    return v


def _str_list(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise OpenAIClientError(f"Registry {where}: expected a list of strings, got {v!r}.")
    return list(v)


def _iso_date(v: Any, where: str) -> date:
    try:
        return date.fromisoformat(v)
    except (TypeError, ValueError) as exc:
        raise OpenAIClientError(f"Registry {where}: {v!r} is not a YYYY-MM-DD date.") from exc


def _apis(v: Any, where: str) -> tuple[str, ...]:
    if v is None:
        return APIS
    names = _str_list(v, f"{where}.apis")
    if not names or any(n not in APIS for n in names):
        raise OpenAIClientError(
            f"Registry {where}.apis: expected a non-empty list of {' / '.join(APIS)}, got {v!r}."
        )
    return tuple(a for a in APIS if a in names)


def _token_param(v: Any, where: str) -> str:
    if v is None:
        return "max_completion_tokens"
    if v not in ("max_completion_tokens", "max_tokens"):
        raise OpenAIClientError(
            f"Registry {where}.chat_token_parameter: use 'max_completion_tokens' or 'max_tokens'."
        )
    return str(v)
