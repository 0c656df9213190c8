"""Each adapter without its extra fails at import with one line naming the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
sys.modules[{module!r}] = None  # as if not installed: importlib.util.find_spec gives None
from convstore.extras import MissingExtra
try:
    import convstore.integrations.{adapter}
except MissingExtra as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("adapter", "module", "extra"),
    [("agents", "agents", "agents"), ("langchain", "langchain_core", "langchain")],
)
def test_a_missing_extra_is_named(adapter: str, module: str, extra: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=module, adapter=adapter)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        f"convstore.integrations.{adapter} needs the {extra} extra: "
        f"pip install 'convstore[{extra}]'"
    )
