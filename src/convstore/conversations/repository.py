"""Every query on conversations and messages. Each repository is bound to the acting user:
there is no statement here that reads or writes a row without ``user_id`` in it."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.conversations.models import Conversation, Message
from convstore.db import DriverStatement, SQLiteSteps, grouping_of, in_one_hop, json_dumps

conversations = cast(Table, Conversation.__table__)
messages = cast(Table, Message.__table__)

CONVERSATION_COLUMNS = tuple(c for c in conversations.c if c.name != "user_id")
MESSAGE_COLUMNS = tuple(c for c in messages.c if c.name not in ("user_id", "deleted_at"))
NEW_MESSAGE_COLUMNS = tuple(c.name for c in messages.c if c.name not in ("seq", "deleted_at"))
"""What an append writes (``seq`` comes from the counter; ``deleted_at`` stays NULL)."""

# Hot statements are built once with bound parameters (why: docs/performance.md), each with
# the acting user's id as a parameter.


@cache
def _recent_statement(include_deleted: bool, paged: bool) -> Select[Any]:
    """A user's conversations by last activity, newest first, after a keyset position."""
    t = conversations.c
    stmt = select(*CONVERSATION_COLUMNS).where(t.user_id == bindparam("user_id"))
    if not include_deleted:
        stmt = stmt.where(t.deleted_at.is_(None))
    if paged:
        at = bindparam("at", type_=t.updated_at.type)
        last_id = bindparam("last_id", type_=t.id.type)
        stmt = stmt.where(or_(t.updated_at < at, and_(t.updated_at == at, t.id < last_id)))
    return stmt.order_by(t.updated_at.desc(), t.id.desc()).limit(bindparam("limit"))


@cache
def _page_statement(direction: str) -> Select[Any]:
    """One page of a live conversation's visible messages: ``latest`` (newest first),
    ``after`` (seq ascending) or ``before`` (seq descending) a bound ``seq``."""
    m, c = messages.c, conversations.c
    stmt = select(*MESSAGE_COLUMNS).where(
        m.conversation_id == bindparam("conversation_id"),
        m.user_id == bindparam("user_id"),
        m.deleted_at.is_(None),
        exists().where(
            c.id == bindparam("conversation_id"),
            c.user_id == bindparam("user_id"),
            c.deleted_at.is_(None),
        ),
    )
    if direction == "after":
        stmt = stmt.where(m.seq > bindparam("seq")).order_by(m.seq.asc())
    elif direction == "before":
        stmt = stmt.where(m.seq < bindparam("seq")).order_by(m.seq.desc())
    else:
        stmt = stmt.order_by(m.seq.desc())
    return stmt.limit(bindparam("limit"))


@cache
def _recent_query(include_deleted: bool, paged: bool) -> DriverStatement:
    return DriverStatement(_recent_statement(include_deleted, paged))


@cache
def _page_query(direction: str) -> DriverStatement:
    return DriverStatement(_page_statement(direction))


@cache
def _append_one_query(with_title: bool, with_parents: bool) -> DriverStatement:
    return DriverStatement(_append_one_statement(with_title, with_parents))


@cache
def _insert_conversation_query(names: tuple[str, ...]) -> DriverStatement:
    """INSERT of a new conversation with the columns ``names``, returning its row."""
    values: dict[str, Any] = {name: bindparam(name) for name in names}
    return DriverStatement(insert(conversations).values(values).returning(*CONVERSATION_COLUMNS))


@cache
def _insert_query() -> DriverStatement:
    """INSERT of one appended message (every column an append writes, ``seq`` included)."""
    names = (*NEW_MESSAGE_COLUMNS, "seq")
    return DriverStatement(insert(messages).values({name: bindparam(name) for name in names}))


BATCH_SHAPES = 64
"""Batch statements kept compiled, one per set of varying columns (which rows decide)."""


def _column_array(name: str) -> Any:
    """The bound array ``a_<name>`` of one message column for a set-based batch insert.

    One-dimensional, said explicitly: SQLAlchemy otherwise guesses the dimensions from the
    first element, and a list-valued JSON first element (tool calls) made it a nested array.
    """
    return bindparam(f"a_{name}", type_=ARRAY(messages.c[name].type, dimensions=1))


