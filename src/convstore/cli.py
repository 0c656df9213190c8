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
    convstore api-keys create --email E --name N [--expires-in-days D]
                                        # a user's new API key, printed once (only it, on stdout)
    convstore api-keys list --email E   # the user's keys (never the secrets)
    convstore api-keys revoke KEY_ID --email E

Every command reads ``CONVSTORE_DATABASE_URL`` (default: ``sqlite:///convstore.db``) unless
``--database-url`` is given.
"""

from __future__ import annotations

import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from convstore import __version__, migrate
from convstore.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from convstore.apikeys.service import api_key as api_key_service
from convstore.commands import common, failures
from convstore.commands import purge as purge_commands
from convstore.commands import users as users_commands
from convstore.config import Settings, get_settings
from convstore.db import create_engine, normalize_url
from convstore.errors import ConvstoreError, PermissionDenied
from convstore.extras import require
from convstore.kit.types import utc_now
from convstore.kit.validation import parse
from convstore.store import Store, as_uuid
from convstore.store import open as open_store
from convstore.users.schemas import UserRead

T = TypeVar("T")

app = typer.Typer(
    help="convstore: the storage and API backbone of a chatbot backend.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no markup leftovers, no boxes in a pipe
    pretty_exceptions_enable=False,  # failures are one line (main), never a rich traceback
)
db_app = typer.Typer(
    help="Schema migrations (Alembic).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")
api_keys_app = typer.Typer(help="API keys: how a user's programs sign in.", no_args_is_help=True)
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(users_commands.app, name="users")
app.command("purge")(purge_commands.purge)
console = common.console
err_console = common.err_console
DatabaseUrl = common.DatabaseUrl
_fail = common.fail
_settings = common.settings_for
_run = common.run


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convstore {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """convstore: the storage and API backbone of a chatbot backend."""


def _with_engine(database_url: str | None, action: Callable[..., Awaitable[T]], *args: str) -> T:
    async def go() -> T:
        engine = create_engine(_settings(database_url), pooled=False)
        try:
            return await action(engine, *args)
        finally:
            await engine.dispose()

    return _run(go, database_url)


# "-1" and "+1" are relative revisions, not options.
_REVISION_ARGS = {"ignore_unknown_options": True}


@db_app.command("upgrade", context_settings=_REVISION_ARGS)
def db_upgrade(revision: str = typer.Argument("head"), database_url: DatabaseUrl = None) -> None:
    """Upgrade the schema to REVISION (default: the latest)."""
    _with_engine(database_url, migrate.upgrade, revision)
    at = _with_engine(database_url, migrate.current)
    console.print(f"database at revision [bold]{at}[/bold]")


@db_app.command("downgrade", context_settings=_REVISION_ARGS)
def db_downgrade(
    revision: str = typer.Argument(..., help="Target, e.g. base or -1."),
    database_url: DatabaseUrl = None,
) -> None:
    """Downgrade the schema to REVISION (base removes every table and its data)."""
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
        raise _fail(exc.message) from None
    if execute:
        _with_engine(database_url, migrate.grant, role, schema)
    for statement in statements:
        typer.echo(f"{statement};")  # plain lines: meant to be piped into psql
    if execute:
        err_console.print(f"granted on schema {schema} to {role}", markup=False)


Email = Annotated[str, typer.Option("--email", help="The email of the key's owner.")]


async def _key_owner(store: Store, email: str) -> UserRead:
    """The active user with ``email``.

    Raises:
        NotFound: no such user.
        PermissionDenied: the account is disabled.
    """
    user = await store.users.get_by_email(email)
    if not user.is_active:
        raise PermissionDenied(f"user {user.email} is deactivated")
    return user


@api_keys_app.command("create")
def api_keys_create(
    email: Email,
    name: Annotated[str, typer.Option("--name", help="What the key is for (1-100 characters).")],
    expires_in_days: Annotated[
        int | None,
        typer.Option("--expires-in-days", min=1, max=36_500, help="Default: never expires."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key and print it once: only the key goes to stdout, so it can be captured
    (``KEY=$(convstore api-keys create …)``); the rest goes to stderr."""
    settings = _settings(database_url)

    async def go() -> ApiKeyCreated:
        expires = utc_now() + timedelta(days=expires_in_days) if expires_in_days else None
        data = parse(ApiKeyCreate, {"name": name, "expires_at": expires})
        async with open_store(settings=settings) as store:
            user = await _key_owner(store, email)
            async with store.writing(user.id) as conn:
                return await api_key_service.create(
                    conn, user.id, data, max_keys=settings.api_keys_per_user
                )

    created = _run(go)
    typer.echo(created.key)
    until = f", expires {created.expires_at:%Y-%m-%d %H:%M} UTC" if created.expires_at else ""
    err_console.print(
        f"created API key {created.id} ({created.prefix}…){until}; it is not shown again"
    )


@api_keys_app.command("list")
def api_keys_list(email: Email, database_url: DatabaseUrl = None) -> None:
    """List a user's API keys, oldest first (never the keys themselves)."""
    settings = _settings(database_url)

    async def go() -> list[ApiKeyRead]:
        keys: list[ApiKeyRead] = []
        cursor: str | None = None
        async with open_store(settings=settings) as store:
            user = await store.users.get_by_email(email)
            async with store.reading(user.id) as conn:
                while True:
                    page = await api_key_service.list(conn, user.id, limit=100, cursor=cursor)
                    keys += page.items
                    if not page.has_more:
                        return keys
                    cursor = page.next_cursor

    keys = _run(go)
    table = Table(box=None)
    # The id is what `revoke` takes: never cut or wrapped, whatever the terminal's width.
    table.add_column("id", no_wrap=True, min_width=36)
    for heading in ("name", "prefix", "created", "expires", "last used"):
        table.add_column(heading)
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.prefix,
            _when(key.created_at),
            _when(key.expires_at),
            _when(key.last_used_at),
        )
    # Piped or captured, the table keeps its full width (Rich would assume 80 columns).
    out = console if console.is_terminal else Console(width=160)
    out.print(table if keys else "no API keys")


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at is not None else "-"


