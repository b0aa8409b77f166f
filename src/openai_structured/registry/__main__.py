"""``python -m openai_structured.registry``: print the models table used in docs/models.md."""

from ._doc import render_models_table

print(render_models_table(), end="")
