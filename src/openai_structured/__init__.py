"""openai-structured: a prompt and a schema in, a validated Python object (or a stream) out."""

from __future__ import annotations

__version__ = "0.1.0"
