"""Every setting has its row in docs/operations.md's configuration tables."""

from __future__ import annotations

from pathlib import Path

from convstore.config import Limits, Settings

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def test_every_setting_is_documented() -> None:
    text = OPERATIONS.read_text()
    names = [n for n in Settings.model_fields if n != "limits"] + list(Limits.model_fields)
    missing = [n for n in names if f"CONVSTORE_{n.upper()}`" not in text]
    assert not missing, missing
