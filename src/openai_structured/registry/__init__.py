"""Model registry: which models exist, what they accept, their limits and prices (SPEC §3).

Public surface::

    get_registry().get_capabilities("gpt-4o-2024-11-20")   # -> ModelCapabilities
    ModelRegistry(path)                                     # packaged data + your file
    ModelCapabilities.permissive("llama3")                  # custom servers: nothing blocked
    refresh_registry(url)                                   # explicit download to the cache dir
    embedded_model()                                        # the embedded local model's figures
"""

from __future__ import annotations

from ._capabilities import APIS, TOKEN_PARAMETERS, ModelCapabilities, ParameterSpec, Prices
from ._embedded import EmbeddedModel, embedded_model
from ._refresh import refresh_registry
from ._registry import (
    ENV_VAR,
    ModelRegistry,
    get_registry,
    load_registry_data,
    registry_cache_path,
    reset_registry,
)

__all__ = [
    "APIS",
    "ENV_VAR",
    "TOKEN_PARAMETERS",
    "EmbeddedModel",
    "ModelCapabilities",
    "ModelRegistry",
    "ParameterSpec",
    "Prices",
    "embedded_model",
    "get_registry",
    "load_registry_data",
    "refresh_registry",
    "registry_cache_path",
    "reset_registry",
]
