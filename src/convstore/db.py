"""Engines and the database dialect specifics.

convstore picks its own async driver: ``sqlite://`` runs on aiosqlite, ``postgresql://`` on
asyncpg. Every SQLite connection gets foreign keys on, WAL, a busy timeout and explicit
``BEGIN`` handling (``BEGIN IMMEDIATE`` for writes), so concurrent writers queue instead of
failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar, cast

import anyio
import orjson
from sqlalchemy import JSON, Uuid, event
from sqlalchemy.engine import URL, Connection, ExceptionContext, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    EmulatedDBAPIException,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, PoolResetState
from sqlalchemy.util import await_

from convstore.config import Settings
from convstore.errors import (
    Conflict,
    ConvstoreError,
    DatabaseTimeout,
    DatabaseUnavailable,
    InvalidInput,
    NotFound,
)
from convstore.extras import require
from convstore.kit.turns import Turns, to_completion
from convstore.kit.types import DateTimeUTC, sqlite_timestamp, sqlite_timestamp_text

T = TypeVar("T")

WRITE_OPTION = "convstore_write"
"""Execution option marking a connection that will write (SQLite: ``BEGIN IMMEDIATE``)."""
READ_OPTION = "convstore_read"
"""Execution option marking a read-only connection: SQLite runs its statements without an
explicit ``BEGIN`` (each one is its own read transaction)."""
GROUP_OPTION = "convstore_group"
"""Execution option of ``write_statement`` connections not under row-level security: the
:class:`Grouping` their atomic writes are grouped through (:func:`grouping_of`)."""
GROUP_LIMIT = 64
"""At most this many writes share one commit (see :class:`Grouping`)."""

TENANT_SETTING = "convstore.user_id"
"""The transaction-local setting the row-level security policies compare ``user_id`` with."""
TOKEN_SETTING = "convstore.token_hash"
"""The transaction-local setting that opens (for reading) the one token row with that hash."""

_BYPASSES_RLS = (
    "SELECT rolsuper OR rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = current_user"
)
_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_SYNC_DRIVERS = {"pysqlite", "psycopg2", "psycopg2cffi", "pg8000", "pygresql"}


UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)
"""Failures of the connection, not of the statement: worth retrying."""
TIMEOUTS = frozenset({"57014", "55P03", "25P03"})
"""SQLSTATEs of a statement or lock wait cut short by the server's timeouts: query_canceled
(``statement_timeout``), lock_not_available (``lock_timeout``) and
idle_in_transaction_session_timeout. The transaction is rolled back; a retry may succeed."""
CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
"""SQLSTATEs of a server that is going away or not taking connections: admin_shutdown,
crash_shutdown, cannot_connect_now (starting or shutting down) and too_many_connections; with
class 08 (connection exceptions) they are failures of the connection, not of the statement."""

FOREIGN_KEY, UNIQUE = "foreign_key", "unique"
_VIOLATIONS: dict[str | int, str] = {
    "23503": FOREIGN_KEY,
    "23505": UNIQUE,
    sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY: FOREIGN_KEY,
    sqlite3.SQLITE_CONSTRAINT_UNIQUE: UNIQUE,
    sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY: UNIQUE,
}
"""Integrity violations by SQLSTATE (PostgreSQL) or extended result code (SQLite)."""
_ITEM_TAKEN = "an item with this id is already in the conversation"
_KEY_TAKEN = "another live conversation of this user has this key"
CONSTRAINT_ERRORS: dict[str, tuple[type[ConvstoreError], str]] = {
    "uq_users_email": (Conflict, "a user with this email already exists"),
    "uq_users_auth_provider_auth_subject": (Conflict, "a user with this identity already exists"),
    "uq_messages_conversation_id_tool_call_id": (
        Conflict,
        "a tool message already answers this tool_call_id",
    ),
    "ix_messages_conversation_id_item_id": (Conflict, _ITEM_TAKEN),
    "uq_messages_conversation_id_item_id": (Conflict, _ITEM_TAKEN),
    "ix_conversations_user_id_key": (Conflict, _KEY_TAKEN),
    "uq_conversations_user_id_key": (Conflict, _KEY_TAKEN),
    "fk_messages_conversation_id_user_id_conversations": (NotFound, "conversation not found"),
    "fk_messages_parent_id_messages": (NotFound, "message not found"),
    "fk_stream_frames_message_id_messages": (NotFound, "message not found"),
}
"""The error of a violated constraint, by the name ``kit/base.py``'s naming convention gives
it (a unique index by its own name on PostgreSQL, by its columns on SQLite); a foreign key to
``users`` (``fk_<table>_user_id_users``) is "user not found"."""
_SQLITE_UNIQUE = re.compile(r"^UNIQUE constraint failed: (\w+)\.\w+(?:, \1\.\w+)*$")


def violated_constraint(error: IntegrityError) -> tuple[str | None, str | None]:
    """The kind (:data:`FOREIGN_KEY`, :data:`UNIQUE` or None for any other) and the name of
    the constraint ``error`` violated, the name None where the database does not give one.

    PostgreSQL's drivers give the name (asyncpg ``constraint_name``, psycopg
    ``diag.constraint_name``). SQLite names a CHECK constraint, a UNIQUE one only by its
    columns (``UNIQUE constraint failed: t.a, t.b``, whose name the naming convention gives:
    ``uq_t_a_b``), and a foreign key not at all.
    """
    orig: Any = error.orig
    driver = orig.driver_exception if isinstance(orig, EmulatedDBAPIException) else orig
    code = getattr(driver, "sqlstate", None) or getattr(driver, "sqlite_errorcode", None)
    kind = None if code is None else _VIOLATIONS.get(code)
    name = getattr(driver, "constraint_name", None) or getattr(
        getattr(driver, "diag", None), "constraint_name", None
    )
    if name is None and isinstance(driver, sqlite3.IntegrityError) and kind == UNIQUE:
        text = str(driver)
        if _SQLITE_UNIQUE.match(text):
            columns = text.split(": ", 1)[1].split(", ")
            table = columns[0].split(".")[0]
            name = "_".join(["uq", table, *(column.split(".")[1] for column in columns)])
    return kind, name


def integrity_error(kind: str | None, name: str | None) -> ConvstoreError:
    """The convstore error of a violated constraint (see :data:`CONSTRAINT_ERRORS`)."""
    if name in CONSTRAINT_ERRORS:
        cls, message = CONSTRAINT_ERRORS[name]
        return cls(message)
    if kind == FOREIGN_KEY:
        return NotFound(
            "user not found" if (name or "").endswith("_user_id_users") else "not found"
        )
    return Conflict("the write conflicts with an existing row")


def translate(exc: BaseException) -> BaseException:
    """The convstore error of a database failure: a violated constraint its domain error, a
    server timeout ``DatabaseTimeout``, a lost connection ``DatabaseUnavailable``; anything
    else (a bug) as it is."""
    if isinstance(exc, IntegrityError):
        return integrity_error(*violated_constraint(exc))
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if state in TIMEOUTS:
        return DatabaseTimeout("the database did not answer in time; try again")
    if state == "42501" and "row-level security" in str(getattr(exc, "orig", "")):
        # A write the policies refuse names another user's row: as missing as any other.
        return NotFound("not found")
    if (
        isinstance(exc, UNAVAILABLE)
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
        or (isinstance(state, str) and (state in CONNECTION_STATES or state.startswith("08")))
    ):
        return DatabaseUnavailable("the database is unavailable; try again")
    return exc


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Database failures inside raised as convstore errors (see :func:`translate`)."""
    try:
        yield
    except (DBAPIError, *UNAVAILABLE) as exc:
        error = translate(exc)
        if error is exc:
            raise
        raise error from exc