def _batch_values(varying: tuple[str, ...]) -> tuple[Any, list[Any]]:
    """The rows of a set-based batch insert: ``unnest`` of one array per column that varies,
    numbered ``WITH ORDINALITY`` (``ord``), and each message column's value in them (a column
    every row shares, such as the timestamps, the owner or an absent field, is one scalar
    parameter ``s_<name>``)."""
    arrays = [_column_array(name) for name in varying]
    batch = (
        func.unnest(*arrays).table_valued(*varying, with_ordinality="ord").render_derived(name="m")
    )
    values = [
        batch.c[name] if name in varying else bindparam(f"s_{name}", type_=messages.c[name].type)
        for name in NEW_MESSAGE_COLUMNS
    ]
    return batch, values


@lru_cache(maxsize=BATCH_SHAPES)
def _append_batch_statement(with_title: bool, with_parents: bool, varying: tuple[str, ...]) -> Any:
    """PostgreSQL: the reserve UPDATE as a CTE feeding a set-based insert of a whole batch
    (``unnest`` of one array per column that varies, numbered ``WITH ORDINALITY``; a column
    every row shares, such as the timestamps, the owner or an absent field, is one scalar
    parameter ``s_<name>``): see ``append``."""
    bump = _reserve_statement(with_title, with_parents).cte("bump")
    batch, values = _batch_values(varying)
    seq = bump.c.messages_count - bindparam("count") + batch.c.ord
    source = select(*values, seq).select_from(bump.join(batch, true()))
    return (
        insert(messages)
        .from_select([*NEW_MESSAGE_COLUMNS, "seq"], source)
        .returning(messages.c.seq)
    )


@lru_cache(maxsize=BATCH_SHAPES)
def _create_with_messages_query(
    names: tuple[str, ...], varying: tuple[str, ...]
) -> DriverStatement:
    """PostgreSQL: the INSERT of a new conversation (the columns ``names``) as a CTE feeding
    the set-based insert of its first messages, numbered 1, 2, … (``unnest … WITH
    ORDINALITY``, as in :func:`_append_batch_statement`). The messages' composite foreign key
    is checked at the end of the statement, when the conversation's row exists."""
    created = (
        insert(conversations)
        .values({name: bindparam(name) for name in names})
        .returning(conversations.c.id)
        .cte("created")
    )
    batch, values = _batch_values(varying)
    source = select(*values, batch.c.ord).select_from(created.join(batch, true()))
    return DriverStatement(
        insert(messages)
        .from_select([*NEW_MESSAGE_COLUMNS, "seq"], source)
        .returning(messages.c.seq)
    )


@lru_cache(maxsize=BATCH_SHAPES)
def _append_batch_query(
    with_title: bool, with_parents: bool, varying: tuple[str, ...]
) -> DriverStatement:
    return DriverStatement(_append_batch_statement(with_title, with_parents, varying))


