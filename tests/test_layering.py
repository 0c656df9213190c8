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


DRIVER_WORDS = {"dialect", "postgresql", "sqlite", "asyncpg", "aiosqlite", "psycopg", "sqlite3"}
"""What only repositories and db.py may test: which database or driver runs a statement."""


def _driver_mentions(path: Path) -> list[tuple[int, int, str]]:
    """Code (not docstrings) in ``path`` naming a dialect or driver, by position: an attribute
    or name ``dialect``, a string equal to a database or driver name, an import of a driver."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        word = None
        if isinstance(node, ast.Attribute):
            word = node.attr
        elif isinstance(node, ast.Name):
            word = node.id
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            word = node.value.lower()
        elif isinstance(node, ast.Import):
            word = next(
                (w for a in node.names if (w := a.name.split(".")[0]) in DRIVER_WORDS), None
            )
        elif isinstance(node, ast.ImportFrom):
            word = (node.module or "").split(".")[0]
        if word in DRIVER_WORDS:
            found.append((node.lineno, node.col_offset, word))
    return sorted(found)


def test_services_and_the_facade_never_test_a_dialect_or_driver() -> None:
    checked = [SRC / "store.py", *(p for p in _sources() if p.name == "service.py")]
    assert len(checked) > 4
    offenders = [
        f"{p.relative_to(SRC)}:{hit[0]} {hit[2]}" for p in checked for hit in _driver_mentions(p)
    ]
    assert offenders == []


def test_the_driver_check_would_see_an_offender(tmp_path: Path) -> None:
    bad = tmp_path / "service.py"
    bad.write_text(
        '"""Mentions sqlite in a docstring: fine."""\n'
        "import asyncpg\n"
        "def f(conn):\n"
        "    return conn.dialect.name == 'postgresql'\n"
    )
    assert [word for *_, word in _driver_mentions(bad)] == ["asyncpg", "dialect", "postgresql"]
