"""docs/schema.md documents every table, column, named constraint and index of the models.

The page is split into sections at its ``## `` headings; a table is documented by the section
headed with its name, and each of its columns, constraints and indexes must appear there in
backticks. Mentions elsewhere on the page do not count. No database is needed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Table

from convstore.models import Base

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"
TABLES = {table.name: table for table in Base.metadata.sorted_tables}

_HEADING = re.compile(r"^## +(.+?) *$", re.MULTILINE)
_MERMAID = re.compile(r"^```mermaid\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ROW_NAME = re.compile(r"^\| *`([^`]+)` *\|", re.MULTILINE)


def sections(doc: str) -> dict[str, str]:
    """The text under each ``## heading``, up to the next one, keyed by the heading text."""
    matches = list(_HEADING.finditer(doc))
    found: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(doc)
        found[match.group(1).strip("` ")] = doc[match.end() : end]
    return found


def documented_names(table: Table) -> tuple[list[str], list[str]]:
    """The column names, and the names of the constraints and indexes that have one."""
    columns = [column.name for column in table.columns]
    named = [str(c.name) for c in table.constraints if c.name is not None]
    named += [str(i.name) for i in table.indexes if i.name is not None]
    return columns, sorted(named)


def table_problems(doc: str, table: Table) -> list[str]:
    """What docs/schema.md (given as ``doc``) misses or gets wrong about ``table``."""
    section = sections(doc).get(table.name)
    if section is None:
        return [f"no '## {table.name}' section"]
    columns, named = documented_names(table)
    problems = [f"column `{name}` missing" for name in columns if f"`{name}`" not in section]
    problems += [f"`{name}` missing" for name in named if f"`{name}`" not in section]
    known = {*columns, *named}
    problems += [
        f"`{name}` is documented but is not a column, constraint or index of the table"
        for name in _ROW_NAME.findall(section)
        if name not in known
    ]
    return problems


def diagram_problems(doc: str) -> list[str]:
    """Tables the mermaid erDiagram does not declare as entities."""
    blocks = _MERMAID.findall(doc)
    diagrams = [b for b in blocks if b.lstrip().startswith("erDiagram")]
    if not diagrams:
        return ["no ```mermaid erDiagram block"]
    diagram = "\n".join(diagrams)
    return [
        f"table {name} is not an entity of the diagram"
        for name in TABLES
        if re.search(rf"^\s*{re.escape(name)}\s*\{{", diagram, re.MULTILINE) is None
    ]


@pytest.fixture(scope="module")
def doc() -> str:
    return SCHEMA_DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("table_name", sorted(TABLES))
def test_every_column_constraint_and_index_is_documented(doc: str, table_name: str) -> None:
    assert table_problems(doc, TABLES[table_name]) == []


def test_the_diagram_names_every_table(doc: str) -> None:
    assert diagram_problems(doc) == []


class TestTheCheckItself:
    """The helpers catch what they are meant to catch, on edited copies of the page."""

    def test_a_removed_column_is_reported(self, doc: str, tmp_path: Path) -> None:
        section = sections(doc)["messages"]
        edited = doc.replace(section, section.replace("`tool_call_id`", "tool_call_id"))
        copy = tmp_path / "schema.md"
        copy.write_text(edited, encoding="utf-8")
        problems = table_problems(copy.read_text(encoding="utf-8"), TABLES["messages"])
        assert "column `tool_call_id` missing" in problems

    def test_a_column_named_only_in_another_section_is_reported(self, doc: str) -> None:
        section = sections(doc)["tasks"]
        edited = doc.replace(section, section.replace("`due_at`", "due_at"))
        edited = edited.replace("\n## users\n", "\n## users\n\nNot `due_at`.\n")
        assert "`due_at`" in edited
        assert "column `due_at` missing" in table_problems(edited, TABLES["tasks"])

    def test_a_removed_index_or_constraint_is_reported(self, doc: str) -> None:
        edited = doc.replace("`ix_conversations_user_id_recent`", "the recent index")
        edited = edited.replace("`ck_conversations_messages_count`", "the check")
        problems = table_problems(edited, TABLES["conversations"])
        assert "`ix_conversations_user_id_recent` missing" in problems
        assert "`ck_conversations_messages_count` missing" in problems

    def test_a_missing_section_is_reported(self, doc: str) -> None:
        edited = doc.replace("\n## refresh_tokens\n", "\n## Refresh tokens\n")
        assert table_problems(edited, TABLES["refresh_tokens"]) == [
            "no '## refresh_tokens' section"
        ]

    def test_a_stale_column_row_is_reported(self, doc: str) -> None:
        edited = doc.replace("\n## users\n", "\n## users\n\n| `nickname` | `TEXT` |\n")
        assert table_problems(edited, TABLES["users"]) == [
            "`nickname` is documented but is not a column, constraint or index of the table"
        ]

    def test_a_table_missing_from_the_diagram_is_reported(self, doc: str) -> None:
        edited = doc.replace("    tasks {", "    todo {")
        assert "table tasks is not an entity of the diagram" in diagram_problems(edited)
