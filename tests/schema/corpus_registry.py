"""The documents a corpus schema may refer to, as its package ships them, by URI.

Many published schemas are split over several files (AsyncAPI bindings refer to the spec's
``definitions/``, SchemaStore schemas to ``base.json``, meta-schemas to their vocabularies).
Nothing is fetched for a ``$ref``; a user bundles the files they have with
``openai_structured.schema.bundle``. This module gives the coverage benchmark and the tests
the same files: every corpus file under the URI of its place in its package
(``file:///npm/@asyncapi/specs/bindings/kafka/0.5.0/operation.json``; SchemaStore files
under ``https://json.schemastore.org/<name>``) and by its own ``$id``, plus the documents in
``corpus-documents/`` (files of the same packages that only other schemas refer to; not
counted as corpus schemas; listed in its ``MANIFEST.json``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "corpus"
DOCUMENTS = CORPUS.parent / "corpus-documents"


def package_uri(registry: str, package: str, path: str) -> str:
    """Where a file of a package lives, as a URI relative references resolve against."""
    return f"file:///{registry}/{package}/{path}"


@lru_cache(maxsize=1)
def _manifest() -> dict[str, dict[str, Any]]:
    entries = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))["files"]
    return {e["file"]: e for e in entries}


def corpus_uri(rel: str) -> str | None:
    """The URI of corpus file ``rel`` (``source/name.json``); None for split-out parts."""
    if rel.startswith("schemastore/"):
        return "https://json.schemastore.org/" + rel.split("/", 1)[1]
    entry = _manifest().get(rel)
    if entry is None or entry["transform"] != "none":
        return None
    return package_uri(entry["registry"], entry["package"], entry["path"])


@lru_cache(maxsize=1)
def documents() -> dict[str, Any]:
    """URI -> schema for every corpus file and every file in ``corpus-documents/``."""
    out: dict[str, Any] = {}
    for path in sorted(CORPUS.glob("*/*.json")):
        uri = corpus_uri(f"{path.parent.name}/{path.name}")
        if uri is not None:
            out[uri] = json.loads(path.read_text(encoding="utf-8"))
    listed = DOCUMENTS / "MANIFEST.json"
    if listed.exists():
        for entry in json.loads(listed.read_text(encoding="utf-8"))["files"]:
            uri = package_uri(entry["registry"], entry["package"], entry["path"])
            out[uri] = json.loads((DOCUMENTS / entry["file"]).read_text(encoding="utf-8"))
    return out
