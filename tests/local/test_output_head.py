"""The output layer for the grammar's candidates only (``_head``): the GGUF header, the
Q8_0 arithmetic, which tokens are candidates, and, on the bundled model in a subprocess
(``head_check.py``), the same logits and the same answers as llama.cpp's full output layer."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from local_support import require_local_extra, run_check

np = pytest.importorskip("numpy")

from openai_structured.local._head import (  # noqa: E402
    F32,
    Q8_0,
    GGUFError,
    OutputHead,
    RequestHead,
    VocabPieces,
    candidate_ids,
    gguf_tensors,
    grammar_literals,
    probe_ids,
    read_gguf,
    request_texts,
    token_pieces,
)

# --- the GGUF header -------------------------------------------------------------------------


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _gguf(
    metadata: list[tuple[str, int, bytes]], tensors: list[tuple[str, tuple[int, ...], int, int]]
) -> bytes:
    """A GGUF file's bytes: header, metadata (key, type, packed value), tensor infos."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, kind, value in metadata:
        out += _gguf_string(key) + struct.pack("<I", kind) + value
    for name, dims, kind, offset in tensors:
        out += _gguf_string(name) + struct.pack("<I", len(dims))
        out += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", kind, offset)
    return out


def test_the_header_gives_each_tensor_s_type_shape_and_place_in_the_file() -> None:
    tokens = struct.pack("<IQ", 8, 3) + b"".join(_gguf_string(t) for t in ("a", "bb", "ccc"))
    scores = struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.5, 0.25, 0.125)
    header = _gguf(
        [
            ("general.architecture", 8, _gguf_string("gemma3")),
            ("general.alignment", 4, struct.pack("<I", 64)),
            ("tokenizer.ggml.tokens", 9, tokens),
            ("tokenizer.ggml.scores", 9, scores),
            ("gemma3.embedding_length", 4, struct.pack("<I", 64)),
        ],
        [("token_embd.weight", (64, 3), Q8_0, 0), ("output_norm.weight", (64,), F32, 256)],
    )
    metadata, tensors = gguf_tensors(header)
    assert metadata == {
        "general.architecture": "gemma3",
        "general.alignment": 64,
        "gemma3.embedding_length": 64,
    }  # arrays (the tokenizer's) are skipped
    start = -(-len(header) // 64) * 64  # the data begins at the next multiple of the alignment
    assert tensors["token_embd.weight"].shape == (64, 3)
    assert tensors["token_embd.weight"].type == Q8_0
    assert tensors["token_embd.weight"].offset == start
    assert tensors["output_norm.weight"].offset == start + 256


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"GGML" + bytes(20), "not a GGUF"), (b"GGUF" + struct.pack("<I", 3) + b"\x01", "ends")],
)
def test_a_file_that_is_no_gguf_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(GGUFError, match=message):
        gguf_tensors(data)


