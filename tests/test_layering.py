"""Static checks of the layering rules (STYLE.md 6–7): queries live in repositories only, and
only repositories filter on ``user_id``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import convstore

SRC = Path(convstore.__file__).parent
STATEMENT_BUILDERS = {"select", "insert", "update", "delete", "text", "exists"}
USER_FILTER = re.compile(r"\.user_id\s*==")
ALLOWED_STATEMENTS = {"repository.py", "migrate.py", "models.py"}
"""Repositories build queries; models declare DDL; migrate.py inspects the schema."""
ALLOWED_DIRS = {"migrations"}


def _sources() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if not ALLOWED_DIRS.intersection(p.relative_to(SRC).parts)]


def _statement_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [
                f"{path.name}:{node.lineno} {a.name}"
                for a in node.names
                if a.name in STATEMENT_BUILDERS
            ]
    return found


def test_sql_statements_are_built_only_in_repositories() -> None:
    offenders = [
        hit for p in _sources() if p.name not in ALLOWED_STATEMENTS for hit in _statement_imports(p)
    ]
    assert offenders == []


def test_the_statement_check_would_see_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "service.py"
    bad.write_text("from sqlalchemy import select, func\n")
    assert _statement_imports(bad) == ["service.py:1 select"]


def test_user_scoping_happens_only_in_repositories() -> None:
    offenders = [
        f"{p.relative_to(SRC)}:{n}"
        for p in _sources()
        if p.name != "repository.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if USER_FILTER.search(line)
    ]
    assert offenders == []


def test_every_scoped_repository_takes_the_acting_user() -> None:
    import inspect

    from convstore.conversations.repository import ConversationRepository, MessageRepository
    from convstore.tasks.repository import TaskRepository

    for repo in (ConversationRepository, MessageRepository, TaskRepository):
        assert "user_id" in inspect.signature(repo).parameters, repo.__name__
