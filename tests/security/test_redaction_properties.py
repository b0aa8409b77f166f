"""Property test: generated secrets of every shape (random suffixes), hidden in generated nested
structures (dicts with secret-named, counter and ordinary keys, lists, tuples, sets, bytes,
dataclasses, header pairs), never survive :func:`redact`; every other leaf comes back unchanged.

Each generated node is ``(value, expected, secrets)``: the input, what ``redact`` must return
(ordinary leaves as they are, each secret replaced by ``[REDACTED]``), and the secret strings
it holds. Ordinary text is drawn from letters, digits, spaces and ``.,!?`` with no scheme word
(``bearer``/``basic``) or key prefix in it, so it cannot look like a secret by accident; and
every secret holds a ``-``, ``_``, ``~`` or ``.``, or a key prefix, so no ordinary text holds one.
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from openai_structured._logging import redact

R = "[REDACTED]"
Node = tuple[Any, Any, tuple[str, ...]]

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "_-"
_TRIGGERS = ("bearer", "basic", "aiza", "akia", "asia", "eyj", "xox", "sk-", "gh", "github")


def _chars(alphabet: str, low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=low, max_size=low if high is None else high)


ordinary_text = _chars(ALNUM + " .,!?", 0, 24).filter(
    lambda s: not any(t in s.lower() for t in _TRIGGERS)
)

# --- secrets: (text, expected text, the secret part) ------------------------------------------


def _whole(prefix: st.SearchStrategy[str], body: st.SearchStrategy[str]) -> st.SearchStrategy:
    return st.builds(lambda p, b: (p + b, R, p + b), prefix, body)


def _scheme(word: str) -> st.SearchStrategy[str]:
    return st.builds(
        lambda flips: "".join(c.upper() if f else c for c, f in zip(word, flips, strict=True)),
        st.lists(st.booleans(), min_size=len(word), max_size=len(word)),
    )


_space = _chars(" \t", 1, 4)
_bearer = st.builds(
    lambda s, w, t: (f"{s}{w}{t}", f"{s}{w}{R}", t),
    _scheme("bearer"), _space, _chars(ALNUM + "._~+/-", 8, 40).map(lambda t: "bt-" + t),
)  # fmt: skip
_basic = st.builds(
    lambda s, w, u, p: (
        f"{s}{w}{base64.b64encode(f'{u}:{p}'.encode()).decode()}",
        f"{s}{w}{R}",
        base64.b64encode(f"{u}:{p}".encode()).decode(),
    ),
    _scheme("basic"), _space, _chars(ALNUM, 3, 12).map(lambda u: "u_" + u), _chars(ALNUM, 8, 20),
)  # fmt: skip
_url_password = st.builds(
    lambda scheme, user, pw, host: (
        f"{scheme}://{user}:{pw}@{host}.example.com/path",
        f"{scheme}://{user}:{R}@{host}.example.com/path",
        pw,
    ),
    st.sampled_from(["https", "http", "postgres", "redis", "amqp"]),
    _chars(ALNUM, 1, 10), _chars(ALNUM + "-._~%", 8, 24).map(lambda p: "pw~" + p),
    _chars(string.ascii_lowercase, 1, 10),
)  # fmt: skip
_query = st.builds(
    lambda lead, name, value: (
        f"https://h.example.com/p?{lead}{name}={value}",
        f"https://h.example.com/p?{lead}{name}={R}",
        value,
    ),
    st.sampled_from(["", "x=1&", "v=2;"]),
    st.sampled_from(["key", "api_key", "apiKey", "access_token", "sig", "signature", "code",
                     "client_secret", "X-Amz-Credential", "password", "token"]),
    _chars(ALNUM + "%-._~", 8, 30).map(lambda v: "qv-" + v),
)  # fmt: skip
SECRETS = st.one_of(
    _whole(st.sampled_from(["sk-", "sk-proj-", "sk-svcacct-", "sk-ant-api03-"]),
           _chars(B64URL, 20, 60)),
    _whole(st.just("AIza"), _chars(B64URL, 35)),
    _whole(st.sampled_from(["AKIA", "ASIA"]), _chars(string.ascii_uppercase + string.digits, 16)),
    _whole(st.sampled_from(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]), _chars(ALNUM, 36)),
    _whole(st.just("github_pat_"), _chars(ALNUM + "_", 22, 82)),
    _whole(st.sampled_from(["xoxb-", "xoxp-", "xoxa-", "xoxr-"]), _chars(ALNUM + "-", 10, 40)),
    st.builds(
        lambda h, p, s: (f"eyJ{h}.eyJ{p}.{s}", R, f"eyJ{h}.eyJ{p}.{s}"),
        _chars(B64URL, 6, 30), _chars(B64URL, 6, 60), _chars(B64URL, 0, 43),
    ),
    _bearer,
    _basic,
    _url_password,
    _query,
)  # fmt: skip

# --- names --------------------------------------------------------------------------------------

_SECRET_WORDS = [
    "key", "token", "secret", "password", "passwd", "auth", "credential", "signature",
    "subscription", "session", "cookie", "apikey", "credentials",
]  # fmt: skip
secret_names = st.builds(
    lambda pre, sep, word, upper, post: pre + sep + (word.capitalize() if upper else word) + post,
    st.sampled_from(["", "x", "X", "client", "my", "aws", "Ocp-Apim", "upstream", "access"]),
    st.sampled_from(["", "-", "_"]),
    st.sampled_from(_SECRET_WORDS),
    st.booleans(),
    st.sampled_from(["", "_id", "Id", "-value", "_v2", "Header", "-Key"]),
)
_NAME_WORDS = ("key", "tok", "secret", "pass", "pwd", "auth", "cred", "sig", "subscr", "session",
               "cookie", "privat")  # fmt: skip
_SCHEMA_WORDS = {"properties", "patternproperties", "defs", "definitions", "dependentschemas"}
ordinary_names = _chars(string.ascii_lowercase + "_", 1, 12).filter(
    lambda n: not any(w in n for w in _NAME_WORDS) and n.replace("_", "") not in _SCHEMA_WORDS
)
counter_names = st.sampled_from(
    ["max_tokens", "max_completion_tokens", "max_output_tokens", "total_tokens", "prompt_tokens",
     "completion_tokens", "reasoning_tokens", "cached_tokens", "token_count", "tokenCount"]
)  # fmt: skip

# --- leaves -------------------------------------------------------------------------------------


def _embedded(secret: tuple[str, str, str], before: str, after: str) -> Node:
    text, expected, part = secret
    return f"{before} {text} {after}", f"{before} {expected} {after}", (part,)


plain_leaf = st.one_of(
    ordinary_text.map(lambda s: (s, s, ())),
    st.integers(-(10**6), 10**6).map(lambda n: (n, n, ())),
    st.sampled_from([True, False, None]).map(lambda v: (v, v, ())),
)
secret_leaf = st.builds(_embedded, SECRETS, ordinary_text, ordinary_text)


def _as_bytes(node: Node) -> Node:
    value, expected, secrets = node
    return value.encode(), expected.encode(), secrets


text_leaf = st.one_of(secret_leaf, ordinary_text.map(lambda s: (s, s, ())))
leaves = st.one_of(plain_leaf, secret_leaf, text_leaf.map(_as_bytes))
#: A value only its name makes secret (``{"X-Goog-Api-Key": "..."}``).
named_value = st.one_of(
    _chars(ALNUM, 12, 32).map(lambda s: ("nv_" + s, R, ("nv_" + s,))),
    _chars(ALNUM, 12, 32).map(lambda s: (b"nv_" + s.encode(), R.encode(), ("nv_" + s,))),
    st.integers(10**6, 10**9).map(lambda n: (n, R, ())),
)


@dataclass
class Box:
    label: Any
    api_key: Any
    child: Any


def _dicts(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    entry = st.one_of(
        st.tuples(ordinary_names, children).map(lambda e: (e[0], e[0], e[1])),
        st.tuples(secret_names, named_value).map(lambda e: (e[0], e[0], e[1])),
        st.tuples(counter_names, st.integers(0, 10**6)).map(
            lambda e: (e[0], e[0], (e[1], e[1], ()))
        ),
        # A secret as a key: its value is kept (a bool says nothing), the key is masked.
        st.tuples(secret_leaf, st.booleans()).map(
            lambda e: (e[0][0], e[0][1], (e[1], e[1], e[0][2]))
        ),
    )

    def build(entries: list[tuple[str, str, Node]]) -> Node:
        value: dict[Any, Any] = {}
        expected: dict[Any, Any] = {}
        secrets: tuple[str, ...] = ()
        for key, expected_key, (item, expected_item, inner) in entries:
            if key in value or expected_key in expected:
                continue  # keep keys and their masked forms distinct
            value[key] = item
            expected[expected_key] = expected_item
            secrets += inner
        return value, expected, secrets

    return st.lists(entry, max_size=5).map(build)


def _sequences(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def build(items: list[Node], kind: type) -> Node:
        return (
            kind(i[0] for i in items),
            kind(i[1] for i in items),
            tuple(s for i in items for s in i[2]),
        )

    return st.builds(build, st.lists(children, max_size=4), st.sampled_from([list, tuple]))


def _sets(members: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def build(items: list[Node], kind: type) -> Node:
        return (
            kind(i[0] for i in items),
            kind(i[1] for i in items),
            tuple(s for i in items for s in i[2]),
        )

    return st.builds(build, st.lists(members, max_size=4), st.sampled_from([set, frozenset]))


def _boxes(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    def build(label: Node, key: Node, child: Node) -> Node:
        return (
            Box(label[0], key[0], child[0]),
            {"label": label[1], "api_key": key[1], "child": child[1]},
            label[2] + key[2] + child[2],
        )

    return st.builds(build, text_leaf, named_value, children)


def _header_pairs() -> st.SearchStrategy[Node]:
    return st.builds(
        lambda name, value: ((name, value[0]), (name, value[1]), value[2]),
        secret_names,
        named_value,
    )


hashable_leaves = st.one_of(plain_leaf, secret_leaf, text_leaf.map(_as_bytes))
trees = st.recursive(
    st.one_of(leaves, _sets(hashable_leaves), _header_pairs()),
    lambda children: st.one_of(_dicts(children), _sequences(children), _boxes(children)),
    max_leaves=24,
)


@settings(max_examples=400)
@given(trees)
def test_no_generated_secret_survives_and_everything_else_is_unchanged(node: Node) -> None:
    value, expected, secrets = node
    out = redact(value)
    assert out == expected
    shown = repr(out)
    assert [s for s in secrets if s in shown] == []


@settings(max_examples=200)
@given(st.lists(SECRETS, min_size=1, max_size=6), ordinary_text)
def test_secrets_side_by_side_in_one_text_are_all_masked(
    secrets: list[tuple[str, str, str]], glue: str
) -> None:
    text = f" {glue} ".join(s[0] for s in secrets)
    expected = f" {glue} ".join(s[1] for s in secrets)
    assert redact(text) == expected
    assert redact(text.encode()) == expected.encode()
