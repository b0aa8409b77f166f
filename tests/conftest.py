"""Suite-wide settings.

Property tests run derandomized by default so that a CI run is reproducible: the same examples
every time. To hunt for new counterexamples, run with ``HYPOTHESIS_PROFILE=explore`` (random
examples, more of them); what it finds becomes a fixed regression test.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