def normalize_url(url: str | URL) -> URL:
    """Turn a plain or driver-qualified database URL into the async URL convstore runs on.

    ``sqlite:///x.db`` and ``sqlite+pysqlite:///x.db`` become ``sqlite+aiosqlite:///x.db``;
    ``postgres://``, ``postgresql://`` and sync drivers such as ``+psycopg2`` become
    ``postgresql+asyncpg://``. ``postgresql+psycopg://`` is kept when psycopg is installed.

    Raises:
        InvalidInput: the URL cannot be parsed or names a database convstore does not support.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError as exc:
        raise InvalidInput(f"not a database URL: {exc}", field="database_url") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in _ASYNC_DRIVERS:
        raise InvalidInput(
            f"unsupported database {backend!r}: use sqlite:// or postgresql://",
            field="database_url",
        )
    driver = parsed.get_driver_name() if "+" in parsed.drivername else ""
    if driver == "psycopg" and importlib.util.find_spec("psycopg") is not None:
        return parsed.set(drivername="postgresql+psycopg")
    if driver and driver not in _SYNC_DRIVERS and driver != _ASYNC_DRIVERS[backend]:
        raise InvalidInput(f"unsupported driver {driver!r}", field="database_url")
    parsed = parsed.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")
    if backend == "postgresql":
        require("asyncpg", "a postgresql:// database")
    if backend == "postgresql" and "sslmode" in parsed.query:
        # libpq spells it sslmode; asyncpg takes the same values as ssl.
        query = dict(parsed.query)
        query["ssl"] = query.pop("sslmode")
        parsed = parsed.set(query=query)
    return parsed


def json_loads(text: str | bytes) -> Any:
    """A stored JSON document as Python values: orjson (several times faster than ``json``),
    falling back to ``json`` for what orjson refuses but a JSON column may hold (integers
    beyond 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def json_dumps(value: Any) -> str:
    """JSON text for a JSON column: orjson, falling back to ``json`` for integers beyond 64
    bits (the only value orjson refuses that ``json`` writes; non-finite numbers never get this
    far, see ``kit/validation.py``)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def is_sqlite(url: URL) -> bool:
    """Whether ``url`` points at SQLite."""
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file::memory"):
        return None
    return Path(url.database)


def create_engine(
    settings: Settings, *, url: str | URL | None = None, pooled: bool = True
) -> AsyncEngine:
    """Build the process's engine for ``url`` (default: ``settings.database_url``).

    Args:
        settings: pool sizes, timeouts and SQLite pragmas come from here.
        url: overrides ``settings.database_url``.
        pooled: False gives a NullPool engine (one connection per use: migrations, CLI).
    """
    target = normalize_url(url if url is not None else settings.database_url)
    kwargs: dict[str, Any] = {
        "echo": settings.db_echo,
        "json_serializer": json_dumps,
        "json_deserializer": json_loads,
    }
    if not pooled:
        kwargs["poolclass"] = NullPool
    if is_sqlite(target):
        path = sqlite_path(target)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if pooled and path is not None:  # in-memory databases live on one shared connection
            kwargs.update(pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
            kwargs.update(pool_timeout=settings.db_pool_timeout, pool_pre_ping=False)
        # Reset on return only what needs it (see _install_sqlite_hooks): a rollback is a hop
        # to the driver's thread, and a read has no transaction to roll back.
        kwargs["pool_reset_on_return"] = None
        # Hot reads run on the event loop's thread (sqlite_read), their unit holding the
        # connection alone. Not for an in-memory database: its units share one connection,
        # whose thread may be running another unit's statement meanwhile.
        if path is not None:
            kwargs["connect_args"] = {"check_same_thread": False}
        engine = create_async_engine(target, **kwargs)
        _install_sqlite_hooks(engine, settings, inline_reads=path is not None)
        return engine
    if timeouts := _timeouts(settings):
        if target.get_driver_name() == "asyncpg":  # sent with the startup packet: no round trip
            kwargs["connect_args"] = {"server_settings": timeouts}
        else:
            options = " ".join(f"-c {name}={value}" for name, value in timeouts.items())
            kwargs["connect_args"] = {"options": options}
    if pooled:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
            pool_pre_ping=settings.db_pool_pre_ping,
        )
    engine = create_async_engine(target, **kwargs)
    if engine.dialect.driver == "asyncpg":
        _install_asyncpg_ping(engine)
        _install_asyncpg_jsonb_text(engine)
    return engine


def _install_asyncpg_jsonb_text(engine: AsyncEngine) -> None:
    """``jsonb`` in asyncpg's text format, decoded by :func:`json_loads` straight from the
    driver's string; the encoder passes through the JSON text SQLAlchemy's bind processor
    made. Why: docs/performance.md (third round)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        driver = dbapi_connection.driver_connection
        await_(
            driver.set_type_codec(
                "jsonb", encoder=str, decoder=json_loads, schema="pg_catalog", format="text"
            )
        )


def _install_asyncpg_ping(engine: AsyncEngine) -> None:
    """Pre-ping without a round trip: the driver says whether its socket is still open (why:
    docs/performance.md). A failed ping invalidates the pool as before; a connection that
    breaks without a close fails its statement with ``DatabaseUnavailable`` (retryable)."""

    def do_ping(dbapi_connection: Any) -> bool:
        return not dbapi_connection.driver_connection.is_closed()

    setattr(engine.sync_engine.dialect, "do_ping", do_ping)  # noqa: B010 - one engine only


def _timeouts(settings: Settings) -> dict[str, str]:
    """The PostgreSQL timeouts every connection starts with (a 0 setting is left unset)."""
    values = {
        "statement_timeout": settings.db_statement_timeout_ms,
        "lock_timeout": settings.db_lock_timeout_ms,
        "idle_in_transaction_session_timeout": settings.db_idle_in_transaction_timeout_ms,
    }
    return {name: str(ms) for name, ms in values.items() if ms > 0}


def _install_sqlite_hooks(engine: AsyncEngine, settings: Settings, *, inline_reads: bool) -> None:
    """Pragmas on every new connection, and our own BEGIN (the driver's is turned off)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's implicit transactions would defer BEGIN past our pragmas and make
        # SAVEPOINT unusable; we issue BEGIN ourselves in the "begin" hook below.
        dbapi_connection.isolation_level = None
        driver = dbapi_connection.driver_connection
        setattr(driver, _BUSY_TIMEOUT, settings.sqlite_busy_timeout_ms)
        setattr(driver, _INLINE_READS, inline_reads)
        if inline_reads:
            _wait_on_the_thread(driver)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(settings.sqlite_busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "handle_error")
    def _keep_when_cancelled(context: ExceptionContext) -> None:
        # A cancellation (a client gone, a timeout) is not a broken connection. SQLAlchemy
        # would terminate the connection, and aiosqlite's close then races its own thread: the
        # sqlite3 connection could stay open in its transaction, holding the write lock for
        # good. Kept, the statement ends on the thread and Database._unit's rollback, queued
        # behind it, ends the transaction.
        if context.is_disconnect and _is_cancellation(context.original_exception):
            context.is_disconnect = False

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
        # Roll back only a transaction the driver says is open (why: docs/performance.md).
        if state.asyncio_safe and not state.terminate_only and not state.transaction_was_reset:
            if dbapi_connection.driver_connection.in_transaction:
                dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that later writes cannot wait for the lock (SQLite answers
        # "database is locked" at once to avoid deadlock); writers take the lock up front.
        options = conn.get_execution_options()
        if options.get(READ_OPTION, False):
            return  # reads run in the driver's autocommit mode: no BEGIN/COMMIT round trips
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE_OPTION, False) else "BEGIN")


def _is_cancellation(error: BaseException) -> bool:
    """Whether ``error`` ended an ``await`` rather than a statement: a cancellation, a
    timeout, or an exit (``KeyboardInterrupt``)."""
    return isinstance(error, asyncio.CancelledError | TimeoutError) or not isinstance(
        error, Exception
    )


class Database:
    """One engine plus the transaction boundaries every entry point uses.

    On SQLite, writers of this process also queue on an asyncio lock: the database admits one
    writer at a time, and waiting on a lock is cheaper than polling ``busy_timeout``. The
    one-hop writes of ``write_statement`` units that queue meanwhile are committed together
    (:class:`Grouping`).

    On PostgreSQL, a transaction opened for a user starts with
    ``set_config('convstore.user_id', id, true)``: the row-level security policies see only that
    user's rows, and the setting ends with the transaction. Roles that bypass row-level security
    (superusers, ``BYPASSRLS``) skip that statement and keep the autocommit reads and one-statement
    writes; whether this engine's role is one of them is asked once, on first use.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Group commit for write_statement units (Grouping): on SQLite under the write lock;
        # on PostgreSQL per conversation, on autocommit connections (not under row-level
        # security, whose units are transactions).
        self.grouping = Grouping(Turns(GROUP_LIMIT), self._write_lock or contextlib.nullcontext())
        grouped = {GROUP_OPTION: self.grouping}
        self._grouped = (
            engine.execution_options(**{READ_OPTION: True}, **grouped)
            if self._write_lock is not None
            else None
        )
        # SQLite: at most the pool's size of write_statement units hold a connection at once
        # (the others wait for a slot, as they waited for the write lock before group
        # commit): beyond it, each would open an overflow connection, with its own thread,
        # only to wait for a group (docs/performance.md, sixth round).
        size = getattr(engine.pool, "size", None)
        self._statement_slots: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Semaphore(size())
            if self._write_lock is not None and size
            else contextlib.nullcontext()
        )
        # Reads need no transaction: PostgreSQL's READ COMMITTED gives each statement its own
        # snapshot anyway, and SQLite wraps each statement in its own read transaction. Skipping
        # BEGIN/ROLLBACK saves two round trips per read (docs/performance.md).
        self._autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else None
        )
        self._reader = self._autocommit or engine.execution_options(**{READ_OPTION: True})
        self._autocommit_grouped = (
            self._autocommit.execution_options(**grouped) if self._autocommit else None
        )
        self._row_security: bool | None = None if self.dialect == "postgresql" else False
        marks = "$1, $2" if engine.dialect.paramstyle == "numeric_dollar" else "%s, %s"
        self._set_local_sql = f"SELECT set_config({marks}, true)"  # asyncpg, else psycopg

    async def row_security(self, conn: AsyncConnection) -> bool:
        """Whether row-level security applies to this engine's role (asked on first use)."""
        if self._row_security is None:
            self._row_security = not (await conn.exec_driver_sql(_BYPASSES_RLS)).scalar()
        return self._row_security

    async def act_as(
        self,
        conn: AsyncConnection,
        *,
        user_id: uuid.UUID | None = None,
        token_hash: str | None = None,
    ) -> None:
        """Name who the transaction on ``conn`` acts for, where row-level security applies:
        ``user_id`` (the policies see only that user's rows) and ``token_hash`` (the one token
        row with that hash can be read: holding a token is the right to it, which is how the
        flows that learn the user from a token find them). A unit opened for a user names them
        itself; an entry point names a user only once it has learned who they are.

        Always transaction-local (``set_config(…, true)``), never ``SET``: a session setting
        would outlive the transaction and reach the next user of the pooled connection. This is
        the only place that sets either.
        """
        if not await self.row_security(conn):
            return
        if token_hash is not None:
            await conn.exec_driver_sql(self._set_local_sql, (TOKEN_SETTING, token_hash))
        if user_id is not None:
            await conn.exec_driver_sql(self._set_local_sql, (TENANT_SETTING, str(user_id)))

    def _needs_tenant(self, user_id: uuid.UUID | None) -> bool:
        """Whether work for ``user_id`` must run in a transaction that names the user (until
        the first one has asked, PostgreSQL assumes so)."""
        return user_id is not None and self._row_security is not False

    @contextlib.asynccontextmanager
    async def read(self, user_id: uuid.UUID | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only, without an explicit transaction: each statement sees
        what was committed when it started. For ``user_id`` under row-level security, a
        transaction that names the user."""
        if self._needs_tenant(user_id):  # only on PostgreSQL: a transaction naming the user
            async with self.write(user_id) as conn:
                yield conn
            return
        async with self._unit(self._reader, begin=False) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write_statement(
        self, user_id: uuid.UUID | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A connection for a write its repository makes atomic by itself: on PostgreSQL ONE
        statement in autocommit mode (its own transaction, committed when it returns: one
        round trip), for ``user_id`` under row-level security the same as :meth:`write`; on
        SQLite a connection with no transaction open whose repository runs the write as one
        unit on the driver's thread (:func:`in_one_hop`), under the process's write lock and
        committed together with the units that queued for it meanwhile (:class:`Grouping`).
        Only such units write through it on SQLite; reads through it take no lock."""
        if self._grouped is not None:  # SQLite: the repository's unit begins and commits
            async with (
                self._statement_slots,
                self._unit(self._grouped, begin=False) as conn,
            ):
                yield conn
            return
        if self._autocommit_grouped is None or self._needs_tenant(user_id):
            async with self.write(user_id) as conn:
                yield conn
            return
        async with self._unit(self._autocommit_grouped, begin=False) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self, user_id: uuid.UUID | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection in a write transaction (for ``user_id``): committed on success, rolled
        back on error."""
        if self._write_lock is None:
            async with self._unit(self._writer, begin=True, user_id=user_id) as conn:
                yield conn
            return
        async with self._write_lock, self._unit(self._writer, begin=True) as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _unit(
        self, engine: AsyncEngine, *, begin: bool, user_id: uuid.UUID | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A pooled connection (in a transaction when ``begin``), always given back to the pool
        with no transaction open, whatever ends the work: an error, or a cancellation at any
        ``await`` (a client that went away, a timeout).

        On success the transaction commits and the connection goes back to the pool with a
        plain ``await``: returning a committed or autocommit connection does not wait on the
        driver, so nothing can interrupt it (and it saves the task SQLAlchemy's context
        manager runs the close in, docs/performance.md). Only a connection beyond the pool's
        size is really closed, and that close runs to completion like the cleanup below.
        On any failure the rollback and the close run to completion (``to_completion``)
        however often the caller is cancelled meanwhile, and on SQLite behind whatever
        statement the failure interrupted (:func:`_abandon`): the write lock is always
        released.
        """
        with self._shield(), translated():
            conn = await engine.connect()
            try:
                if begin:
                    await conn.begin()
                    if user_id is not None:
                        await self.act_as(conn, user_id=user_id)
                yield conn
                if begin:
                    await conn.commit()
            except BaseException:
                await to_completion(_abandon(conn))
                raise
            if _closes_on_return(engine):  # past the pool's size: the close is I/O
                await to_completion(conn.close())
            else:
                await conn.close()

    def _shield(self) -> contextlib.AbstractContextManager[Any]:
        """On SQLite, a unit of work finishes before an AnyIO cancellation (Starlette's, when
        a client goes away) reaches it: AnyIO cancels again at every ``await`` until the
        cancelled scope is left, which cuts short even SQLAlchemy's shielded cleanup of a
        connection and can leave aiosqlite's thread holding the write lock. PostgreSQL needs
        no shield: a connection that dies mid-transaction is rolled back by the server."""
        return anyio.CancelScope(shield=True) if self._write_lock else contextlib.nullcontext()

    async def accepts_writes(self) -> bool:
        """Whether a write can start now: on SQLite the write lock can be taken, on PostgreSQL
        the server is not read-only (a standby, ``default_transaction_read_only``). The wait
        is the caller's to bound: a writer holding the lock makes this wait its turn."""
        async with self.write() as conn:
            if self.dialect == "postgresql":
                setting = "SELECT current_setting('transaction_read_only')"
                return bool((await conn.exec_driver_sql(setting)).scalar() == "off")
        return True

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _closes_on_return(engine: AsyncEngine) -> bool:
    """Whether a connection returned to ``engine``'s pool now would be closed (the pool is
    full: an overflow connection), which talks to the server."""
    pool: Any = engine.pool
    size = getattr(pool, "size", None)
    return size is None or pool.checkedin() >= size()


async def _abandon(conn: AsyncConnection) -> None:
    """Roll back whatever ``conn`` has open and give it back to the pool.

    On SQLite the rollback goes to the driver first: its thread runs it after any statement
    still in flight (a cancelled ``await`` does not stop a statement the thread has started,
    e.g. a ``BEGIN IMMEDIATE`` SQLAlchemy never saw succeed), so a transaction that statement
    opens is ended too. The close then rolls back SQLAlchemy's own view of the connection.
    """
    try:
        if conn.dialect.name == "sqlite" and not conn.invalidated:
            raw = await raw_connection(conn)
            try:
                await raw.driver_connection.rollback()
            except Exception as error:  # the driver is gone: nothing is left open on it
                raw.invalidate(error)
    finally:
        await conn.close()


class DriverStatement:
    """A Core statement compiled once per dialect and run on the driver's own connection (why:
    docs/performance.md, optimisation 6).

    It keeps what SQLAlchemy knows of the statement (its SQL, the bind and result processors
    of its column types, e.g. ``DateTimeUTC``) and runs it with one driver call: asyncpg's
    ``fetch`` or aiosqlite's ``execute_fetchall``. Driver errors are raised as SQLAlchemy's
    ``DBAPIError``s, like any other statement's.

    :meth:`fetch` is for reads. Writes go through :meth:`write`, which takes the driver only
    where it runs inside SQLAlchemy's transaction (:func:`driver_in_step`), and SQLAlchemy
    otherwise (so do statements with an expanding ``IN``, which SQLAlchemy renders per
    execution), or on SQLite through :class:`SQLiteSteps`, on the driver's own thread.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Any) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        bind_processors = bind_processors_of(compiled)
        names = list(compiled.positiontup or ())
        defaults = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if not bind.required and bind.value is not None
        }
        columns = [
            (key, _faster(impl, proc, dialect))
            for key, impl, proc in result_columns_of(compiled, dialect)
        ]
        plan = _Compiled(
            sql=str(compiled),
            binds=[
                (name, _faster_bind(compiled.binds[name].type, bind_processors.get(name), dialect))
                for name in names
            ],
            defaults=defaults,
            columns=columns,
            asyncpg=dialect.driver == "asyncpg",
            expanding=any(bind.expanding for bind in compiled.binds.values()),
        )
        self._compiled[dialect.name] = plan
        return plan

    def _args(self, plan: _Compiled, params: dict[str, Any]) -> list[Any]:
        values = {**plan.defaults, **params} if plan.defaults else params
        return [values[name] if proc is None else proc(values[name]) for name, proc in plan.binds]

    async def _on_driver(self, conn: AsyncConnection) -> _Compiled | None:
        """The compiled plan when a write may go straight to the driver, else None."""
        plan = self.plan(conn.dialect)
        return None if plan.expanding or not await driver_in_step(conn) else plan

    async def write(self, conn: AsyncConnection, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        """Run a write (its ``RETURNING`` rows keyed by column) in ``conn``'s transaction, or as
        its own in autocommit mode: one driver call where the driver is in step."""
        if await self._on_driver(conn) is None:
            rows: list[Mapping[str, Any]] = [
                *(await conn.execute(self.statement, params)).mappings()
            ]
            return rows
        return await self._fetch(conn, params, inline=False)

    async def fetch(self, conn: AsyncConnection, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        """The statement's rows keyed by column, values processed as SQLAlchemy would.

        On asyncpg the driver's own records (``Row``: :func:`_row_class`) when no column needs
        processing: building a dict per row costs more than decoding it. Dicts otherwise.
        """
        return await self._fetch(conn, params, inline=True)

    async def _fetch(
        self, conn: AsyncConnection, params: dict[str, Any], *, inline: bool
    ) -> list[Mapping[str, Any]]:
        plan = self.plan(conn.dialect)
        args = self._args(plan, params)
        raw = await raw_connection(conn)
        driver: Any = raw.driver_connection
        try:
            if plan.asyncpg:
                records: Any = await driver.fetch(plan.sql, *args, record_class=_row_class())
            elif inline:
                records = await sqlite_read(driver, plan.sql, args)
            else:
                records = await driver.execute_fetchall(plan.sql, args)
        except Exception as error:
            raise _as_dbapi_error(conn, raw, plan.sql, args, error) from error
        if plan.asyncpg and not plan.processed:
            return records  # type: ignore[no-any-return]
        return plan.rows(records)

    def plan(self, dialect: Any) -> _Compiled:
        """The statement compiled for ``dialect`` (once)."""
        return self._compiled.get(dialect.name) or self._compile(dialect)


_BUSY_TIMEOUT = "_convstore_busy_timeout_ms"
"""The attribute of an aiosqlite connection holding its ``busy_timeout`` (set on connect)."""
_INLINE_READS = "_convstore_inline_reads"
"""The attribute of an aiosqlite connection saying whether reads may run on the calling
thread (a file database, whose pooled connections each serve one unit at a time)."""
_NOT_WAITING = "_convstore_not_waiting"
"""The attribute of an aiosqlite connection saying that its ``busy_timeout`` is 0, as a read
on the calling thread left it; the next work on the driver's thread sets it back first."""


def _wait_on_the_thread(driver: Any) -> None:
    """Make every work queued on ``driver``'s thread (aiosqlite's one dispatch,
    ``Connection._execute``) set the connection's ``busy_timeout`` back first, in the same
    hop, when a read on the calling thread left it at 0 (:func:`sqlite_read`): reads switch
    it off once, not off and on again around every statement."""
    dispatch = driver._execute
    waiting = f"PRAGMA busy_timeout = {int(getattr(driver, _BUSY_TIMEOUT))}"

    def restored(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        driver._conn.execute(waiting)
        return fn(*args, **kwargs)

    def execute(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not driver.__dict__.get(_NOT_WAITING):
            return dispatch(fn, *args, **kwargs)
        driver.__dict__[_NOT_WAITING] = False
        return dispatch(restored, fn, *args, **kwargs)

    driver._execute = execute


async def sqlite_read(driver: Any, sql: str, args: list[Any]) -> list[Any]:
    """The rows of a read on aiosqlite's connection ``driver``, run on the calling thread.

    Why not on the driver's thread: the round trip to it (a queue, a thread wake-up and the
    event loop's) took 150–280 µs on the benchmark's machine, more than three times what the
    hot keyset reads (an indexed page of messages, a user's recent conversations) take to run
    (docs/performance.md, fourth round). A read in WAL mode waits for no writer; the few
    moments where one could wait (another connection recovering or closing the WAL) are not
    waited out here: the read runs with ``busy_timeout`` 0 (left so for the next read; the
    next work on the driver's thread sets it back, :func:`_wait_on_the_thread`) and, should
    SQLite answer busy, goes to the driver's thread, which waits as any statement does.
    Nothing else runs on the connection meanwhile: a unit of work holds it alone, and its
    thread is idle between the unit's statements. An in-memory database's units share one
    connection: its reads stay on the driver's thread.
    """
    db: sqlite3.Connection | None = getattr(driver, "_connection", None)
    if (
        db is None
        or not getattr(driver, "_running", False)
        or not getattr(driver, _INLINE_READS, False)
    ):  # closed (the driver says so), or in memory
        on_thread: list[Any] = await driver.execute_fetchall(sql, args)
        return on_thread
    if not driver.__dict__.get(_NOT_WAITING):
        db.execute("PRAGMA busy_timeout = 0")
        driver.__dict__[_NOT_WAITING] = True
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
            raise
    rows: list[Any] = await driver.execute_fetchall(sql, args)  # waits, on the thread
    return rows


class SQLiteSteps:
    """Statements run one after another on the SQLite driver's own thread (see
    :func:`in_one_hop`): :class:`DriverStatement`s with their binds and results processed as
    SQLAlchemy would, on the ``sqlite3`` connection itself."""

    def __init__(self, db: sqlite3.Connection, dialect: Any) -> None:
        self.db = db
        self.dialect = dialect
        self.sql = ""
        self.args: Any = ()

    def _run(self, sql: str, args: Any) -> sqlite3.Cursor:
        self.sql, self.args = sql, args
        return self.db.execute(sql, args)

    def fetch(self, statement: DriverStatement, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        """The statement's rows keyed by column (``RETURNING`` rows of a write)."""
        plan = statement.plan(self.dialect)
        return plan.rows(self._run(plan.sql, statement._args(plan, params)).fetchall())

    def execute_many(self, statement: DriverStatement, rows: list[dict[str, Any]]) -> None:
        """The statement once per parameter set of ``rows``."""
        plan = statement.plan(self.dialect)
        self.sql, self.args = plan.sql, [statement._args(plan, row) for row in rows]
        self.db.executemany(plan.sql, self.args)


async def in_one_hop(conn: AsyncConnection, work: Callable[[SQLiteSteps], T]) -> T:
    """Run ``work`` on the SQLite driver's thread in ONE hop, as one atomic unit (why:
    docs/performance.md, fourth round): every ``await`` of a statement is a round trip to
    aiosqlite's thread, which costs more than most of convstore's statements take to run.

    On a :meth:`Database.write_statement` connection ``work`` is atomic by itself: it runs
    under the process's write lock between ``BEGIN IMMEDIATE`` and ``COMMIT``, rolled back on
    any error, in a transaction it may share with units that queued meanwhile, each in a
    savepoint of its own (:class:`Grouping`). On a connection with no transaction open it
    runs in its own transaction likewise; inside a transaction already begun
    (:meth:`Database.write`) it runs in that transaction, whose owner commits or rolls back.
    Driver errors are raised as SQLAlchemy's ``DBAPIError``s, like any other statement's.
    """
    raw = await raw_connection(conn)
    driver: Any = raw.driver_connection
    grouping = grouping_of(conn)
    if grouping is not None:
        queued: _Queued[T] = _Queued(work, SQLiteSteps(driver._conn, conn.dialect))
        write = functools.partial(_hop_group, driver)
        await grouping.turns.run(None, queued, write, grouping.lock)
        if queued.error is None:
            return cast(T, queued.result)
        sql, args = queued.steps.sql, list(queued.steps.args)
        raise _as_dbapi_error(conn, raw, sql, args, queued.error) from queued.error
    steps: SQLiteSteps | None = None

    def unit() -> T:
        nonlocal steps
        db: sqlite3.Connection = driver._conn
        steps = SQLiteSteps(db, conn.dialect)
        own = not db.in_transaction
        if own:
            steps._run("BEGIN IMMEDIATE", ())
        try:
            result = work(steps)
            if own:
                steps._run("COMMIT", ())
        except BaseException:
            if own and db.in_transaction:
                db.rollback()
            raise
        return result

    try:
        return await run_on_thread(driver, unit)
    except Exception as error:
        sql, args = (steps.sql, list(steps.args)) if steps is not None else ("", [])
        raise _as_dbapi_error(conn, raw, sql, args, error) from error


class Grouping(NamedTuple):
    """Group commit (:mod:`convstore.kit.turns`; why: docs/performance.md, sixth round) for
    the atomic writes of this process's ``write_statement`` connections.

    On SQLite the one-hop units of work (:func:`in_one_hop`) that queue while a group is
    being written are written next, together, in ONE transaction (one hop to the driver's
    thread, one ``COMMIT``: one WAL sync for them all), under the process's write lock. Each
    unit runs in a savepoint of its own, so that it is all or nothing by itself: one that
    fails is rolled back alone and its caller gets its error, the others commit. A failure of
    the transaction (``BEGIN``, ``COMMIT``, the connection) fails every unit of the group.
    On PostgreSQL the repositories group their own writes by key (the appends to one
    conversation). Without contention a group is one write, as it would be alone."""

    turns: Turns[Any]
    lock: contextlib.AbstractAsyncContextManager[Any]


def grouping_of(conn: AsyncConnection) -> Grouping | None:
    """The :class:`Grouping` of a ``write_statement`` connection (None for any other: its
    writes are in the caller's transaction)."""
    sync = conn.sync_connection
    grouping: Grouping | None = sync.get_execution_options().get(GROUP_OPTION) if sync else None
    return grouping


class _Queued(Generic[T]):
    """One unit of work of :func:`in_one_hop` in a group (:data:`GROUP_OPTION`), then its
    outcome."""

    __slots__ = ("error", "ran", "result", "steps", "work")

    def __init__(self, work: Callable[[SQLiteSteps], T], steps: SQLiteSteps) -> None:
        self.work = work
        self.steps = steps
        self.result: T | None = None
        self.error: Exception | None = None
        self.ran = False


async def _hop_group(driver: Any, group: list[_Queued[Any]]) -> None:
    """Write ``group`` in one hop to ``driver``'s thread (:func:`_write_group`)."""
    try:
        await run_on_thread(driver, functools.partial(_write_group, driver._conn, group))
    except Exception as error:  # refused by the driver (closed): the group never ran
        for queued in group:
            if not queued.ran:
                queued.error = error


def _write_group(db: sqlite3.Connection, group: list[_Queued[Any]]) -> None:
    """Run ``group``'s units in ONE transaction, each in its own savepoint when there are
    several; every unit gets its result or its error."""
    first = group[0].steps
    for queued in group:
        queued.ran = True
        queued.steps.db = db  # every unit on the leader's connection
    try:
        first._run("BEGIN IMMEDIATE", ())
        if len(group) == 1:
            first_unit = group[0]
            first_unit.result = first_unit.work(first)
        else:
            for queued in group:
                queued.steps._run("SAVEPOINT convstore_unit", ())
                try:
                    queued.result = queued.work(queued.steps)
                except Exception as error:
                    queued.error = error
                    db.execute("ROLLBACK TO convstore_unit")
                db.execute("RELEASE convstore_unit")
        first._run("COMMIT", ())
    except BaseException as error:
        if db.in_transaction:
            db.rollback()
        failed = error if isinstance(error, Exception) else RuntimeError(f"interrupted: {error!r}")
        for queued in group:
            queued.error = queued.error or failed
        if failed is not error:
            raise


async def run_on_thread(driver: Any, fn: Callable[[], T]) -> T:
    """Run ``fn`` on aiosqlite's connection thread, after whatever is queued there
    (``Connection._execute``, the function every aiosqlite call goes through)."""
    result: T = await driver._execute(fn)
    return result


@functools.cache
def _row_class() -> type:
    """:class:`Row`, built on first use: asyncpg (the postgres extra) is loaded only with a
    PostgreSQL database."""
    import asyncpg  # type: ignore[import-untyped]

    class Row(asyncpg.Record):  # type: ignore[misc]
        """An asyncpg record that says it is a read-only ``Mapping`` (which it behaves as:
        keys, values, items, get, lookup by column name), so that code taking rows as
        mappings, Pydantic included, takes it as it is."""

        __slots__ = ()

    Mapping.register(Row)
    return Row


def _faster(impl: Any, processor: Any, dialect: Any) -> Any:
    """On SQLite, the conversion SQLAlchemy's processor makes of a ``Uuid`` or ``JSON``
    column, several times faster: building a UUID from its text and calling the JSON decoder
    through two wrappers were most of the CPU of reading 50 messages (docs/performance.md,
    fourth round). Any other column keeps SQLAlchemy's processor."""
    if processor is None or dialect.name != "sqlite":
        return processor
    if isinstance(impl, Uuid) and impl.as_uuid:
        return keeps_none(_repeating(_uuid_from_text))
    if isinstance(impl, JSON):
        return keeps_none(_json_value)
    if processor is sqlite_timestamp:
        return keeps_none(processor)
    return processor


def _faster_bind(type_: Any, processor: Any, dialect: Any) -> Any:
    """On SQLite, the text SQLAlchemy's bind processor makes of a ``DateTimeUTC`` value, made
    once per distinct value of a column (every row of a batch shares its timestamps) and
    otherwise in one ``isoformat`` call: the generic processor took 2.3 µs a value, half of
    binding a message (docs/performance.md, fourth round)."""
    if processor is None or dialect.name != "sqlite" or not isinstance(type_, DateTimeUTC):
        return processor
    return _repeating(sqlite_timestamp_text)


_new_object = object.__new__
_set_slot = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_from_text(value: str | None) -> uuid.UUID | None:
    """A stored UUID (32 hex digits, or the 36-character form) as a ``uuid.UUID``, built as
    ``uuid.UUID.__init__`` builds it, without re-checking text convstore wrote itself."""
    if value is None:
        return None
    if len(value) != 32:
        return uuid.UUID(value)
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", int(value, 16))
    _set_slot(made, "is_safe", _UNKNOWN)
    return made


def _repeating(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` for one column, handing the previous result back when a row repeats the
    previous value (every message of a page has the same ``conversation_id``, every row of a
    batch the same timestamps). The memo is one tuple, replaced whole, so concurrent callers
    never see one value with another's result."""
    memo: list[tuple[Any, Any]] = [(None, convert(None))]

    def process(value: Any) -> Any:
        last = memo[0]
        if value == last[0]:
            return last[1]
        made = convert(value)
        memo[0] = (value, made)
        return made

    return process


def _json_value(value: Any) -> Any:
    """A stored JSON document (SQLite hands a number stored bare back as a number)."""
    if value is None or not isinstance(value, str | bytes):
        return value
    return json_loads(value)


_SQLITE_FASTER: dict[str | None, Any] = {"uuid": _uuid_from_text, "json": _json_value}


class _Compiled:
    __slots__ = (
        "asyncpg",
        "binds",
        "build",
        "defaults",
        "expanding",
        "processed",
        "sql",
    )

    def __init__(
        self,
        *,
        sql: str,
        binds: list[tuple[str, Any]],
        defaults: dict[str, Any],
        columns: list[tuple[str, Any]],
        asyncpg: bool,
        expanding: bool,
    ) -> None:
        self.sql = sql
        self.binds = binds
        self.defaults = defaults
        self.processed = [(key, proc) for key, proc in columns if proc is not None]
        self.build = _row_builder(columns)
        self.asyncpg = asyncpg
        self.expanding = expanding

    def rows(self, records: Any) -> list[Mapping[str, Any]]:
        """The driver's records as dicts keyed by column, values processed as SQLAlchemy
        would."""
        build = self.build
        return [build(record) for record in records]


KEEPS_NONE = "convstore_keeps_none"
"""Marks a result processor that turns NULL into None (the row builder then skips calling it
for NULL, the most common value of a message's optional columns)."""


def keeps_none(processor: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``processor`` as one that turns None into None."""
    setattr(processor, KEEPS_NONE, True)
    return processor


def _row_builder(columns: list[tuple[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    """A function making one record a dict keyed by column, each value through its
    processor: one dict display, generated once per statement, as :mod:`dataclasses`
    generates ``__init__`` (it builds 50 messages' rows in a third of the time of filling
    dicts column by column; docs/performance.md, fourth round). The keys are column names of
    convstore's own statements, the processors passed by name, never spliced as text."""
    namespace: dict[str, Any] = {}
    entries = []
    for i, (key, proc) in enumerate(columns):
        if proc is None:
            entries.append(f"{key!r}: record[{i}]")
        elif getattr(proc, KEEPS_NONE, False):  # NULL stays None: no call for it
            namespace[f"p{i}"] = proc
            entries.append(f"{key!r}: (None if (v{i} := record[{i}]) is None else p{i}(v{i}))")
        else:
            namespace[f"p{i}"] = proc
            entries.append(f"{key!r}: p{i}(record[{i}])")
    width = len(columns)
    source = (
        "def build(record):\n"
        f"    if len(record) != {width}:\n"
        f"        raise ValueError('a record of ' + str(len(record)) + ' columns, not {width}')\n"
        f"    return {{{', '.join(entries)}}}\n"
    )
    exec(source, namespace)
    build: Callable[[Any], dict[str, Any]] = namespace["build"]
    return build


def _as_dbapi_error(
    conn: AsyncConnection, raw: Any, sql: str, args: list[Any], error: Exception
) -> Exception:
    """The ``DBAPIError`` SQLAlchemy would have raised for ``error`` (its adapter first maps
    the driver's exception to the DB-API one, with ``sqlstate``)."""
    dialect = conn.dialect
    adapter = raw.dbapi_connection
    try:
        raise_adapted(adapter, error)
    except dialect.loaded_dbapi.Error as adapted:
        invalidated = dialect.is_disconnect(adapted, adapter, None)
        if invalidated:
            raw.invalidate(adapted)
        return DBAPIError.instance(
            sql,
            args,
            adapted,
            dialect.loaded_dbapi.Error,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
    except Exception as other:  # not a driver error: raise it as it is
        return other
    return error


async def raw_connection(conn: AsyncConnection) -> Any:
    """The pooled driver connection under ``conn``: read off the connection when it is checked
    out and valid (no I/O, so no trip through SQLAlchemy's greenlet), else asked for."""
    sync = conn.sync_connection
    if sync is not None and not sync.closed and not sync.invalidated:
        return sync.connection
    return await conn.get_raw_connection()


async def driver_in_step(conn: AsyncConnection) -> bool:
    """Whether a statement sent straight to the driver runs where SQLAlchemy's would: in
    autocommit mode, or inside a transaction the driver has already begun (SQLite: our BEGIN
    is sent when the transaction starts; asyncpg: once SQLAlchemy has run a statement in it).
    Writes that cannot tell go through SQLAlchemy."""
    if is_autocommit(conn) or conn.dialect.name == "sqlite":
        return True
    return transaction_begun(await raw_connection(conn))


def is_autocommit(conn: AsyncConnection) -> bool:
    """Whether ``conn`` runs each statement as its own transaction (no BEGIN pending)."""
    sync = conn.sync_connection
    level = sync.get_execution_options().get("isolation_level") if sync is not None else None
    return bool(level == "AUTOCOMMIT")


# SQLAlchemy's internals, each read in one function that tests/test_db_internals.py pins: what
# DriverStatement needs to run a compiled statement as SQLAlchemy would (docs/performance.md).


def bind_processors_of(compiled: Any) -> Mapping[str, Any]:
    """The bind processors SQLAlchemy applies to ``compiled``'s parameters, by name
    (``SQLCompiler._bind_processors``)."""
    processors: Mapping[str, Any] = compiled._bind_processors
    return processors


def result_columns_of(compiled: Any, dialect: Any) -> list[tuple[str, Any, Any]]:
    """Each result column of ``compiled``: its key, its type as ``dialect`` implements it and
    the result processor SQLAlchemy's cursor applies, or None (``SQLCompiler._result_columns``;
    the type and its processor are public)."""
    columns = []
    for entry in compiled._result_columns:
        impl = entry.type.dialect_impl(dialect)
        columns.append((entry.keyname, impl, impl.result_processor(dialect, None)))
    return columns


def raise_adapted(adapter: Any, error: Exception) -> None:
    """Raise ``error`` as the DB-API exception SQLAlchemy's async adapter maps it to (with
    ``sqlstate`` on asyncpg): ``AsyncAdapt_dbapi_connection._handle_exception``."""
    adapter._handle_exception(error)


def transaction_begun(raw: Any) -> bool:
    """Whether SQLAlchemy's asyncpg adapter has begun its transaction on the driver
    (``AsyncAdapt_asyncpg_connection._transaction``, set by the first statement)."""
    return getattr(raw.dbapi_connection, "_transaction", None) is not None
