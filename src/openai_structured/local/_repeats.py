"""How the sampler notices that the answer repeats itself (pure: fed tokens and their text).

A 270M model that has written an item often writes it again, and again: ``"Luis Ferreira",
"Luis Ferreira", ...`` until a limit. Two signals, each acted on by the grammar sampler
(:class:`~._decoding.FirstChoiceGrammarSampler`) by pushing the repeating choice down so the
model writes anything else the grammar allows:

* :func:`loop_continuation`: the last tokens are a cycle repeated (a token or a few repeated to
  :data:`LOOP_RUN` tokens, ``0000...``; or a block of up to :data:`BLOCK_PERIOD` tokens written
  twice in a row): the token that would start the next copy.
* :class:`ListRepeats`: the JSON written so far has just finished a list item equal to an
  earlier item of the same list, or an object item with a long string (:data:`LONG_VALUE`)
  an earlier item has in the same field; the list should end here, not go on (a token
  starting with ``,`` is pushed down, so ``]`` is written).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["BLOCK_PERIOD", "LOOP_PERIOD", "LOOP_RUN", "ListRepeats", "loop_continuation"]

#: A cycle of at most LOOP_PERIOD tokens repeated to LOOP_RUN tokens is a loop.
LOOP_RUN = 16
LOOP_PERIOD = 4
#: A block of more than LOOP_PERIOD and at most BLOCK_PERIOD tokens written twice in a row.
BLOCK_PERIOD = 48
#: How many tokens of history :func:`loop_continuation` needs.
HISTORY = max(LOOP_RUN, 2 * BLOCK_PERIOD)


def loop_continuation(
    history: Sequence[int], structural: Callable[[int], bool] = lambda token: True
) -> int | None:
    """The token that would continue the cycle the last tokens of ``history`` repeat, or None.

    A block is a loop only if one of its tokens is ``structural`` (holds a JSON ``,``, ``"``,
    ``{`` or ``[``: it repeats items or fields): a value copied from the text may itself repeat
    a group ("4111 1111 1111 1111")."""
    if len(history) >= LOOP_RUN - 1:
        tail = history[-(LOOP_RUN - 1) :]
        for period in range(1, LOOP_PERIOD + 1):
            if all(tail[i] == tail[i - period] for i in range(period, len(tail))):
                return tail[-period]
    for period in range(LOOP_PERIOD + 1, min(BLOCK_PERIOD, len(history) // 2) + 1):
        block = history[-period:]
        if (
            block == history[-2 * period : -period]
            and not _short_cycle(block)
            and any(structural(token) for token in block)
        ):
            return history[-period]
    return None


def _short_cycle(block: Sequence[int]) -> bool:
    """Whether ``block`` is a cycle of at most :data:`LOOP_PERIOD` tokens (``5 5 5 5 5``):
    those are loops only at :data:`LOOP_RUN` tokens (a number may hold ten zeros)."""
    return any(
        all(block[i] == block[i - p] for i in range(p, len(block)))
        for p in range(1, LOOP_PERIOD + 1)
    )


@dataclass
class _List:
    items: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)


#: A string this long, the same in the same field of two items of a list, is a loop (the
#: rest of the text copied into every item), not a shared value.
LONG_VALUE = 24


def _canonical(item: str) -> str:
    """An item as compared with the others: a container with its spacing normalised (a loop
    may write ``"BE","sold_out"`` once and ``"BE", "sold_out"`` the next time)."""
    if item[:1] not in ("{", "["):
        return item
    try:
        return json.dumps(json.loads(item), sort_keys=True)
    except ValueError:
        return item


def _repeats_a_long_value(item: str, earlier: list[str]) -> bool:
    """Whether object ``item`` holds a long string an earlier item holds in the same field."""
    if not item.startswith("{") or not earlier:
        return False
    try:
        fields = json.loads(item)
    except ValueError:
        return False
    if not isinstance(fields, dict):
        return False
    long_values = {k: v for k, v in fields.items() if isinstance(v, str) and len(v) >= LONG_VALUE}
    for text in earlier:
        if long_values and text.startswith("{"):
            try:
                before = json.loads(text)
            except ValueError:
                continue
            if isinstance(before, dict) and any(before.get(k) == v for k, v in long_values.items()):
                return True
    return False


class ListRepeats:
    """Follows the JSON text being written, list by list (strings and escapes honoured)."""

    def __init__(self) -> None:
        self._stack: list[_List | None] = []  # a _List per open array, None per open object
        self._in_string = False
        self._escape = False
        #: The item just finished repeats an earlier item of its list: end the list.
        self.repeated = False

    def feed(self, text: str) -> None:
        for char in text:
            self._char(char)

    def would_continue(self, text: str) -> bool:
        """Whether writing ``text`` would go on with a list (a ``,``) right after an item that
        repeats an earlier one (also when the item ends within ``text``)."""
        probe = copy.deepcopy(self)
        for char in text:
            if char == "," and probe.repeated and not probe._in_string:
                return True
            probe._char(char)
        return False

    def _char(self, char: str) -> None:
        if not char.isspace():
            self.repeated = self.repeated and char not in ",]"
        lists = [entry for entry in self._stack if entry is not None]
        top = self._stack[-1] if self._stack else None
        if self._in_string:
            for entry in lists:
                entry.current.append(char)
            if self._escape:
                self._escape = False
            elif char == "\\":
                self._escape = True
            elif char == '"':
                self._in_string = False
                if top is not None:
                    self._finished(top)
            return
        if char in ",]" and top is not None:
            top.items.append(_canonical("".join(top.current).strip()))
            top.current = []
            if char == ",":
                for entry in lists[:-1]:
                    entry.current.append(char)
            if char == "]":
                self._stack.pop()
                self._close_into_parent(char)
            return
        if char == "}" and self._stack and top is None:
            self._stack.pop()
            self._close_into_parent(char)
            return
        for entry in lists:
            entry.current.append(char)
        if char == '"':
            self._in_string = True
        elif char == "[":
            self._stack.append(_List())
        elif char == "{":
            self._stack.append(None)

    def _close_into_parent(self, char: str) -> None:
        parent = self._stack[-1] if self._stack else None
        for entry in self._stack:
            if entry is not None:
                entry.current.append(char)
        if parent is not None:
            self._finished(parent)

    def _finished(self, entry: _List) -> None:
        """An item of ``entry`` may have just ended (a string's or a container's close)."""
        item = "".join(entry.current).strip()
        self.repeated = _canonical(item) in entry.items or _repeats_a_long_value(item, entry.items)
