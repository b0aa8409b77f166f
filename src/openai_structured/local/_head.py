"""The model's output layer for the few tokens the grammar can admit, instead of all 262,144.

Gemma 3 270M's output layer (its token embeddings, tied) is 262,144 x 640 weights: more work
per decoded token than the other 18 layers together (measured in-process, 2 cores: a decode
with its logits 25 ms, without 11 ms). Where the answer is a copy of the text, a number, a
key or JSON's punctuation, the grammar admits only tokens that are pieces of the text, the
schema or the grammar's literals (:func:`candidate_ids`), a few thousand. There the server
stops llama.cpp's graph right after the final norm (:class:`HiddenTap`, llama.cpp's eval
callback), takes that hidden state and computes the logits of those tokens only
(:class:`OutputHead`), as llama.cpp would (Q8_0 weights, the hidden state quantized to Q8_0
the same way: within 7e-6 of llama.cpp's logits, measured). Where the grammar would admit
something else (a free string: one of :func:`probe_ids` is admitted), the decode keeps its
full logits; where none of the candidates turns out admitted, the sampler asks for them
again (a decode of the last token with its logits).

The GGUF is read with :func:`gguf_tensors` (pure; the format's header only) and the weights
are a read-only memory map of the same file llama.cpp maps: no copy, no second load. The
tokens' text comes from the same header (:func:`token_pieces`).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "GGUF",
    "GGUFError",
    "HiddenTap",
    "OutputHead",
    "RequestHead",
    "TensorInfo",
    "VocabPieces",
    "candidate_ids",
    "gguf_tensors",
    "grammar_literals",
    "probe_ids",
    "read_gguf",
    "request_texts",
    "token_pieces",
]

# --- the GGUF header (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) -------------

#: The metadata's scalar types and their struct formats (little-endian).
_SCALARS = dict(enumerate("BbHhIif?")) | {10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
#: ggml's tensor types this module reads.
F32, F16, Q8_0 = 0, 1, 8
_Q8_0_BLOCK = 32  # values per block; a block is an fp16 scale and 32 int8


class GGUFError(ValueError):
    """The file is not a GGUF this module can read."""


@dataclass(frozen=True)
class TensorInfo:
    type: int
    #: ggml's order: the row length first (``[640, 262144]`` for the embeddings).
    shape: tuple[int, ...]
    #: From the start of the file.
    offset: int


class _Reader:
    """A cursor over a GGUF file's bytes (a memory map: the header is read, not the data)."""

    def __init__(self, data: Any) -> None:
        self.data, self.at = data, 0

    def take(self, size: int) -> Any:
        if self.at + size > len(self.data):
            raise GGUFError("the file ends inside its header")
        self.at += size
        return self.data[self.at - size : self.at]

    def unpack(self, fmt: str) -> Any:
        (value,) = struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))
        return value

    def string(self) -> str:
        return bytes(self.take(self.unpack("Q"))).decode("utf-8", errors="replace")

    def value(self, kind: int, *, keep: bool = True) -> Any:
        """A metadata value; an array is skipped (None) unless ``keep``: the tokenizer's are
        262k long."""
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise GGUFError(f"unknown metadata type {kind}")
        item, count = self.unpack("I"), self.unpack("Q")
        if item in _SCALARS:
            fmt = _SCALARS[item]
            data = self.take(struct.calcsize("<" + fmt) * count)
            return list(struct.unpack(f"<{count}{fmt}", data)) if keep else None
        if item == _STRING and not keep:
            for _ in range(count):
                self.take(self.unpack("Q"))
            return None
        values = [self.value(item, keep=keep) for _ in range(count)]
        return values if keep else None


