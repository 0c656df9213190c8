"""Static checks of the layering rules: imports run down the layers only, queries
live in repositories only, and only repositories filter on ``user_id``."""

from __future__ import annotations

import ast
import re
from fnmatch import fnmatch
from pathlib import Path

import convstore

SRC = Path(convstore.__file__).parent
STATEMENT_BUILDERS = {"select", "insert", "update", "delete", "text", "exists"}
USER_FILTER = re.compile(r"\.user_id\s*==")
ALLOWED_STATEMENTS = {"repository.py", "migrate.py", "models.py"}
"""Repositories build queries; models declare DDL; migrate.py inspects the schema."""
ALLOWED_DIRS = {"migrations"}


INTERFACES, SERVICES, REPOSITORIES, FOUNDATION = 3, 2, 1, 0
LAYER_NAMES = {
    INTERFACES: "interfaces",
    SERVICES: "services",
    REPOSITORIES: "repositories",
    FOUNDATION: "models/db/kit",
}
LAYERS: list[tuple[str, int]] = [
    # The entry points: the library facade, the application, the CLI, HTTP, MCP, the terminal.
    ("__init__.py", INTERFACES),
    ("store.py", INTERFACES),
    ("app.py", INTERFACES),
    ("cli.py", INTERFACES),
    ("commands/*", INTERFACES),
    ("demo.py", INTERFACES),
    ("command.py", INTERFACES),
    ("*/router.py", INTERFACES),
    ("conversations/hot.py", INTERFACES),
    ("http/*", INTERFACES),
    ("mcp/*", INTERFACES),
    ("compat/*", INTERFACES),
    ("integrations/*", INTERFACES),
    ("web/*", INTERFACES),
    ("assistant/terminal.py", INTERFACES),
    # The rules: services and the flows built on them; they take a connection.
    ("*/service.py", SERVICES),
    ("conversations/retention.py", SERVICES),
    ("auth/passwords.py", SERVICES),
    ("auth/tokens.py", SERVICES),
    ("auth/secret.py", SERVICES),
    ("auth/notifier.py", SERVICES),
    ("assistant/protocol.py", SERVICES),
    ("assistant/executor.py", SERVICES),
    ("assistant/streams.py", SERVICES),
    ("assistant/external.py", SERVICES),
    ("assistant/providers/*", SERVICES),
    ("assistant/builtin/*", SERVICES),
    # Every query.
    ("*/repository.py", REPOSITORIES),
    # What everything stands on.
    ("*/models.py", FOUNDATION),
    ("*/schemas.py", FOUNDATION),
    ("*/__init__.py", FOUNDATION),
    ("assistant/tools.py", FOUNDATION),
    ("items/views.py", FOUNDATION),
    ("kit/*", FOUNDATION),
    ("migrations/*", FOUNDATION),
    ("models.py", FOUNDATION),
    ("db.py", FOUNDATION),
    ("config.py", FOUNDATION),
    ("errors.py", FOUNDATION),
    ("extras.py", FOUNDATION),
    ("migrate.py", FOUNDATION),
]
"""The layer of every module, by its path under ``src/convstore`` (the first pattern that
matches wins; a module no pattern matches fails the test). README's Architecture section draws
this map."""
ONLY_IMPORTED_BY = {"app.py": {"cli.py"}, "cli.py": {"command.py"}}
"""The application is assembled at the top: only the CLI imports it, never http/ or a router."""


def _layer(relative: str) -> int | None:
    return next((layer for pattern, layer in LAYERS if fnmatch(relative, pattern)), None)


def _module_file(module: str, files: set[str]) -> str | None:
    """The file under ``src/convstore`` of ``convstore[.x.y]``, or None when it is not a module
    of the package (a name in a module, or another package)."""
    parts = module.split(".")
    if parts[0] != "convstore":
        return None
    base = "/".join(parts[1:])
    for candidate in (f"{base}.py", f"{base}/__init__.py" if base else "__init__.py"):
        if candidate in files:
            return candidate
    return None


def _imported_files(relative: str, source: str, files: set[str]) -> list[tuple[int, str]]:
    """Every package module ``source`` imports, with its line: module-level, function-level and
    ``TYPE_CHECKING`` imports alike; ``from a import b`` counts ``a.b`` when it is a module."""
    package = ["convstore", *relative.removesuffix(".py").split("/")[:-1]]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            named = [_module_file(alias.name, files) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from a import b``: the module a.b, or a name defined in a.
            named = [
                _module_file(f"{base}.{alias.name}", files) or _module_file(base, files)
                for alias in node.names
            ]
        else:
            continue
        targets = {target for target in named if target is not None}
        found += [(node.lineno, target) for target in sorted(targets)]
    return found


def _upward_imports(sources: dict[str, str]) -> list[str]:
    """``sources`` (path under ``src/convstore`` → text) checked against :data:`LAYERS` and
    :data:`ONLY_IMPORTED_BY`: each offending import as ``file:line → target (why)``."""
    files = set(sources)
    offenders = [f"{path}: in no layer" for path in sorted(files) if _layer(path) is None]
    for path, source in sorted(sources.items()):
        here = _layer(path)
        for line, target in _imported_files(path, source, files):
            there = _layer(target)
            if here is not None and there is not None and there > here:
                why = f"{LAYER_NAMES[here]} importing {LAYER_NAMES[there]}"
                offenders.append(f"{path}:{line} -> {target} ({why})")
            allowed = ONLY_IMPORTED_BY.get(target)
            if allowed is not None and path not in allowed:
                offenders.append(f"{path}:{line} -> {target} (only {sorted(allowed)} may)")
    return offenders


def _package_sources() -> dict[str, str]:
    return {p.relative_to(SRC).as_posix(): p.read_text() for p in SRC.rglob("*.py")}


def test_imports_run_down_the_layers() -> None:
    assert _upward_imports(_package_sources()) == []


def test_the_layer_check_would_see_an_offender() -> None:
    sources = _package_sources()
    sources["conversations/repository.py"] += (
        "\n\ndef _f() -> None:\n    from convstore.conversations import service\n"
    )
    sources["http/errors.py"] += "\nimport convstore.app\n"
    sources["tasks/helpers.py"] = "\n"
    offenders = _upward_imports(sources)
    assert offenders[0] == "tasks/helpers.py: in no layer"
    assert any(
        o.startswith("conversations/repository.py:")
        and o.endswith("-> conversations/service.py (repositories importing services)")
        for o in offenders
    ), offenders
    assert any(o.startswith("http/errors.py:") and "app.py (only" in o for o in offenders)


def test_relative_and_package_imports_resolve() -> None:
    files = {"__init__.py", "store.py", "users/__init__.py", "users/service.py", "db.py"}
    source = (
        "from . import service\nfrom convstore import store, __version__\nimport convstore.db\n"
    )
    assert _imported_files("users/repository.py", source, files) == [
        (1, "users/service.py"),
        (2, "__init__.py"),
        (2, "store.py"),
        (3, "db.py"),
    ]


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
