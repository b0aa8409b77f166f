"""``python -m openai_structured.cli``: the same as the ``ostruct`` command."""

from . import main

main()
