"""How much of the real-world schema corpus strict mode can use: our compiler and the SDK's.

    .venv/bin/python benchmarks/schema_coverage.py [--json] [--examples N] [--src DIR] [--exact]

For every file in ``tests/schema/corpus/<source>/*.json`` (see that folder's README.md):

* ours: ``openai_structured.schema.check_schema(doc)``, classified as
  ``strict`` (compiled; every change lossless, or none), ``rewrites`` (compiled with at least
  one lossy change: a constraint kept only as a description hint), ``refused`` (the report's
  ``SchemaError``s, grouped by reason category) or ``crash`` (any other exception: a bug).
  Every compiled schema is also checked with ``tests/schema/schema_checker.py``.
* the openai SDK: ``openai.lib._pydantic._ensure_strict_json_schema`` on a copy of the same
  document, counted as ``crash`` (it raised), ``invalid`` (its output breaks strict mode's
  rules, by the same checker) or ``valid``.

Prints a table per source and in total (``--json``: the same as one JSON document).

``--src DIR`` measures the ``openai_structured`` package found in ``DIR`` instead of this
checkout's ``src`` (e.g. ``git archive <commit> src | tar -x -C /tmp/old`` then
``--src /tmp/old/src`` for a before/after comparison). The checker's meta-schema step
(``Draft202012Validator.check_schema``) dominates the run time; by default it is replaced by
the draft-07 meta-schema applied to the root and to each ``$defs`` entry (same verdicts on
strict-shaped schemas, about 4x faster); ``--exact`` keeps the checker exactly as it is.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "schema" / "corpus"
CHECKER = ROOT / "tests" / "schema" / "schema_checker.py"


class _Draft7Meta:
    """Stands in for ``Draft202012Validator`` in the checker: only ``check_schema`` is used."""

    _validator: Any = None

    @classmethod
    def check_schema(cls, schema: Any) -> None:
        from jsonschema import Draft7Validator
        from jsonschema.exceptions import SchemaError, best_match

        if cls._validator is None:
            cls._validator = Draft7Validator(
                Draft7Validator.META_SCHEMA, format_checker=Draft7Validator.FORMAT_CHECKER
            )
        parts = [schema]
        if isinstance(schema, dict) and isinstance(schema.get("$defs"), dict):
            parts += schema["$defs"].values()
        for part in parts:
            error = best_match(cls._validator.iter_errors(part))
            if error is not None:
                raise SchemaError.create_from(error)


def _load_checker(exact: bool) -> Any:
    spec = importlib.util.spec_from_file_location("schema_checker", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not exact:
        module.Draft202012Validator = _Draft7Meta
    return module


# Reason text of a SchemaError -> category. First match wins.
REASONS: list[tuple[str, str]] = [
    ("remote ref", r"points outside this schema|\$dynamicRef to another resource"),
    ("unresolvable ref", r"does not resolve|no \$anchor named|\$ref cycle|root \$ref refers"),
    ("non-object root", r"^the root must be|^the root is not an object"),
    ("map", r"a map with arbitrary keys|patternProperties cannot"),
    (
        "any value",
        r"accepts any value|type \"any\"|items have no schema|declares no properties|"
        r"has no schema under properties",
    ),
    ("tuple", r"a tuple whose positions"),
    (
        "conditional (if/then/else, not, dependentSchemas, contains)",
        r"if/then/else|`not` cannot|conditional subschemas|`contains` cannot",
    ),
    ("propertyNames / min-maxProperties", r"propertyNames|minProperties/maxProperties"),
    ("object/array enum or const", r"enum/const values that are objects"),
    ("allOf cannot be merged", r"allOf|combining these anyOf/oneOf"),
    (
        "no value can match",
        r"no value can match|can match any value|is `false`|items: false|minItems .* larger|"
        r"no (enum|const) value matches",
    ),
    (
        "size limits",
        r"OpenAI allows|OpenAI's limit|nested more than|nested too deeply|too complex|too large",
    ),
    ("pattern Python cannot compile (e.g. \\p{L})", r"is not a 'regex'"),
    (
        "invalid JSON Schema",
        r"not a valid JSON Schema|must be a|must be an|unknown type|not a JSON document|"
        r"not valid Unicode",
    ),
]

# The checker's complaint about the SDK's output -> category.
SDK_REASONS: list[tuple[str, str]] = [
    ("root not a plain object", r"root must be a plain object"),
    ("boolean schema", r"no boolean schemas"),
    ("keywords beside $ref", r"keywords beside \$ref"),
    ("$ref not into #/$defs", r"unresolvable \$ref"),
    ("keywords beside anyOf", r"keywords beside anyOf"),
    (
        "no type / unsupported type (oneOf, type list, ...)",
        r"missing or unsupported type|unhashable type: 'list'",
    ),
    ("unsupported keyword", r"unsupported keywords for"),
    ("unsupported format", r"unsupported format"),
    ("object/array enum", r"enum values must be scalars|empty enum"),
    ("object without properties", r"object without properties"),
    ("open object (additionalProperties not false)", r"additionalProperties must be false"),
    ("not every property required", r"every property must be required"),
    ("array without items", r"array without items"),
    ("unused definitions", r"unused definitions"),
    ("size limits", r"more than"),
    ("not a valid JSON Schema", r"^SchemaError"),
    ("not plain JSON", r"^ValueError"),
]


def category(text: str, table: list[tuple[str, str]]) -> str:
    for name, pattern in table:
        if re.search(pattern, text):
            return name
    return "other"


def short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text[:160] + ("..." if len(text) > 160 else "")
    return f"{type(exc).__name__}: {text}"


def corpus_files() -> list[tuple[str, Path]]:
    files = []
    for folder in sorted(p for p in CORPUS.iterdir() if p.is_dir() and p.name != "tools"):
        files.extend((folder.name, f) for f in sorted(folder.glob("*.json")))
    return files


def measure(examples: int, src: Path, exact: bool) -> dict[str, Any]:
    sys.path.insert(0, str(src))
    from openai.lib._pydantic import _ensure_strict_json_schema

    import openai_structured
    from openai_structured.schema import check_schema, compile_schema

    bundle = getattr(openai_structured.schema, "bundle", None)  # absent before issue 12
    sys.path.insert(0, str(ROOT / "tests" / "schema"))
    import corpus_registry

    registry = corpus_registry.documents() if bundle is not None else {}

    checker = _load_checker(exact)
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    refused: dict[str, dict[str, Any]] = {}
    refused_bundled: dict[str, dict[str, Any]] = {}
    sdk_invalid: dict[str, dict[str, Any]] = {}
    crashes: list[dict[str, str]] = []
    sdk_crashes: list[dict[str, str]] = []
    ours_invalid: list[dict[str, str]] = []
    other_reasons: Counter[str] = Counter()
    changes = Counter[str]()
    t_ours = t_sdk = 0.0
    slowest: list[tuple[float, str]] = []

    def note(table: dict[str, dict[str, Any]], cat: str, rel: str, only: bool) -> None:
        row = table.setdefault(cat, {"schemas": 0, "only_reason": 0, "examples": []})
        row["schemas"] += 1
        row["only_reason"] += only
        if len(row["examples"]) < examples:
            row["examples"].append(rel)

    def note_reasons(table: dict[str, dict[str, Any]], errors: list[Any], rel: str) -> None:
        cats: list[str] = []
        for err in errors:
            cat = category(err.reason, REASONS)
            if cat == "other":
                other_reasons[err.reason[:120]] += 1
            if cat not in cats:
                cats.append(cat)
        for cat in cats:
            note(table, cat, rel, len(cats) == 1)

    for source, path in corpus_files():
        rel = f"{source}/{path.name}"
        doc = json.loads(path.read_text(encoding="utf-8"))
        counts = per_source[source]
        counts["files"] += 1

        # --- ours ------------------------------------------------------------------------
        t0 = time.perf_counter()
        try:
            report = check_schema(doc)
            restore = compile_schema(doc).needs_restore if report.ok else False
        except Exception as exc:
            report = None
            crashes.append({"file": rel, "error": short(exc)})
            counts["crash"] += 1
        elapsed = time.perf_counter() - t0
        t_ours += elapsed
        slowest.append((elapsed, rel))
        if report is not None and report.ok:
            lossy = sum(c.lossy for c in report.changes)
            changes["lossless"] += len(report.changes) - lossy
            changes["lossy"] += lossy
            counts["rewrites" if lossy else "strict"] += 1
            counts["unchanged"] += not report.changes
            counts["needs_restore"] += restore
            try:
                checker.assert_openai_strict(report.schema)
            except Exception as exc:
                ours_invalid.append({"file": rel, "error": short(exc)})
                counts["invalid_output"] += 1
        elif report is not None:
            counts["refused"] += 1
            note_reasons(refused, report.errors, rel)
            # the same schema bundled with the documents its package ships (corpus_registry)
            bundled = None
            if bundle is not None:
                try:
                    base = corpus_registry.corpus_uri(rel)
                    bundled = check_schema(bundle(doc, registry, base_uri=base))
                except Exception as exc:
                    crashes.append({"file": rel, "error": f"bundled: {short(exc)}"})
                    counts["crash"] += 1
            if bundled is not None and bundled.ok:
                counts["usable_bundled"] += 1
                try:
                    checker.assert_openai_strict(bundled.schema)
                except Exception as exc:
                    ours_invalid.append({"file": rel, "error": f"bundled: {short(exc)}"})
                    counts["invalid_output"] += 1
            elif bundled is not None:
                note_reasons(refused_bundled, bundled.errors, rel)

        # --- the SDK's strictifier -------------------------------------------------------
        mine = copy.deepcopy(doc)
        t0 = time.perf_counter()
        try:
            out = _ensure_strict_json_schema(mine, path=(), root=mine)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            t_sdk += time.perf_counter() - t0
            sdk_crashes.append({"file": rel, "error": short(exc)})
            counts["sdk_crash"] += 1
            continue
        t_sdk += time.perf_counter() - t0
        try:
            checker.assert_openai_strict(out)
        except Exception as exc:
            text = str(exc).split(": ", 1)[-1] if type(exc).__name__ == "StrictViolation" else ""
            cat = category(text or short(exc), SDK_REASONS)
            note(sdk_invalid, cat, rel, True)
            counts["sdk_invalid"] += 1
        else:
            counts["sdk_valid"] += 1

    total: Counter[str] = Counter()
    for c in per_source.values():
        total.update(c)
    slowest.sort(reverse=True)

    def by_count(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return dict(sorted(table.items(), key=lambda kv: (-kv[1]["schemas"], kv[0])))

    return {
        "corpus": str(CORPUS.relative_to(ROOT)),
        "compiler": str(Path(openai_structured.__file__).parent),
        "checker_metaschema": "2020-12 (exact)" if exact else "draft-07 on root and $defs",
        "sources": {s: dict(c) for s, c in sorted(per_source.items())},
        "total": dict(total),
        "changes": dict(changes),
        "refused_by_reason": by_count(refused),
        "refused_bundled_by_reason": by_count(refused_bundled),
        "documents": len(registry),
        "unclassified_reasons": dict(other_reasons.most_common()),
        "crashes": crashes,
        "invalid_compiled_output": ours_invalid,
        "sdk_crashes": sdk_crashes,
        "sdk_crashes_by_error": dict(
            Counter(re.sub(r"[:(].*", "", c["error"]) for c in sdk_crashes).most_common()
        ),
        "sdk_invalid_by_reason": by_count(sdk_invalid),
        "seconds": {"ours": round(t_ours, 2), "sdk": round(t_sdk, 2)},
        "slowest_ours": [{"file": f, "seconds": round(s, 3)} for s, f in slowest[:5]],
    }


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.1f}%" if d else "-"


def render(result: dict[str, Any]) -> str:
    cols = [
        ("files", "files"),
        ("strict", "strict"),
        ("rewrites", "lossy"),
        ("refused", "refused"),
        ("crash", "crash"),
        ("sdk_crash", "SDK crash"),
        ("sdk_invalid", "SDK invalid"),
        ("sdk_valid", "SDK valid"),
    ]
    rows = [*result["sources"].items(), ("TOTAL", result["total"])]
    width = max(len(name) for name, _ in rows)
    lines = [
        "ours: strict = compiled, no lossy change; lossy = compiled with a constraint kept as a "
        "hint only",
        "SDK: openai.lib._pydantic._ensure_strict_json_schema, output checked by "
        "tests/schema/schema_checker.py",
        "",
        f"{'source':<{width}}  " + "  ".join(f"{h:>11}" for _, h in cols),
    ]
    for name, c in rows:
        cells = [f"{c.get('files', 0):>11}"]
        for key, _ in cols[1:]:
            n = c.get(key, 0)
            cells.append(f"{n:>5} {pct(n, c['files']):>5}")
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    t = result["total"]
    ch = result["changes"]
    usable = t.get("strict", 0) + t.get("rewrites", 0)
    lines += [
        "",
        f"usable (compiled): {usable}/{t['files']} ({pct(usable, t['files'])}); compiled "
        f"unchanged: {t.get('unchanged', 0)}; needing restore: {t.get('needs_restore', 0)}; "
        f"changes: {ch.get('lossless', 0)} lossless, {ch.get('lossy', 0)} lossy",
        f"compiled output failing the strict checker: {t.get('invalid_output', 0)}",
        "",
        "refused, by reason (a schema may have several; 'only' = its sole reason):",
    ]

    def reasons(table: dict[str, dict[str, Any]]) -> None:
        for cat, row in table.items():
            lines.append(
                f"  {row['schemas']:>5}  only {row['only_reason']:>4}  {cat}   "
                f"e.g. {', '.join(row['examples'])}"
            )

    reasons(result["refused_by_reason"])
    both = usable + t.get("usable_bundled", 0)
    lines += [
        "",
        f"with the documents their packages ship, bundled (schema.bundle, "
        f"{result['documents']} documents, tests/schema/corpus_registry.py): "
        f"{t.get('usable_bundled', 0)} more usable; {both}/{t['files']} ({pct(both, t['files'])})",
        "still refused, by reason:",
    ]
    reasons(result["refused_bundled_by_reason"])
    if result["unclassified_reasons"]:
        lines.append("unclassified reasons:")
        lines += [f"  {n:>5}  {r}" for r, n in result["unclassified_reasons"].items()]
    lines += ["", "SDK output breaking strict mode, by the checker's first complaint:"]
    for cat, row in result["sdk_invalid_by_reason"].items():
        lines.append(f"  {row['schemas']:>5}  {cat}   e.g. {', '.join(row['examples'])}")
    lines += ["", "SDK crashes, by exception:"]
    lines += [f"  {n:>5}  {e}" for e, n in result["sdk_crashes_by_error"].items()]
    for c in result["sdk_crashes"]:
        lines.append(f"         {c['file']}: {c['error']}")
    lines += ["", f"our crashes: {len(result['crashes'])}"]
    lines += [f"  {c['file']}: {c['error']}" for c in result["crashes"]]
    for c in result["invalid_compiled_output"]:
        lines.append(f"  invalid output: {c['file']}: {c['error']}")
    s = result["seconds"]
    slow = ", ".join(f"{x['file']} {x['seconds']}s" for x in result["slowest_ours"][:3])
    lines += [
        "",
        f"compiler: {result['compiler']}; checker meta-schema: {result['checker_metaschema']}",
        f"time: {s.get('total', '?')}s in all; ours {s['ours']}s, SDK {s['sdk']}s; "
        f"slowest (ours): {slow}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--examples", type=int, default=3, help="example files per reason")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="where openai_structured is")
    ap.add_argument("--exact", action="store_true", help="the checker's own meta-schema step")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = measure(args.examples, args.src.resolve(), args.exact)
    result["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))


if __name__ == "__main__":
    main()