def _varying(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    """The columns whose value is not the very same object in every row (``id`` always
    varies). Identity, not equality: ``{"n": 1} == {"n": True}``, and a batch must store what
    each row holds. Sending one array per column of 100 values cost more than the insert
    (docs/performance.md, fourth round)."""
    first = rows[0]
    return tuple(
        name
        for name in NEW_MESSAGE_COLUMNS
        if name == "id" or any(row[name] is not first[name] for row in rows)
    )


def _batch_params(rows: list[dict[str, Any]], params: dict[str, Any]) -> tuple[str, ...]:
    """Put the parameters of :func:`_batch_values` for ``rows`` in ``params``: an array
    ``a_<name>`` per column that varies (which are returned), else one scalar ``s_<name>``."""
    varying = _varying(rows)
    for name in NEW_MESSAGE_COLUMNS:
        if name in varying:
            params[f"a_{name}"] = [row[name] for row in rows]
        else:
            params[f"s_{name}"] = rows[0][name]
    return varying


@cache
def _sqlite_reserve_query(with_title: bool, with_parents: bool) -> DriverStatement:
    return DriverStatement(_reserve_statement(with_title, with_parents, parents_json=True))


@cache
def _reserve_statement(with_title: bool, with_parents: bool, parents_json: bool = False) -> Any:
    """``UPDATE conversations … RETURNING messages_count`` (see
    ``MessageRepository.append``). With parents, it also requires each of ``parent_ids`` to
    be a visible message of the conversation: otherwise it changes nothing and returns no
    row. With ``parents_json`` (SQLite) the parents come as one JSON array of ids
    (``json_each``) instead of an expanding ``IN``, which only SQLAlchemy's own execution can
    render.

    Its parameters are named apart from the columns: an execution parameter named like a
    column of an UPDATE's table would become one more SET clause.
    """
    t, m = conversations.c, messages.c
    now = bindparam("now", type_=t.updated_at.type)
    values: dict[str, Any] = {
        "messages_count": t.messages_count + bindparam("count"),
        "last_message_at": now,
        "updated_at": now,
    }
    if with_title:
        values["title"] = case(
            (t.title.is_(None), bindparam("new_title", type_=t.title.type)), else_=t.title
        )
    where = [t.id == bindparam("target_id"), t.user_id == bindparam("owner_id")]
    where.append(t.deleted_at.is_(None))
    if with_parents:
        if parents_json:
            listed: Select[Any] = select(column("value")).select_from(
                func.json_each(bindparam("parents_json"))
            )
            among: ColumnElement[bool] = m.id.in_(listed.scalar_subquery())
        else:
            among = m.id.in_(bindparam("parent_ids", expanding=True))
        visible = (
            select(func.count())
            .where(
                among,
                m.conversation_id == bindparam("target_id"),
                m.user_id == bindparam("owner_id"),
                m.deleted_at.is_(None),
            )
            .scalar_subquery()
        )
        where.append(visible == bindparam("parent_count"))
    return update(conversations).where(*where).values(**values).returning(t.messages_count)


@cache
def _append_one_statement(with_title: bool, with_parents: bool) -> Any:
    """PostgreSQL: the reserve UPDATE as a CTE feeding the INSERT (see ``append``)."""
    bump = _reserve_statement(with_title, with_parents).cte("bump")
    source = select(
        *(bindparam(f"m_{name}", type_=messages.c[name].type) for name in NEW_MESSAGE_COLUMNS),
        bump.c.messages_count,
    )
    return (
        insert(messages)
        .from_select([*NEW_MESSAGE_COLUMNS, "seq"], source)
        .returning(messages.c.seq)
    )


class ConversationRepository:
    """Conversations of one user."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id

    def get_readable_statement(self, *, include_deleted: bool = False) -> Select[Any]:
        """The starting point of every read: this user's conversations, live ones by default."""
        stmt = select(*CONVERSATION_COLUMNS).where(conversations.c.user_id == self.user_id)
        if not include_deleted:
            stmt = stmt.where(conversations.c.deleted_at.is_(None))
        return stmt

    def _owned(self, conversation_id: uuid.UUID, *, live: bool | None) -> ColumnElement[bool]:
        clause = and_(
            conversations.c.id == conversation_id, conversations.c.user_id == self.user_id
        )
        if live is True:
            clause = and_(clause, conversations.c.deleted_at.is_(None))
        elif live is False:
            clause = and_(clause, conversations.c.deleted_at.is_not(None))
        return clause

    def live_exists(self, conversation_id: uuid.UUID) -> ColumnElement[bool]:
        """An EXISTS clause: the conversation is this user's and not deleted."""
        return exists().where(self._owned(conversation_id, live=True))

    async def get(
        self, conversation_id: uuid.UUID, *, include_deleted: bool = False
    ) -> RowMapping | None:
        stmt = self.get_readable_statement(include_deleted=include_deleted).where(
            conversations.c.id == conversation_id
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def insert(self, values: dict[str, Any]) -> Mapping[str, Any]:
        """Insert a new conversation (``values``: every column but the owner's) and return
        its row. One statement: atomic by itself, on a ``write_statement`` connection too
        (PostgreSQL autocommit, SQLite one hop to the driver's thread)."""
        params = {**values, "user_id": self.user_id}
        query = _insert_conversation_query(tuple(sorted(params)))
        if self.conn.dialect.name == "sqlite":
            rows = await in_one_hop(self.conn, lambda steps: steps.fetch(query, params))
        else:
            rows = await query.write(self.conn, params)
        return rows[0]

    async def insert_with_messages(
        self, values: dict[str, Any], rows: list[dict[str, Any]]
    ) -> Mapping[str, Any]:
        """Insert a new conversation (``values``, its ``messages_count`` the number of
        ``rows``) with its first messages ``rows`` (numbered 1, 2, … here) and return its
        row. Atomic by itself: on PostgreSQL ONE statement (the conversation's INSERT as a
        CTE feeding the messages' set-based INSERT), on SQLite one hop to the driver's
        thread (``in_one_hop``)."""
        params = {**values, "user_id": self.user_id}
        for row in rows:
            row["user_id"] = self.user_id
        _number(rows, len(rows))
        names = tuple(sorted(params))
        if self.conn.dialect.name == "sqlite":
            query = _insert_conversation_query(names)

            def unit(steps: SQLiteSteps) -> Mapping[str, Any]:
                (created,) = steps.fetch(query, params)
                steps.execute_many(_insert_query(), rows)
                return created

            return await in_one_hop(self.conn, unit)
        varying = _batch_params(rows, params)
        await _create_with_messages_query(names, varying).write(self.conn, params)
        return {column.name: params.get(column.name) for column in CONVERSATION_COLUMNS}

    async def update(
        self, conversation_id: uuid.UUID, values: dict[str, Any], *, live: bool | None = True
    ) -> RowMapping | None:
        stmt = (
            update(conversations)
            .where(self._owned(conversation_id, live=live))
            .values(**values)
            .returning(*CONVERSATION_COLUMNS)
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def purge(self, conversation_id: uuid.UUID) -> bool:
        stmt = delete(conversations).where(self._owned(conversation_id, live=None))
        return (await self.conn.execute(stmt)).rowcount == 1

    async def purge_deleted_before(self, cutoff: datetime) -> int:
        """Delete for good (messages by cascade) this user's conversations soft-deleted before
        ``cutoff``; the number deleted."""
        t = conversations.c
        stmt = delete(conversations).where(
            t.user_id == self.user_id, t.deleted_at.is_not(None), t.deleted_at < cutoff
        )
        return (await self.conn.execute(stmt)).rowcount

    async def get_by_key(self, key: str) -> RowMapping | None:
        """The user's live conversation named ``key``."""
        t = conversations.c
        stmt = self.get_readable_statement().where(t.key == key)
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def insert_keyed(self, values: dict[str, Any]) -> RowMapping | None:
        """Insert a conversation with a ``key`` unless a live one of the user already has it
        (then None, and nothing written): ``INSERT … ON CONFLICT DO NOTHING`` on the partial
        unique index, so concurrent first writers of one key create it once."""
        t = conversations.c
        dialect = self.conn.dialect.name
        insert_of = postgresql_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert_of(conversations)
            .values(user_id=self.user_id, **values)
            .on_conflict_do_nothing(
                index_elements=[t.user_id, t.key],
                index_where=and_(t.key.is_not(None), t.deleted_at.is_(None)),
            )
            .returning(*CONVERSATION_COLUMNS)
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def touch(self, conversation_id: uuid.UUID, now: datetime) -> bool:
        """Mark activity on a live conversation of the user, taking its row lock until the
        transaction ends (removals of items queue on it as appends do); whether it exists."""
        stmt = (
            update(conversations)
            .where(self._owned(conversation_id, live=True))
            .values(updated_at=now)
            .returning(conversations.c.id)
        )
        return (await self.conn.execute(stmt)).first() is not None

    async def list_recent(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None, include_deleted: bool
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` conversations, most recent activity first, strictly after ``after``."""
        params: dict[str, Any] = {"user_id": self.user_id, "limit": limit}
        if after is not None:
            params["at"], params["last_id"] = after
        return await _recent_query(include_deleted, after is not None).fetch(self.conn, params)

    async def list_created(
        self, *, limit: int, after: uuid.UUID | None, ascending: bool
    ) -> list[RowMapping]:
        """Up to ``limit`` live conversations in creation order (their ids are time-ordered),
        oldest or newest first, strictly after conversation ``after`` in that order."""
        t = conversations.c
        stmt = self.get_readable_statement()
        if after is not None:
            stmt = stmt.where(t.id > after if ascending else t.id < after)
        stmt = stmt.order_by(t.id.asc() if ascending else t.id.desc()).limit(limit)
        return list((await self.conn.execute(stmt)).mappings())

    def reserve_params(
        self,
        conversation_id: uuid.UUID,
        count: int,
        *,
        now: datetime,
        title: str | None,
        parents: frozenset[uuid.UUID],
    ) -> dict[str, Any]:
        """The parameters of :func:`_reserve_statement` (and of the appends built on it)."""
        params: dict[str, Any] = {
            "target_id": conversation_id,
            "owner_id": self.user_id,
            "count": count,
            "now": now,
        }
        if title is not None:
            params["new_title"] = title
        if parents:
            params["parent_ids"] = sorted(parents)
            params["parent_count"] = len(parents)
        return params


def _number(rows: list[dict[str, Any]], last: int) -> None:
    """Give ``rows`` their seqs, the last one ``last``."""
    for seq, row in enumerate(rows, start=last - len(rows) + 1):
        row["seq"] = seq


class _Append:
    """One caller's append waiting in a group (``MessageRepository._append_together``),
    then its outcome: the last seq, None when nothing was appended, or an error."""

    __slots__ = ("error", "last", "now", "parents", "rows", "title")

    def __init__(
        self,
        rows: list[dict[str, Any]],
        now: datetime,
        title: str | None,
        parents: frozenset[uuid.UUID],
    ) -> None:
        self.rows = rows
        self.now = now
        self.title = title
        self.parents = parents
        self.last: int | None = None
        self.error: Exception | None = None


class MessageRepository:
    """Messages of one user; every statement also requires the conversation to be live."""

    def __init__(self, conn: AsyncConnection, user_id: uuid.UUID) -> None:
        self.conn = conn
        self.user_id = user_id
        self.conversations = ConversationRepository(conn, user_id)

    def get_readable_statement(self, conversation_id: uuid.UUID) -> Select[Any]:
        """This user's live messages of one conversation (the conversation's liveness is
        checked separately by the caller, or with :meth:`_visible`)."""
        m = messages.c
        return select(*MESSAGE_COLUMNS).where(
            m.conversation_id == conversation_id,
            m.user_id == self.user_id,
            m.deleted_at.is_(None),
        )

    def _visible(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> ColumnElement[bool]:
        m = messages.c
        return and_(
            m.id == message_id,
            m.conversation_id == conversation_id,
            m.user_id == self.user_id,
            m.deleted_at.is_(None),
            self.conversations.live_exists(conversation_id),
        )

    async def append(
        self,
        conversation_id: uuid.UUID,
        rows: list[dict[str, Any]],
        *,
        now: datetime,
        title: str | None,
    ) -> int | None:
        """Append ``rows`` (new messages, in order) to the conversation, all or none: each row
        gets its ``seq``; the last one, or None when nothing was appended because the
        conversation is not this user's live one or a ``parent_id`` is not a visible message
        of it (the caller looks which).

        The one place an append's statements are chosen. On PostgreSQL it is ONE statement,
        ``WITH bump AS (UPDATE conversations … RETURNING messages_count) INSERT INTO messages
        … SELECT … FROM bump``: the row lock taken by the UPDATE orders concurrent appenders
        as any ``UPDATE`` does (no number is handed out twice, ``messages_count`` never
        loses an update), and on a connection in autocommit mode the whole append is one
        round trip. On SQLite, the seqs are reserved and the rows inserted by two statements
        run in one hop to the driver's thread (``in_one_hop``), in the caller's transaction
        or, on a ``write_statement`` connection, in their own.

        On a ``write_statement`` connection, appends that wait for another (SQLite's one
        writer; on PostgreSQL another append to the same conversation) are committed together
        with the others that waited meanwhile, each still all or none by itself
        (``convstore.db.Grouping``): what a writer waited for is one commit, not one each.
        """
        parents = frozenset(row["parent_id"] for row in rows if row["parent_id"] is not None)
        for row in rows:
            row["user_id"] = self.user_id
        if self.conn.dialect.name == "postgresql":
            append = _Append(rows, now, title, parents)
            grouping = grouping_of(self.conn)
            if grouping is None:
                return await self._append_alone(append, conversation_id)
            key = (conversation_id, self.user_id)
            write = functools.partial(self._append_together, conversation_id)
            await grouping.turns.run(key, append, write, grouping.lock)
            if append.error is not None:
                raise append.error
            return append.last
        params = self.conversations.reserve_params(
            conversation_id, len(rows), now=now, title=title, parents=parents
        )
        if parents:
            del params["parent_ids"]
            params["parents_json"] = json_dumps([parent.hex for parent in sorted(parents)])
        reserve = _sqlite_reserve_query(title is not None, bool(parents))

        def unit(steps: SQLiteSteps) -> int | None:
            found = steps.fetch(reserve, params)
            if not found:
                return None
            last = int(found[0]["messages_count"])
            _number(rows, last)
            steps.execute_many(_insert_query(), rows)
            return last

        return await in_one_hop(self.conn, unit)

    async def _append_alone(self, append: _Append, conversation_id: uuid.UUID) -> int | None:
        """PostgreSQL: ``append`` in one statement; its last seq, or None."""
        last = await self._append_in_one_statement(
            conversation_id, append.rows, append.now, append.title, append.parents
        )
        if last is not None:
            _number(append.rows, last)
        return last

    async def _append_together(self, conversation_id: uuid.UUID, group: list[_Append]) -> None:
        """PostgreSQL group commit (``convstore.db.Grouping``): the appends of several
        callers to one conversation in ONE statement, each caller's rows numbered in its
        turn. Where that statement refuses them (a conversation not live, a parent not
        visible, a constraint), each append runs alone, to get its own outcome; any other
        failure (the connection) is every append's."""
        if len(group) > 1:
            rows = [row for append in group for row in append.rows]
            title = next((append.title for append in group if append.title is not None), None)
            parents = frozenset().union(*(append.parents for append in group))
            now = max(append.now for append in group)
            try:
                last = await self._append_in_one_statement(
                    conversation_id, rows, now, title, parents
                )
            except IntegrityError:
                last = None
            except Exception as error:
                for append in group:
                    append.error = error
                return
            if last is not None:
                _number(rows, last)
                for append in group:
                    append.last = append.rows[-1]["seq"]
                return
        for append in group:
            try:
                append.last = await self._append_alone(append, conversation_id)
            except Exception as error:
                append.error = error

    async def _append_in_one_statement(
        self,
        conversation_id: uuid.UUID,
        rows: list[dict[str, Any]],
        now: datetime,
        title: str | None,
        parents: frozenset[uuid.UUID],
    ) -> int | None:
        """PostgreSQL: reserve ``len(rows)`` seqs and insert the rows with them in ONE
        statement (scalar parameters for one row; for a batch, one array per column that
        varies and a scalar for each the rows share)."""
        params = self.conversations.reserve_params(
            conversation_id, len(rows), now=now, title=title, parents=parents
        )
        with_title, with_parents = title is not None, bool(parents)
        if len(rows) == 1:
            params.update((f"m_{name}", rows[0][name]) for name in NEW_MESSAGE_COLUMNS)
            query = _append_one_query(with_title, with_parents)
        else:
            varying = _batch_params(rows, params)
            query = _append_batch_query(with_title, with_parents, varying)
        seqs = [row["seq"] for row in await query.write(self.conn, params)]
        return max(seqs) if seqs else None

    async def _page(
        self, direction: str, conversation_id: uuid.UUID, limit: int, seq: int | None = None
    ) -> list[Mapping[str, Any]]:
        """Rows of :func:`_page_statement`: none when the conversation is not live, which an
        empty answer then tells apart with :meth:`ConversationRepository.get`."""
        params: dict[str, Any] = {
            "conversation_id": conversation_id,
            "user_id": self.user_id,
            "limit": limit,
        }
        if seq is not None:
            params["seq"] = seq
        return await _page_query(direction).fetch(self.conn, params)

    async def latest(self, conversation_id: uuid.UUID, limit: int) -> list[Mapping[str, Any]]:
        """The newest ``limit`` messages, oldest first. A backward scan of the
        (conversation_id, seq) index: no OFFSET, no sort, whatever the table's size."""
        return list(reversed(await self._page("latest", conversation_id, limit)))

    async def after(
        self, conversation_id: uuid.UUID, seq: int, limit: int
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` messages with a seq above ``seq``, oldest first."""
        return list(await self._page("after", conversation_id, limit, seq))

    async def before(
        self, conversation_id: uuid.UUID, seq: int, limit: int
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` messages just below ``seq``, oldest first."""
        return list(reversed(await self._page("before", conversation_id, limit, seq)))

    async def get(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> RowMapping | None:
        stmt = select(*MESSAGE_COLUMNS).where(self._visible(conversation_id, message_id))
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def get_kind(
        self, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> tuple[str, str | None] | None:
        """The role and item type (None for a native message) of a visible message."""
        m = messages.c
        stmt = select(m.role, m.item_type).where(self._visible(conversation_id, message_id))
        row = (await self.conn.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def update(
        self, conversation_id: uuid.UUID, message_id: uuid.UUID, values: dict[str, Any]
    ) -> RowMapping | None:
        stmt = (
            update(messages)
            .where(self._visible(conversation_id, message_id))
            .values(**values)
            .returning(*MESSAGE_COLUMNS)
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def rows(
        self, conversation_id: uuid.UUID, *, ascending: bool, seq: int | None, limit: int
    ) -> list[Mapping[str, Any]]:
        """Up to ``limit`` visible rows in seq order (``ascending`` or not) from ``seq`` on,
        ``seq`` included (all of them when None)."""
        if seq is None:
            direction, bound = ("after", 0) if ascending else ("latest", None)
        else:
            direction, bound = ("after", seq - 1) if ascending else ("before", seq + 1)
        return list(await self._page(direction, conversation_id, limit, bound))

    async def find_item(self, conversation_id: uuid.UUID, item_id: str) -> RowMapping | None:
        """The visible row stored as the item ``item_id`` (the partial unique index)."""
        m = messages.c
        stmt = select(*MESSAGE_COLUMNS).where(
            m.item_id == item_id,
            m.conversation_id == conversation_id,
            m.user_id == self.user_id,
            m.deleted_at.is_(None),
            self.conversations.live_exists(conversation_id),
        )
        row: RowMapping | None = (await self.conn.execute(stmt)).mappings().one_or_none()
        return row

    async def remove(self, conversation_id: uuid.UUID, message_ids: list[uuid.UUID]) -> int:
        """Delete rows of the user's conversation for good (items are removed, not hidden)."""
        m = messages.c
        stmt = delete(messages).where(
            m.id.in_(message_ids),
            m.conversation_id == conversation_id,
            m.user_id == self.user_id,
        )
        return (await self.conn.execute(stmt)).rowcount

    async def remove_all(self, conversation_id: uuid.UUID) -> int:
        """Delete every row of the user's conversation for good; how many."""
        m = messages.c
        stmt = delete(messages).where(
            m.conversation_id == conversation_id, m.user_id == self.user_id
        )
        return (await self.conn.execute(stmt)).rowcount

    async def exists(self, conversation_id: uuid.UUID, message_id: uuid.UUID) -> bool:
        stmt = select(func.count()).where(self._visible(conversation_id, message_id))
        return bool((await self.conn.execute(stmt)).scalar_one())


PURGE_LOCK_KEY = 0x636F6E7673746F72
"""PostgreSQL advisory lock key ("convstor") held by the one process purging at a time."""


async def try_purge_lock(conn: AsyncConnection) -> bool:
    """PostgreSQL: take the purge's session-level advisory lock unless another session holds it."""
    stmt = select(func.pg_try_advisory_lock(PURGE_LOCK_KEY))
    return bool((await conn.execute(stmt)).scalar_one())


async def release_purge_lock(conn: AsyncConnection) -> None:
    await conn.execute(select(func.pg_advisory_unlock(PURGE_LOCK_KEY)))
