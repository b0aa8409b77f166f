"""Writing the result: JSON text, on stdout or to ``--output-file``, without harming any file.

* ``--output-file`` writes *through* symbolic links to the real target, by an atomic rename of a
  temporary file in the target's directory; the target keeps its permissions (and, for root,
  its owner); a new file gets the mode ``open()`` would give it (``0666`` minus the umask). A
  file with several hard links is rewritten in place, so every name sees the new content.
  Special files (``/dev/null``, a FIFO, a terminal) are written directly, never replaced;
  ``/dev/stdout`` and ``/dev/stderr`` (or any name of ostruct's own stdout/stderr) are written
  through the descriptor ostruct already holds.
* stdout: a reader that went away (``ostruct run ... | head -c 1``) ends the run quietly with
  :attr:`ExitCode.BROKEN_PIPE`; a closed stdout, a full disk or an I/O error is
  :attr:`ExitCode.OUTPUT` with a message. :func:`check_destination` finds what it can before the
  model is called, so nothing is paid for a result that cannot be delivered.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import select
import stat
import sys
import tempfile
from typing import IO, Any, NoReturn

from ._report import CliError
from .exit_codes import ExitCode

__all__ = [
    "check_destination",
    "emit",
    "to_json",
    "write_output_file",
    "write_stdout",
]

# JSON text can carry a lone surrogate as an escape ("\ud800"); Python decodes it to a code
# point that UTF-8 cannot encode. Printed as the escape again, the output is the same JSON.
_SURROGATE = re.compile("[\ud800-\udfff]")


def to_json(value: Any, indent: int) -> str:
    """The result as JSON text; ``indent=0`` gives one compact line. Non-ASCII stays readable
    (lone surrogates, which UTF-8 cannot carry, are written as ``\\uXXXX`` escapes)."""
    if indent == 0:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(value, ensure_ascii=False, indent=indent)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _encode(text: str) -> bytes:
    # backslashreplace: a lone surrogate becomes "\udXXX", which inside JSON is its escape.
    return text.encode("utf-8", "backslashreplace")


# --- stdout -------------------------------------------------------------------------------------


def _closed_stdout() -> CliError:
    return CliError(
        "stdout is closed: there is nowhere to print the result.\n"
        "Redirect stdout (> result.json), or give --output-file FILE.",
        ExitCode.OUTPUT,
    )


def _fileno(stream: IO[Any]) -> int | None:
    """The descriptor behind ``stream``, or None for an in-memory stream (tests, embedding)."""
    try:
        return stream.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):
        return None


def _reader_gone(fd: int) -> bool:
    """Whether ``fd`` is a pipe whose reading end is closed (writing would raise EPIPE)."""
    if not hasattr(select, "poll"):
        return False
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except OSError:
        return False


def _broken_pipe(fd: int | None) -> NoReturn:
    """End the run quietly: the reader of stdout has what it wanted (``| head``)."""
    if fd is not None:
        # Python flushes stdout at exit; pointing the descriptor at /dev/null keeps that flush
        # from printing "Exception ignored ... BrokenPipeError".
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
    raise SystemExit(int(ExitCode.BROKEN_PIPE))


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until everything is written (pipes take partial writes)."""
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:  # a descriptor someone left non-blocking: wait until writable
            select.select([], [fd], [])
            continue
        view = view[written:]


def _check_stdout() -> None:
    stream = sys.stdout
    if stream is None:  # Python sets it to None when descriptor 1 was closed at start-up
        raise _closed_stdout()
    fd = _fileno(stream)
    if fd is None:
        return
    try:
        os.fstat(fd)
    except OSError:
        raise _closed_stdout() from None
    if _reader_gone(fd):
        _broken_pipe(fd)


def write_stdout(text: str) -> None:
    """Print ``text`` on stdout, every byte or a typed failure (never a silent loss)."""
    stream = sys.stdout
    if stream is None:
        raise _closed_stdout()
    data = _encode(text)
    fd = _fileno(stream)
    try:
        stream.flush()
        if fd is not None:
            # The descriptor itself: a text stream can swallow the error of a partial write.
            _write_all(fd, data)
        elif (buffer := getattr(stream, "buffer", None)) is not None:
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode("utf-8"))
            stream.flush()
    except BrokenPipeError:
        _broken_pipe(fd)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            raise _closed_stdout() from None
        raise CliError(
            f"cannot write to stdout: {exc.strerror or exc}.\n"
            "Nothing (or only part) was written. Free the space or fix the device, then run "
            "again; --output-file FILE writes the result to a file instead.",
            ExitCode.OUTPUT,
        ) from None