def test_q8_0_rows_and_the_hidden_state_are_quantized_as_llama_cpp_does(tmp_path: Path) -> None:
    """Rows are fp16 scale x int8; the hidden state is quantized per block of 32 with C's
    rounding (halves away from zero) and an fp16 scale, as ggml's quantize_row_q8_0."""
    n_vocab, n_embd = 3, 64
    rng = np.random.default_rng(7)
    values = rng.integers(-127, 128, size=(n_vocab, n_embd // 32, 32)).astype(np.int8)
    scales = np.array([[0.01, 0.02], [0.5, 0.25], [1.0, 0.001]], dtype=np.float16)
    blocks = b"".join(
        scales[r, b].tobytes() + values[r, b].tobytes()
        for r in range(n_vocab)
        for b in range(n_embd // 32)
    )
    header = _gguf([], [("token_embd.weight", (n_embd, n_vocab), Q8_0, 0)])
    pad = -(-len(header) // 32) * 32 - len(header)
    path = tmp_path / "tiny.gguf"
    path.write_bytes(header + bytes(pad) + blocks)
    head = OutputHead.load(read_gguf(path), n_vocab, n_embd)
    assert head is not None
    rows = head.rows(np.array([2, 0]))
    expected = values.astype(np.float32) * scales.astype(np.float32)[:, :, None]
    assert np.array_equal(rows, expected.reshape(n_vocab, n_embd)[[2, 0]])

    hidden = np.zeros(n_embd, dtype=np.float32)
    hidden[0], hidden[1], hidden[2] = 127.0, 0.5, -0.5  # scale 1: halves go away from zero
    hidden[32:] = np.linspace(-2.0, 2.0, 32)
    quantized = head.activation(hidden)
    assert quantized[:3].tolist() == [127.0, 1.0, -1.0]
    scale = np.float32(np.float16(2.0 / 127.0))
    assert np.allclose(quantized[32:], np.round(hidden[32:] * 127.0 / 2.0) * scale)
    assert OutputHead.load(read_gguf(path), n_vocab + 1, n_embd) is None  # not this model's shape


def test_a_model_with_a_final_soft_cap_keeps_llama_cpp_s_output_layer(tmp_path: Path) -> None:
    header = _gguf(
        [
            ("general.architecture", 8, _gguf_string("gemma2")),
            ("gemma2.final_logit_softcapping", 6, struct.pack("<f", 30.0)),
        ],
        [("token_embd.weight", (32, 2), F32, 0)],
    )
    path = tmp_path / "capped.gguf"
    path.write_bytes(header + bytes(512))
    assert OutputHead.load(read_gguf(path), 2, 32) is None


def test_a_sentencepiece_vocabulary_s_pieces_are_read_from_the_file() -> None:
    metadata = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": ["<eos>", "\u2581Ada", "lace", "<0x0A>", "<0xE2>", "</s>"],
        "tokenizer.ggml.token_type": [3, 1, 1, 6, 6, 4],
    }
    # A user-defined token may be written or not: llama.cpp is asked (None).
    assert token_pieces(metadata) == ["", " Ada", "lace", "\n", "\ufffd", None]
    assert token_pieces({**metadata, "tokenizer.ggml.model": "gpt2"}) is None  # not written so


@pytest.mark.local
def test_the_bundled_model_s_pieces_are_what_llama_cpp_writes(vocab_model: Any) -> None:
    """Read from the GGUF, the same text llama.cpp gives each token (llama-cpp-python's
    32-byte buffer gives nothing for a longer token; the file has its text)."""
    from openai_structured.local import ensure_model

    pieces = token_pieces(read_gguf(ensure_model())[1])
    assert pieces is not None and len(pieces) == vocab_model.n_vocab()
    differ = []
    for token, piece in enumerate(pieces):
        if piece is None:
            continue
        written = vocab_model.detokenize([token]).decode("utf-8", errors="replace")
        if written != piece and not (written == "" and len(piece.encode()) > 32):
            differ.append((token, piece, written))
    assert differ == []
    assert pieces.count(None) < 200  # the user-defined tokens only


# --- which tokens are candidates -------------------------------------------------------------

PIECES = ["", " Ada", "Ada", " Lovelace", "Love", "lace", "{", '",', "12", " the", "的", "Q"]
PIECES += ["\ufffd", ""]  # a byte; a control token that ends a generation (the first: not)


def _vocab() -> VocabPieces:
    return VocabPieces(PIECES, lambda token: token == len(PIECES) - 1)


def _ids(vocab: VocabPieces, found: Any) -> set[str]:
    return {vocab.pieces[int(t)] for t in found}


def test_candidates_are_the_pieces_of_the_texts_and_the_structure() -> None:
    vocab = _vocab()
    # The end of a generation, partial characters and JSON's punctuation and digits, always.
    assert vocab.always.tolist() == [6, 7, 8, 12, 13]
    assert _ids(vocab, vocab.always) == {"", "{", '",', "12", "\ufffd"}
    found = candidate_ids(vocab, ["Ada\n   Lovelace wrote"])
    # " Lovelace" is only in the text with its whitespace as one space, as a copy writes it.
    words = {"Ada", "Love", "lace", " Lovelace"}
    assert _ids(vocab, found) == {"", "{", '",', "12", "\ufffd"} | words
    assert list(found) == sorted(found)
    probes = probe_ids(vocab, found)
    assert _ids(vocab, probes) == {" the", "的", "Q"}  # a free string would admit these


def test_a_request_s_texts_hold_its_grammar_s_literals_unescaped() -> None:
    gbnf = 'root ::= "{" space "\\"name\\"" ":" ( "\\"Zoë\\\\n\\"" | "null" )\nspace ::= " "?'
    literals = grammar_literals(gbnf).split("\n")
    assert '"name"' in literals and '"Zoë\\n"' in literals and "null" in literals
    texts = request_texts("prompt", {"type": "object"}, gbnf)
    assert texts[0] == "prompt" and '{"type": "object"}' in texts


def test_positions_are_where_candidates_sit_and_nothing_for_others() -> None:
    class Rows:
        def rows(self, ids: Any) -> Any:
            return np.zeros((len(ids), 4), dtype=np.float32)

    ids = np.array([3, 8, 20], dtype=np.intc)
    head = RequestHead(Rows(), ids, np.array([], np.intc), relogit=list)  # type: ignore[arg-type]
    assert head.positions([20, 5, 3, 99]).tolist() == [2, 0]


# --- on the bundled model ---------------------------------------------------------------------


@pytest.mark.local
def test_the_candidates_logits_and_answers_are_llama_cpp_s() -> None:
    """Our logits equal llama.cpp's, a decode stopped after its final norm leaves the same
    context, and chat answers are the same text with the partial output layer, without it,
    and when no candidate is ever admitted (every such token decoded again)."""
    require_local_extra()
    report = run_check("head_check.py", timeout=900)
    logits = report["logits"]
    assert logits["max_abs_diff"] < 0.01 and logits["same_best"], logits
    kv = report["kv"]
    assert kv["stopped_cut"] and not kv["stopped_full"], kv
    assert kv["max_abs_diff"] == 0.0, kv  # the same KV cache: bit for bit the same logits
    for case in report["answers"]:
        assert case["with"] == case["without"], case
        assert case["counts"]["partial"] > 0 and case["counts"]["relogit"] == 0, case
    for case in report["relogit"]:
        assert case["with"] == case["without"], case
        assert case["counts"]["partial"] == 0 and case["counts"]["relogit"] > 0, case
    # A free string (a URI, which the text does not hold: no copy) is written from every
    # token's logits: past the first token, choices that were not the candidates'.
    counts = report["answers"][3]["counts"]
    chosen = counts["first"] + counts["top"] + counts["wide"] + counts["all"]
    assert chosen - counts["partial"] >= 3, counts