def gguf_tensors(
    data: Any, *, arrays: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, TensorInfo]]:
    """The scalar metadata (and the ``arrays`` named) and the tensors (type, shape, offset in
    the file) of a GGUF file's bytes (``bytes`` or a memory map)."""
    wanted = set(arrays)
    reader = _Reader(data)
    if bytes(reader.take(4)) != b"GGUF":
        raise GGUFError("not a GGUF file")
    version = reader.unpack("I")
    if version < 2:
        raise GGUFError(f"GGUF version {version} is too old")
    n_tensors, n_kv = reader.unpack("Q"), reader.unpack("Q")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = reader.string()
        value = reader.value(reader.unpack("I"), keep=key in wanted)
        if value is not None:
            metadata[key] = value
    infos: list[tuple[str, int, tuple[int, ...], int]] = []
    for _ in range(n_tensors):
        name = reader.string()
        dims = tuple(reader.unpack("Q") for _ in range(reader.unpack("I")))
        infos.append((name, reader.unpack("I"), dims, reader.unpack("Q")))
    alignment = int(metadata.get("general.alignment", 32))
    start = -(-reader.at // alignment) * alignment
    tensors = {name: TensorInfo(kind, dims, start + offset) for name, kind, dims, offset in infos}
    return metadata, tensors


#: llama.cpp's token types (``llama_token_type``) :func:`token_pieces` reads.
_NORMAL, _CONTROL, _BYTE = 1, 3, 6
_TOKENS, _TOKEN_TYPES = "tokenizer.ggml.tokens", "tokenizer.ggml.token_type"


def token_pieces(metadata: Mapping[str, Any]) -> list[str | None] | None:
    """Each token's text as llama.cpp writes it (without special tokens), from the metadata
    of a SentencePiece vocabulary (read with ``arrays`` :data:`_TOKENS` and
    :data:`_TOKEN_TYPES`): ``▁`` is a space, a byte token its byte (``\ufffd`` past ASCII),
    a control token nothing; None for a token of another type (llama.cpp decides: ask it).
    None for another kind of vocabulary. Reading them costs ~0.2 s for 262,144 tokens; asking
    llama.cpp for each one, 0.9 s (and llama-cpp-python's buffer gives nothing for a token
    longer than 32 bytes)."""
    texts, types = metadata.get(_TOKENS), metadata.get(_TOKEN_TYPES)
    if metadata.get("tokenizer.ggml.model") != "llama" or not texts or not types:
        return None
    if len(texts) != len(types):
        return None
    pieces: list[str | None] = []
    for text, kind in zip(texts, types, strict=True):
        if kind == _NORMAL:
            pieces.append(text.replace("\u2581", " "))
        elif kind == _CONTROL:
            pieces.append("")
        elif kind == _BYTE and re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", text):
            byte = int(text[3:5], 16)
            pieces.append(chr(byte) if byte < 0x80 else "\ufffd")
        else:
            pieces.append(None)
    return pieces


#: A GGUF file mapped read-only, its metadata and its tensors (:func:`read_gguf`).
GGUF = tuple[Any, Mapping[str, Any], Mapping[str, TensorInfo]]


def read_gguf(path: str | Path) -> GGUF:
    """A GGUF file mapped read-only, its metadata (with the tokenizer's tokens and types) and
    its tensors."""
    with open(path, "rb") as stream:
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    metadata, tensors = gguf_tensors(mapped, arrays=(_TOKENS, _TOKEN_TYPES))
    return mapped, metadata, tensors


# --- the output layer ------------------------------------------------------------------------


class OutputHead:
    """Rows of the model's output matrix, and the logits they give for a hidden state."""

    def __init__(self, weights: Any, kind: int, n_vocab: int, n_embd: int) -> None:
        #: The raw rows: Q8_0 blocks (bytes), or F16/F32 values.
        self._weights = weights
        self._kind = kind
        self.n_vocab, self.n_embd = n_vocab, n_embd

    @classmethod
    def load(cls, gguf: GGUF, n_vocab: int, n_embd: int) -> OutputHead | None:
        """The output matrix of a GGUF (:func:`read_gguf`); None when this module cannot
        compute its logits as llama.cpp does (another type, a final soft-cap)."""
        mapped, metadata, tensors = gguf
        arch = metadata.get("general.architecture", "")
        if metadata.get(f"{arch}.final_logit_softcapping"):
            return None
        info = tensors.get("output.weight") or tensors.get("token_embd.weight")
        if info is None or info.shape != (n_embd, n_vocab):
            return None
        dtype: Any
        if info.type == Q8_0 and n_embd % _Q8_0_BLOCK == 0:
            row, dtype = n_embd // _Q8_0_BLOCK * 34, np.dtype(np.uint8)
        elif info.type in (F16, F32):
            dtype = np.dtype(np.float16 if info.type == F16 else np.float32)
            row = n_embd
        else:
            return None
        weights = np.frombuffer(
            mapped, dtype=dtype, count=n_vocab * row, offset=info.offset
        ).reshape(n_vocab, row)
        return cls(weights, info.type, n_vocab, n_embd)

    def rows(self, ids: Any) -> Any:
        """The rows of ``ids`` as float32 (``len(ids) x n_embd``)."""
        raw = self._weights[ids]
        if self._kind != Q8_0:
            return raw.astype(np.float32)
        blocks = raw.reshape(len(ids), -1, 34)
        scales = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
        values = blocks[:, :, 2:].view(np.int8).astype(np.float32)
        return (values * scales).reshape(len(ids), self.n_embd)

    def activation(self, hidden: Any) -> Any:
        """``hidden`` as llama.cpp multiplies it with these weights: quantized to Q8_0 blocks
        (fp16 scale, int8 values) for Q8_0 weights, to fp16 for F16 ones."""
        hidden = np.asarray(hidden, dtype=np.float32)
        if self._kind == F16:
            return hidden.astype(np.float16).astype(np.float32)
        if self._kind != Q8_0:
            return hidden
        blocks = hidden.reshape(-1, _Q8_0_BLOCK)
        scale = np.abs(blocks).max(axis=1) / 127.0
        inverse = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale > 0)
        scaled = blocks * inverse[:, None]
        values = np.trunc(scaled + np.copysign(0.5, scaled))  # C's roundf: halves away from 0
        rounded = scale.astype(np.float16).astype(np.float32)
        return (values * rounded[:, None]).reshape(-1)


