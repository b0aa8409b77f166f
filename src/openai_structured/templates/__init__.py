"""Prompt templates (SPEC §5): a sandboxed Jinja engine, data filters and file inputs.

Typical use (what ``ostruct run`` does)::

    from pathlib import Path
    from openai_structured.templates import PathPolicy, collect_inputs, render_template

    policy = PathPolicy(allowed_dirs=["/data"])          # cwd is always allowed
    variables = collect_inputs(files=["doc=notes.md"], values=["lang=en"], policy=policy)
    rendered = render_template(Path("prompt.j2"), variables)
    rendered.system_prompt, rendered.text                 # kept apart

Every render is bounded by :class:`RenderLimits` (a deadline, output size, loop iterations,
integer size; ``render_template(..., limits=RenderLimits(timeout=30))``). Everything raised
derives from :class:`TemplateError` (an ``OpenAIClientError``); going over a limit is a
:class:`TemplateLimitError`.
"""

from __future__ import annotations

from ._environment import TemplateEnvironment, create_environment
from ._limits import DEFAULT_RENDER_LIMITS, MAX_DATA_DEPTH, MAX_DATA_INT_DIGITS, RenderLimits
from ._render import RenderedTemplate, render_template
from .errors import (
    BinaryFileError,
    FileTooLargeError,
    TemplateDataError,
    TemplateError,
    TemplateInputError,
    TemplateLimitError,
    TemplateNotFoundError,
    TemplateRenderError,
    TemplateSecurityError,
    TemplateSyntaxError,
    TemplateTimeoutError,
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
    "DEFAULT_RENDER_LIMITS",
    "MAX_DATA_DEPTH",
    "MAX_DATA_INT_DIGITS",
    "BinaryFileError",
    "FileInfo",
    "FileInfoList",
    "FileTooLargeError",
    "PathPolicy",
    "RenderLimits",
    "RenderedTemplate",
    "TemplateDataError",
    "TemplateEnvironment",
    "TemplateError",
    "TemplateInputError",
    "TemplateLimitError",
    "TemplateNotFoundError",
    "TemplateRenderError",
    "TemplateSecurityError",
    "TemplateSyntaxError",
    "TemplateTimeoutError",
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