@api_keys_app.command("revoke")
def api_keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from `api-keys list`).")],
    email: Email,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: the next request made with it is refused."""
    settings = _settings(database_url)

    async def go() -> None:
        target = as_uuid(key_id, "key_id")
        async with open_store(settings=settings) as store:
            user = await store.users.get_by_email(email)
            async with store.writing(user.id) as conn:
                await api_key_service.revoke(conn, user.id, target)

    _run(go)
    err_console.print(f"revoked API key {key_id}")


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
    host = host or settings.host
    port = port or settings.port
    if failures.port_in_use(host, port):  # before migrating, not after "startup complete"
        raise _fail(f"port {port} is in use: set CONVSTORE_PORT or --port")
    _run(lambda: _reach_database(settings), settings.database_url)
    if problem := failures.provider_problem(settings):
        raise _fail(problem)
    if access_log is not None:  # the application writes the access lines (with the user)
        settings = settings.model_copy(update={"access_log": access_log})
        os.environ["CONVSTORE_ACCESS_LOG"] = str(access_log).lower()
    log_config = logging_config(settings)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
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
        raise _fail(f"refusing to start: {exc}") from None
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


async def _reach_database(settings: Settings) -> None:
    """Connect once, so that an unreachable or missing database is one line, not a traceback
    from the server's startup."""
    engine = create_engine(settings, pooled=False)
    try:
        async with engine.connect():
            pass
    finally:
        await engine.dispose()


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
            raise _fail("--conversation is not a valid id") from None
    if problem := failures.provider_problem(_settings(database_url)):
        raise _fail(problem)
    _run(lambda: run_chat(_settings(database_url), console, user, conversation_id), database_url)


@app.command("mcp")
def mcp_command(
    user: Annotated[str, typer.Option("--user", help="The email of the user the tools act for.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the task tools over MCP on stdin/stdout (logs go to stderr), acting for one user."""
    from convstore.mcp.server import run_stdio

    _log_to_stderr()
    _run(lambda: run_stdio(_settings(database_url), user), database_url)


@app.command()
def demo(database_url: DatabaseUrl = None) -> None:
    """Migrate the database, then store a short chat turn and some tasks, and show them."""
    from convstore.demo import run_demo

    _run(lambda: run_demo(_settings(database_url), console), database_url)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except ValidationError as exc:  # a setting read outside a command's own error handling
        print(f"error: {failures.setting_problems(exc)}", file=sys.stderr)
        sys.exit(failures.EXIT_FAILURE)
