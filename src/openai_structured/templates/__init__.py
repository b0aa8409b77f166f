"""Prompt templates (SPEC §5): a sandboxed Jinja engine, data filters and file inputs.

Typical use (what ``ostruct run`` does)::

    from pathlib import Path
    from openai_structured.templates import PathPolicy, collect_inputs, render_template

    policy = PathPolicy(allowed_dirs=["/data"])          # cwd is always allowed
    variables = collect_inputs(files=["doc=notes.md"], values=["lang=en"], policy=policy)
    rendered = render_template(Path("prompt.j2"), variables)
    rendered.system_prompt, rendered.text                 # kept apart

Everything raised derives from :class:`TemplateError` (an ``OpenAIClientError``).
"""

from __future__ import annotations

from ._environment import TemplateEnvironment, create_environment
from ._render import RenderedTemplate, render_template
from .errors import (
    BinaryFileError,
    FileTooLargeError,
    TemplateDataError,
    TemplateError,
    TemplateInputError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSecurityError,
    TemplateSyntaxError,
    TemplateUndefinedError,
)
from .files import (
    FileInfo,
    FileInfoList,
    collect_directory,
    collect_file,
    collect_inputs,
    parse_file_spec,
    parse_json_spec,
    parse_value_spec,
    read_stdin,
    stdin_text,
    validate_variable_name,
)
from .front_matter import split_front_matter
from .security import DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_TOTAL_SIZE, PathPolicy

__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_MAX_TOTAL_SIZE",
    "BinaryFileError",
    "FileInfo",
    "FileInfoList",
    "FileTooLargeError",
    "PathPolicy",
    "RenderedTemplate",
    "TemplateDataError",
    "TemplateEnvironment",
    "TemplateError",
    "TemplateInputError",
    "TemplateNotFoundError",
    "TemplateRenderError",
    "TemplateSecurityError",
    "TemplateSyntaxError",
    "TemplateUndefinedError",
    "collect_directory",
    "collect_file",
    "collect_inputs",
    "create_environment",
    "parse_file_spec",
    "parse_json_spec",
    "parse_value_spec",
    "read_stdin",
    "render_template",
    "split_front_matter",
    "stdin_text",
    "validate_variable_name",
]