def emit(text: str) -> None:
    """:func:`write_stdout` for commands without an error report of their own (``models``,
    ``schema check``): a failure is printed and ends the process with its exit code."""
    try:
        write_stdout(text)
    except CliError as exc:
        from ._report import Secrets, report

        raise SystemExit(int(report(exc, secrets=Secrets(), verbose=False))) from None


# --- --output-file ------------------------------------------------------------------------------


def _stat(path: str) -> os.stat_result | None:
    """``os.stat`` (links followed), None when nothing is there; other errors are input errors."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(
            f"--output-file {path}: cannot use it: {exc.strerror or exc}", ExitCode.INPUT
        ) from None


def _own_stream(st: os.stat_result) -> int | None:
    """1 or 2 when ``st`` is ostruct's own stdout or stderr (``/dev/stdout``, ``/dev/fd/2``)."""
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.path.samestat(st, os.fstat(fd)):
                return fd
    return None


def _input_error(path: str, why: str) -> CliError:
    return CliError(f"--output-file {path}: {why}", ExitCode.INPUT)


def _check_output_file(path: str) -> None:
    st = _stat(path)
    if st is not None and _own_stream(st) == 1:
        _check_stdout()
        return
    if st is not None and (not stat.S_ISREG(st.st_mode) or st.st_nlink > 1):
        if stat.S_ISDIR(st.st_mode):
            raise _input_error(path, "is a directory; name a file.")
        if not os.access(path, os.W_OK):
            raise _input_error(path, "not writable (permission denied).")
        return
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        raise _input_error(path, f"cannot write in {directory}: no such directory.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise _input_error(path, f"cannot write in {directory}: permission denied.")


def check_destination(output_file: str | None) -> None:
    """Before anything is sent: can the result be delivered (stdout open, its reader there;
    ``--output-file``'s directory present and writable)?"""
    if output_file is None:
        _check_stdout()
    else:
        _check_output_file(output_file)


def _write_failed(path: str, exc: OSError) -> CliError:
    return CliError(
        f"--output-file {path}: cannot write the result: {exc.strerror or exc}", ExitCode.OUTPUT
    )


def _write_direct(path: str, data: bytes, *, truncate: bool) -> None:
    """Open ``path`` (links followed by the kernel) and write: devices, FIFOs, hard links."""
    flags = os.O_WRONLY | (os.O_TRUNC if truncate else 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        _write_all(fd, data)
        if truncate:
            os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _replace(path: str, data: bytes, st: os.stat_result | None) -> None:
    """Atomically replace the real target of ``path`` (links resolved) with ``data``."""
    real = os.path.realpath(path)
    fd, tmp = tempfile.mkstemp(prefix=".ostruct-", suffix=".tmp", dir=os.path.dirname(real))
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if st is None:
            mode = 0o666 & ~_umask()  # what a plain open() would have created
        else:
            mode = stat.S_IMODE(st.st_mode)
            if hasattr(os, "chown") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                # Root rewriting a user's file: it stays theirs. Before chmod: chown clears
                # the set-id bits.
                with contextlib.suppress(OSError):
                    os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_output_file(path: str, text: str) -> None:
    """Write ``text`` to ``path``: readers see the old file or the whole new one (see the module
    docstring for links, special files and permissions)."""
    data = _encode(text)
    st = _stat(path)
    own = _own_stream(st) if st is not None else None
    if own == 1:
        write_stdout(text)
        return
    try:
        if own == 2:
            _write_all(2, data)
        elif st is not None and not stat.S_ISREG(st.st_mode):
            _write_direct(path, data, truncate=False)
        elif st is not None and st.st_nlink > 1:
            _write_direct(path, data, truncate=True)
        else:
            _replace(path, data, st)
    except OSError as exc:
        raise _write_failed(path, exc) from None
