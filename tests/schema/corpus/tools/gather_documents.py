"""Copy into ``tests/schema/corpus-documents/`` the package files corpus schemas refer to.

    python tests/schema/corpus/tools/gather_documents.py WORK

``WORK`` is the folder ``gather_corpus.py --download`` filled (``npm/<pkg>/package``,
``pypi/<dist>``). For every corpus schema whose ``$ref``s name other documents, the documents
are looked up, transitively, among the files of the packages gathered (by their ``$id`` and by
their path in the package) and copied under ``<registry>/<package>/<path>``; those already in
the corpus are not copied. ``MANIFEST.json`` lists each with its package, version, path,
licence and SHA-256. Not run by the tests.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

ROOT = Path(__file__).resolve().parents[4]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "schema"), str(Path(__file__).parent)]

import corpus_registry  # noqa: E402
from gather_corpus import NPM, PYPI  # noqa: E402

from openai_structured.schema import bundle, check_schema  # noqa: E402

LICENCES = {
    "@asyncapi/specs": "Apache-2.0",
    "jsonschema-specifications": "MIT",
    "cfn-lint": "MIT-0",
}


def package_files(work: Path) -> dict[str, tuple[str, str, str, Path]]:
    """URI -> (registry, package, path in package, file) for every JSON file gathered."""
    out: dict[str, tuple[str, str, str, Path]] = {}
    roots = [("npm", p, work / "npm" / p.replace("/", "__") / "package") for p in NPM]
    roots += [("pypi", d, work / "pypi" / d) for d in PYPI]
    for registry, package, root in roots:
        if package not in LICENCES or not root.is_dir():
            continue
        for file in sorted(root.rglob("*")):
            if not file.is_file() or file.stat().st_size > 200_000:
                continue
            try:
                doc = json.loads(file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                continue
            rel = file.relative_to(root).as_posix()
            uri = corpus_registry.package_uri(registry, package, rel)
            out.setdefault(uri, (registry, package, rel, file))
            own = doc.get("$id", doc.get("id")) if isinstance(doc, dict) else None
            if isinstance(own, str) and own and not own.startswith("#"):
                out.setdefault(urldefrag(urljoin(uri, own))[0], (registry, package, rel, file))
    return out


def missing_targets(doc: Any, docs: dict[str, Any], base: str | None) -> set[str]:
    report = check_schema(bundle(doc, docs, base_uri=base))
    found = set()
    for error in report.errors:
        m = re.search(r"\$ref '([^']*)' points outside", error.reason)
        if m:
            found.add(m.group(1).split("#")[0])
    return found


def main() -> None:
    work = Path(sys.argv[1])
    available = package_files(work)
    docs = dict(corpus_registry.documents())
    out = corpus_registry.DOCUMENTS
    entries: dict[str, dict[str, Any]] = {}
    changed = True
    while changed:
        changed = False
        for path in sorted(corpus_registry.CORPUS.glob("*/*.json")):
            rel = f"{path.parent.name}/{path.name}"
            base = corpus_registry.corpus_uri(rel)
            doc = json.loads(path.read_text(encoding="utf-8"))
            for target in missing_targets(doc, docs, base):
                absolute = urldefrag(urljoin(base, target) if base else target)[0]
                hit = available.get(absolute) or available.get(target)
                if hit is None:
                    continue
                registry, package, inner, file = hit
                uri = corpus_registry.package_uri(registry, package, inner)
                if uri in docs:
                    continue
                name = f"{registry}/{package}/{inner}"
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, out / name)
                text = json.loads(file.read_text(encoding="utf-8"))
                docs[uri] = text
                canonical = json.dumps(text, sort_keys=True, separators=(",", ":"))
                entries[name] = {
                    "file": name,
                    "registry": registry,
                    "package": package,
                    "version": (NPM if registry == "npm" else PYPI)[package],
                    "path": inner,
                    "license": LICENCES[package],
                    "sha256": hashlib.sha256(canonical.encode()).hexdigest(),
                }
                changed = True
    manifest = {
        "about": "Package files that corpus schemas refer to (see corpus_registry.py).",
        "files": [entries[k] for k in sorted(entries)],
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"{len(entries)} documents")


if __name__ == "__main__":
    main()
