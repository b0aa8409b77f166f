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


#: Columns left free right of the live panel. A panel as wide as the terminal leaves the cursor
#: in the last column, where the terminal's echo of Ctrl-C (``^C``) wraps to a new line: the
#: panel is then one line lower than Rich thinks, and clearing it leaves its top border behind.
_ECHO_MARGIN = 2
#: Rows kept free below the panel's body: its two borders, and room for a line of echo.
_SPARE_ROWS = 4


class LiveObject:
    """Shows the partial object as pretty JSON in a Rich ``Live`` region on stderr.

    ``update`` receives snapshots as often as the stream produces them; only the last one per
    refresh interval is rendered. The region is cleared on exit (``transient``), on success,
    error or Ctrl-C alike: the final answer goes to stdout, not here. To be clearable the panel
    never fills the screen: it leaves :data:`_ECHO_MARGIN` columns free (for the ``^C`` the
    terminal echoes) and has at most the screen's height less :data:`_SPARE_ROWS` rows (long
    lines are cut, not wrapped: a wrapped line would make it taller than it looks).
    """

    def __init__(self, *, enabled: bool, title: str = "answer so far") -> None:
        self.enabled = enabled
        self._title = title
        self._console: Any = None
        self._live: Any = None
        self._last = 0.0

    def __enter__(self) -> LiveObject:
        if self.enabled:
            from rich.live import Live

            self._console = _console()
            self._live = Live(
                self._render(None), console=self._console, transient=True, auto_refresh=False
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

        width = max(self._console.width - _ECHO_MARGIN, 20)
        if snapshot is None:
            body: Any = Text("waiting for the first tokens...", style="dim")
        else:
            text = json.dumps(snapshot, indent=2, ensure_ascii=False, default=str)
            # Show the tail: that is where the model is writing.
            height = max(self._console.height - _SPARE_ROWS, 3)
            lines = text.splitlines()
            if len(lines) > height:
                lines = ["...", *lines[-height + 1 :]]
            body = Syntax("\n".join(lines), "json", word_wrap=False, code_width=width - 4)
        return Panel(body, title=self._title, border_style="dim", width=width)
