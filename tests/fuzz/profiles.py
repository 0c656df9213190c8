"""Hypothesis profiles of the fuzz and model tests, chosen by ``CONVSTORE_FUZZ_PROFILE``.

``ci`` (the default) is bounded and derandomized, so the suite's run is the same on every machine
and fits its time budget; ``long`` (``make fuzz``) draws at least 200 examples per operation and
model run, at random, and keeps what it finds in the example database for the next run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("CONVSTORE_FUZZ_PROFILE", "ci")


@dataclass(frozen=True)
class Budget:
    """How much each kind of fuzz or model test draws."""

    examples: int
    """Examples per API operation (schemathesis' stateless phase)."""
    scenarios: int
    """API scenarios following the OpenAPI links (the stateful phase)."""
    scenario_steps: int
    """The most calls in one scenario."""
    model_runs: int
    """Runs of the library model."""
    model_steps: int
    """The most steps in one run of the model."""


BUDGETS = {
    "ci": Budget(examples=5, scenarios=6, scenario_steps=20, model_runs=8, model_steps=20),
    "long": Budget(examples=200, scenarios=100, scenario_steps=30, model_runs=100, model_steps=30),
}
if PROFILE not in BUDGETS:
    raise RuntimeError(f"CONVSTORE_FUZZ_PROFILE={PROFILE!r}: use one of {sorted(BUDGETS)}")
BUDGET = BUDGETS[PROFILE]

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
settings.register_profile(
    "convstore-ci", derandomize=True, database=None, print_blob=True, **_COMMON
)
settings.register_profile("convstore-long", print_blob=True, **_COMMON)


def fuzz_settings(**overrides: object) -> settings:
    """The profile's settings (``overrides`` on top)."""
    return settings(settings.get_profile(f"convstore-{PROFILE}"), **overrides)  # type: ignore[arg-type]
