"""What a user sees on stderr while waiting: a spinner, or the object filling in (``--stream``).

Only on a terminal. When stderr is a file or a pipe nothing is drawn, so logs and CI output
stay clean and stdout carries nothing but the final JSON.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["LiveObject", "spinner", "stderr_is_tty"]

#: Redraw at most this often: a terminal cannot show more, and each redraw re-serialises the
#: snapshot (a copy of the object so far), so throttling keeps the stream linear in practice.
_REFRESH_S = 0.08


def stderr_is_tty() -> bool:
    """True when stderr is an interactive terminal (the only place progress is drawn)."""
    stream = sys.stderr
    return stream is not None and hasattr(stream, "isatty") and stream.isatty()


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def spinner(message: str, *, enabled: bool) -> Iterator[None]:
    """A spinner on stderr while a non-streaming request runs (nothing when not enabled)."""
    if not enabled:
        yield
        return
    with _console().status(message):
        yield


class LiveObject:
    """Shows the partial object as pretty JSON in a Rich ``Live`` region on stderr.

    ``update`` receives snapshots as often as the stream produces them; only the last one per
    refresh interval is rendered. The region is cleared on exit (``transient``): the final
    answer goes to stdout, not here.
    """

    def __init__(self, *, enabled: bool, title: str = "answer so far") -> None:
        self.enabled = enabled
        self._title = title
        self._live: Any = None
        self._last = 0.0

    def __enter__(self) -> LiveObject:
        if self.enabled:
            from rich.live import Live

            self._live = Live(
                self._render(None), console=_console(), transient=True, auto_refresh=False
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc_info)
            self._live = None

    def wants_update(self) -> bool:
        """True when a new snapshot would be drawn now (so callers skip copying otherwise)."""
        return self._live is not None and time.monotonic() - self._last >= _REFRESH_S

    def update(self, snapshot: Any) -> None:
        if self._live is None:
            return
        self._last = time.monotonic()
        self._live.update(self._render(snapshot), refresh=True)

    def _render(self, snapshot: Any) -> Any:
        from rich.panel import Panel
        from rich.syntax import Syntax
        from rich.text import Text

        if snapshot is None:
            body: Any = Text("waiting for the first tokens...", style="dim")
        else:
            text = json.dumps(snapshot, indent=2, ensure_ascii=False, default=str)
            # Show the tail: that is where the model is writing.
            height = max(_console().height - 4, 5)
            lines = text.splitlines()
            if len(lines) > height:
                lines = ["...", *lines[-height + 1 :]]
            body = Syntax("\n".join(lines), "json", word_wrap=True)
        return Panel(body, title=self._title, border_style="dim")