# --- the hidden state, from llama.cpp's eval callback ----------------------------------------

#: Where ``struct ggml_tensor`` (ggml.h) keeps what the tap reads: its type, its sizes
#: (``ne``), its data pointer and its name (x86-64 and arm64 layout). The tap checks the
#: type and the row length before it trusts a tensor, so a moved field means no tap, not
#: wrong logits.
_TYPE_AT, _NE_AT, _DATA_AT, _NAME_AT = 0, 16, 248, 256
#: The name llama.cpp's graphs give the hidden state after the final norm.
_FINAL_NORM = b"result_norm\0"


class HiddenTap:
    """llama.cpp's ``cb_eval`` for one context: keeps the last row of the final norm of every
    decode and, when :attr:`armed`, stops the graph there (the output layer is not computed;
    the KV cache is complete by then)."""

    def __init__(self, n_embd: int, callback_type: Any) -> None:
        self.n_embd = n_embd
        #: Stop the next decode after its final norm.
        self.armed = False
        #: Whether the last decode was stopped there (its logits were not computed).
        self.stopped = False
        #: The final norm of the last decode's last output row (None: not seen).
        self.hidden: Any = None
        self.callback = callback_type(self._on_tensor)

    def begin(self, *, skip: bool) -> None:
        """Before a decode."""
        self.armed, self.stopped, self.hidden = skip, False, None

    def _on_tensor(self, tensor: int, ask: bool, _user: Any) -> bool:
        if ask:
            return ctypes.string_at(tensor + _NAME_AT, len(_FINAL_NORM)) == _FINAL_NORM
        kind = ctypes.c_int32.from_address(tensor + _TYPE_AT).value
        cols, rows = struct.unpack("<2q", ctypes.string_at(tensor + _NE_AT, 16))
        data = ctypes.c_void_p.from_address(tensor + _DATA_AT).value
        if kind != F32 or cols != self.n_embd or rows < 1 or not data:
            return True
        row = (ctypes.c_float * cols).from_address(data + (rows - 1) * cols * 4)
        self.hidden = np.frombuffer(row, dtype=np.float32).copy()
        if self.armed:
            self.stopped = True
            return False  # ggml stops the graph here: no output layer
        return True


# --- which tokens ----------------------------------------------------------------------------

#: JSON's punctuation, numbers, ISO dates and times, escapes and whitespace: a token made of
#: these only may be admitted anywhere a value, a key or the structure goes on.
_STRUCTURAL = ' \t\n\r{}[]",:0123456789.-+eETZ\\/'
#: Longer pieces of a text are not looked for (Gemma's longest ordinary pieces are shorter).
MAX_PIECE = 24
#: Tokens a free string admits and a copy, a number or a key hardly ever does: any of them
#: admitted (and not a candidate) means the position is free. Single characters of other
#: scripts, rare letter pairs and signs first.
_PROBES = (
    "的", "の", "и", "ж", "ß", "€", "¶", "~", "^", "|", "`", "@", "!", "?", ";", "=", "<",
    ">", "*", "&", "%", "$", "#", "_", "qz", "xq", "zx", "jq", "QZ", "XQ", "ZX", "JQ", " the",
    " and", " of", "ing", "tion", "a", "e", "o", "x", "q", "z", "A", "E", "O", "X", "Q", "Z",
)  # fmt: skip


