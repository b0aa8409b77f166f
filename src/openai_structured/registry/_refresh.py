"""Optional download of a newer registry file into the user's cache directory.

Never called implicitly: model figures change rarely and a library that phones home on import
would break offline use (SPEC §6). The downloaded file is validated before it replaces the
cached one, so a bad download cannot break the next :class:`ModelRegistry`.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import OpenAIClientError
from ._registry import ModelRegistry, registry_cache_path

__all__ = ["refresh_registry"]

_MAX_BYTES = 8 * 1024 * 1024


def refresh_registry(
    url: str, *, timeout: float = 10.0, destination: str | os.PathLike[str] | None = None
) -> Path:
    """Download a registry JSON from ``url`` into the user cache dir and return its path.

    The file must have the same format as the packaged ``models.json`` (or a partial one with a
    ``models`` object); it is merged over the packaged data by every later
    :class:`ModelRegistry`. Only ``http``/``https`` URLs are accepted. Raises
    :class:`OpenAIClientError` on network errors, oversized or invalid files, leaving any
    previously cached file untouched.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise OpenAIClientError(f"refresh_registry needs an http(s) URL, got {url!r}.")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # scheme checked above
            body = resp.read(_MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise OpenAIClientError(
            f"Could not download the model registry from {url}: {exc}.\n"
            "The packaged registry is still used; retry later or pass a local file via "
            "$OSTRUCT_MODEL_REGISTRY."
        ) from exc
    if len(body) > _MAX_BYTES:
        raise OpenAIClientError(f"Registry download from {url} is larger than {_MAX_BYTES} bytes.")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpenAIClientError(f"Registry download from {url} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise OpenAIClientError(
            f"Registry download from {url} is not a registry file (no 'models' object)."
        )
    target = Path(destination) if destination is not None else registry_cache_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Validate by building a registry from it before it can replace the cached file.
    fd, tmp = tempfile.mkstemp(prefix=".models-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        ModelRegistry(tmp, use_env=False, use_cache=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
