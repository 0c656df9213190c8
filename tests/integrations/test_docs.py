"""The adapters' code blocks of docs/integrations.md run as the scripts they are, in a fresh
directory, twice (the second run finds what the first stored). The page's ``/v1`` blocks need a
server: tests/docs runs them against one, with every other block of the docs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
OFFLINE = DOC.read_text().partition("## The OpenAI client")[0]
BLOCKS = re.findall(r"^```python\n(.*?)^```", OFFLINE, re.S | re.M)


def test_the_page_has_its_scripts() -> None:
    assert len(BLOCKS) == 6


@pytest.mark.parametrize("n", range(len(BLOCKS)))
def test_block_runs(n: int, tmp_path: Path) -> None:
    script = tmp_path / f"block{n}.py"
    script.write_text(BLOCKS[n])
    for _ in range(2):  # a second run finds the database the first made
        run = subprocess.run(
            [sys.executable, "-W", "error::DeprecationWarning:convstore", str(script)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip()