class VocabPieces:
    """The text of every token of a vocabulary, indexed for :func:`candidate_ids` (built once
    per server: ~0.3 s for 262,144 tokens). ``ends`` says which tokens end a generation."""

    def __init__(self, pieces: Sequence[str], ends: Callable[[int], bool]) -> None:
        self.pieces = list(pieces)
        self.by_piece: dict[str, list[int]] = {}
        always: list[int] = []
        for token, piece in enumerate(self.pieces):
            if not piece:  # a control token: llama.cpp's grammar admits only the ends
                if ends(token):
                    always.append(token)
                continue
            self.by_piece.setdefault(piece, []).append(token)
            # Structure, and bytes or pieces of a character (of a text's rarer characters).
            if not piece.strip(_STRUCTURAL) or "\ufffd" in piece:
                always.append(token)
        self.always = np.array(always, dtype=np.intc)
        self.longest = min(MAX_PIECE, max((len(p) for p in self.pieces), default=1))


def _spaced(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def candidate_ids(vocab: VocabPieces, texts: Iterable[str]) -> Any:
    """The tokens whose piece occurs in one of ``texts`` (as written, and with each run of
    whitespace as one space, as a copy writes it), with :attr:`VocabPieces.always`; sorted."""
    found: set[int] = set()
    seen: set[str] = set()
    by_piece, longest = vocab.by_piece, vocab.longest
    for text in texts:
        for variant in {text, _spaced(text)}:
            for start in range(len(variant)):
                for end in range(start + 1, min(start + longest, len(variant)) + 1):
                    piece = variant[start:end]
                    if piece in seen:
                        continue
                    seen.add(piece)
                    ids = by_piece.get(piece)
                    if ids:
                        found.update(ids)
    return np.union1d(np.fromiter(found, dtype=np.intc, count=len(found)), vocab.always)


def probe_ids(vocab: VocabPieces, candidates: Any) -> Any:
    """The probes (:data:`_PROBES`) that are tokens of ``vocab`` and not among ``candidates``."""
    ids = [i for p in _PROBES for i in vocab.by_piece.get(p, [])]
    return np.setdiff1d(np.array(ids, dtype=np.intc), candidates).astype(np.intc)


_LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')


def grammar_literals(gbnf: str) -> str:
    """The literals of a GBNF grammar (what it can write besides its character classes), one
    per line, unescaped."""
    unique = dict.fromkeys(_LITERAL.findall(gbnf))
    out = []
    for literal in unique:
        try:
            out.append(json.loads(f'"{literal}"'))
        except ValueError:  # a GBNF escape JSON lacks (\x..): as written
            out.append(literal)
    return "\n".join(out)


class RequestHead:
    """The output layer for one request's candidate tokens."""

    def __init__(
        self,
        head: OutputHead,
        candidates: Any,
        probes: Any,
        *,
        relogit: Callable[[], Any],
    ) -> None:
        self.ids = candidates
        self.probes = probes
        self._head = head
        self._rows = head.rows(candidates)
        #: A decode of the last token with its logits, when no candidate is admitted.
        self.relogit = relogit

    def logits(self, hidden: Any) -> Any:
        """The candidates' logits for ``hidden``."""
        return self._rows @ self._head.activation(hidden)

    def positions(self, tokens: Any) -> Any:
        """Where ``tokens`` that are candidates sit in :attr:`ids`."""
        tokens = np.asarray(tokens, dtype=np.intc)
        at = np.searchsorted(self.ids, tokens)
        at = np.minimum(at, len(self.ids) - 1)
        return at[self.ids[at] == tokens]


def request_texts(prompt: str, schema: Mapping[str, Any] | None, gbnf: str) -> list[str]:
    """What a request's answer can be made of: the prompt the model is shown, the schema and
    the literals of its grammar."""
    texts = [prompt, grammar_literals(gbnf), "null true false"]
    if schema:
        texts.append(json.dumps(schema, ensure_ascii=False))
    return texts
