"""Shared test configuration.

Hypothesis runs derandomized under CI (CI=true) so a red run is reproducible;
locally the `dev` profile explores more.

The simulator runs strict in tests: every message is round-tripped through
the codec as it is sent, so a message that could not cross a real wire (to a
process or a container) fails here, not only on the real backends.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from chapters import get_stage
from checks.harness.contract import use_stages

os.environ.setdefault("D11_SIM_STRICT", "1")
use_stages(get_stage)  # what `d11` does at its top: the harness runs the chapters' stages

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=50,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
