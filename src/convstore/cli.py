"""The ``convstore`` command.

Usage:
    convstore serve [--host H --port P] # the HTTP API on the default database (migrated on start)
                    [--workers N] [--no-access-log]
    convstore chat [--user EMAIL]       # talk to the assistant in the terminal
    convstore mcp --user EMAIL          # the task tools as an MCP server over stdio
    convstore demo                      # migrate the default database and show the library at work
    convstore db upgrade [REV]          # default REV: head
    convstore db downgrade REV          # e.g. base, or -1
    convstore db current
    convstore db check                  # exit 1 when models and migrations disagree
    convstore db grant ROLE [--execute] # the app role's privileges (printed; run with --execute)

Every command reads ``CONVSTORE_DATABASE_URL`` (default: ``sqlite:///convstore.db``) unless
``--database-url`` is given.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from alembic.util.exc import CommandError as AlembicError
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from convstore import migrate
from convstore.config import Settings, get_settings
from convstore.db import create_engine, normalize_url
from convstore.errors import ConvstoreError
from convstore.extras import require

T = TypeVar("T")

app = typer.Typer(
    help="convstore: the storage and API backbone of a chatbot backend.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Schema migrations (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err_console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CONVSTORE_DATABASE_URL",
        show_envvar=True,
        help="Database URL (default: sqlite:///convstore.db).",
    ),
]


def _settings(database_url: str | None) -> Settings:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def _run(coro: Callable[[], Awaitable[T]]) -> T:
    """Run a command; failures print one line and exit 2 (1 is kept for ``db check``)."""
    try:
        return asyncio.run(coro())  # type: ignore[arg-type]
    except ConvstoreError as exc:
        message = exc.message
    except (SQLAlchemyError, AlembicError, OSError, ValueError) as exc:
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


def _with_engine(database_url: str | None, action: Callable[..., Awaitable[T]], *args: str) -> T:
    async def go() -> T:
        engine = create_engine(_settings(database_url), pooled=False)
        try:
            return await action(engine, *args)
        finally:
            await engine.dispose()

    return _run(go)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head"), database_url: DatabaseUrl = None) -> None:
    """Upgrade the schema to REVISION (default: the latest)."""
    _with_engine(database_url, migrate.upgrade, revision)
    at = _with_engine(database_url, migrate.current)
    console.print(f"database at revision [bold]{at}[/bold]")


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help="Target, e.g. base or -1."),
    database_url: DatabaseUrl = None,
) -> None:
    """Downgrade the schema to REVISION (``base`` removes every table and its data)."""
    _with_engine(database_url, migrate.downgrade, revision)
    at = _with_engine(database_url, migrate.current)
    console.print(f"database at revision [bold]{at or 'base'}[/bold]")


@db_app.command("current")
def db_current(database_url: DatabaseUrl = None) -> None:
    """Show the revision the database is at, and the newest one available."""
    at = _with_engine(database_url, migrate.current)
    head = migrate.head_revision()
    state = "up to date" if at == head else "behind: run `convstore db upgrade`"
    console.print(f"current: [bold]{at or 'base'}[/bold]  head: {head}  ({state})")


@db_app.command("check")
def db_check(database_url: DatabaseUrl = None) -> None:
    """Exit 1 when the database is not at head or the models and migrations disagree."""
    problem = _with_engine(database_url, migrate.check)
    if problem:
        err_console.print(f"[red]models and migrations disagree:[/red] {problem}")
        raise typer.Exit(1)
    console.print("models and migrations agree")


@db_app.command("grant")
def db_grant(
    role: str = typer.Argument(..., help="The API's login role (not the schema owner)."),
    schema: Annotated[str, typer.Option(help="Schema of the tables.")] = "public",
    execute: Annotated[
        bool, typer.Option("--execute", help="Run them (as the owner) instead of printing.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """PostgreSQL: the GRANTs that let ROLE use the tables (and those of later migrations)."""
    try:
        statements = migrate.grant_statements(role, schema)
    except ConvstoreError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    if execute:
        _with_engine(database_url, migrate.grant, role, schema)
    for statement in statements:
        typer.echo(f"{statement};")  # plain lines: meant to be piped into psql
    if execute:
        err_console.print(f"granted on schema {schema} to {role}", markup=False)


def _log_to_stderr() -> None:
    """convstore's own log lines, next to uvicorn's and in the same shape."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)-9s [%(name)s] %(message)s"))
    logger = logging.getLogger("convstore")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Worker processes (default CONVSTORE_WORKERS, 1). Above one, rate limits are "
            "per worker unless CONVSTORE_RATE_LIMIT_STORAGE_URL is Redis.",
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="One log line per request (default CONVSTORE_ACCESS_LOG, on).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the HTTP API (docs at /docs) on the configured database, migrating it on start."""
    require("fastapi", "convstore serve")
    import uvicorn

    from convstore.auth.secret import WeakSecret, resolve_secret
    from convstore.http.observe import MULTIPROC_ENV, logging_config
    from convstore.http.server import uvicorn_options

    settings = _settings(database_url)
    normalize_url(
        settings.database_url
    )  # a missing driver's extra is named before the server starts
    workers = workers or settings.workers
    if access_log is not None:  # the application writes the access lines (with the user)
        settings = settings.model_copy(update={"access_log": access_log})
        os.environ["CONVSTORE_ACCESS_LOG"] = str(access_log).lower()
    log_config = logging_config(settings)
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_config": log_config,  # applied by uvicorn here and in every worker
        "log_level": settings.log_level.lower(),
        "access_log": False,
        "proxy_headers": True,
        "server_header": False,  # no "server: uvicorn": the stack is nobody's business
        "date_header": True,
        **uvicorn_options(settings),
    }
    logging.config.dictConfig(log_config)
    application: Any = None
    try:
        if workers == 1:
            from convstore.app import create_app

            application = create_app(settings)
        else:  # this process only supervises the workers: it does not import the app
            resolve_secret(settings)
    except WeakSecret as exc:
        err_console.print(f"[red]refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None
    if application is not None:
        uvicorn.run(application, **options)
        return
    # Each worker is a new process that builds the app from the environment: hand it this
    # command's database, and migrate once here rather than in every worker at once.
    if database_url:
        os.environ["CONVSTORE_DATABASE_URL"] = database_url
    if settings.auto_migrate:
        _run(lambda: _migrate_on_start(settings))
        os.environ["CONVSTORE_AUTO_MIGRATE"] = "false"
    if settings.rate_limit_enabled and settings.rate_limit_storage_url.startswith("memory"):
        logging.getLogger("convstore").warning(
            "%d workers with memory:// rate-limit storage: each worker counts on its own "
            "(set CONVSTORE_RATE_LIMIT_STORAGE_URL to Redis to share the limits)",
            workers,
        )
    # The workers' metrics meet in prometheus-client's multiprocess files: a fresh directory
    # per run (files left by an earlier run would add its counts), unless one is given.
    given = os.environ.get(MULTIPROC_ENV)
    metrics_dir = given or tempfile.mkdtemp(prefix="convstore-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run("convstore.cli:worker_app", factory=True, workers=workers, **options)
    finally:
        if not given:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app() -> Any:
    """The application of one ``serve --workers N`` worker process (uvicorn's factory)."""
    from convstore.app import create_app

    get_settings.cache_clear()  # uvicorn has applied serve's logging configuration here
    return create_app()


async def _migrate_on_start(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await migrate.upgrade_if_behind(engine)
    finally:
        await engine.dispose()


@app.command()
def chat(
    user: Annotated[str, typer.Option("--user", help="Your email (created if new).")] = (
        "me@example.com"
    ),
    conversation: Annotated[str | None, typer.Option(help="Continue this conversation id.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Talk to the assistant in the terminal, against the local store."""
    import uuid

    from convstore.assistant.terminal import run_chat

    conversation_id = None
    if conversation is not None:
        try:
            conversation_id = uuid.UUID(conversation)
        except ValueError:
            err_console.print("[red]error:[/red] --conversation is not a valid id")
            raise typer.Exit(2) from None
    _run(lambda: run_chat(_settings(database_url), console, user, conversation_id))


@app.command("mcp")
def mcp_command(
    user: Annotated[str, typer.Option("--user", help="The email of the user the tools act for.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the task tools over MCP on stdin/stdout (logs go to stderr), acting for one user."""
    from convstore.mcp.server import run_stdio

    _log_to_stderr()
    _run(lambda: run_stdio(_settings(database_url), user))


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Migrate the database, then store a short chat turn and some tasks, and show them."""
    from convstore.demo import run_demo

    _run(lambda: run_demo(_settings(database_url), console))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
