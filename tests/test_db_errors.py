"""Database failures become convstore errors in one place (``convstore.db.translate``):
integrity violations by the name of the constraint, never by the text of the message."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import ForeignKeyConstraint, UniqueConstraint, text
from sqlalchemy.exc import IntegrityError

import convstore
from convstore import Store
from convstore.db import (
    CONSTRAINT_ERRORS,
    FOREIGN_KEY,
    UNIQUE,
    integrity_error,
    violated_constraint,
)
from convstore.models import Base
from tests.factories import make_conversation, tool_turn

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _constraints(kind: type) -> list[str]:
    return sorted(
        str(c.name)
        for t in Base.metadata.tables.values()
        for c in t.constraints
        if isinstance(c, kind)
    )


def test_every_foreign_key_names_what_is_missing() -> None:
    """A foreign key added without its error in CONSTRAINT_ERRORS (or to ``users``) fails."""
    names = _constraints(ForeignKeyConstraint)
    assert len(names) >= 8
    for name in names:
        error = integrity_error(FOREIGN_KEY, name)
        assert isinstance(error, convstore.NotFound), name
        assert error.message != "not found", name


def _unique_indexes() -> set[str]:
    """Unique indexes by name (PostgreSQL's) and by SQLite's column-derived name."""
    names = set()
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            if index.unique:
                names.add(str(index.name))
                names.add("_".join(["uq", table.name, *(c.name for c in index.columns)]))
    return names


def test_every_named_constraint_error_is_a_constraint_of_the_schema() -> None:
    assert (
        set(CONSTRAINT_ERRORS)
        <= set(_constraints(UniqueConstraint))
        | set(_constraints(ForeignKeyConstraint))
        | _unique_indexes()
    )


@pytest.mark.parametrize("name", _constraints(UniqueConstraint))
def test_sqlite_unique_violations_are_named_by_the_naming_convention(name: str) -> None:
    """SQLite names a UNIQUE constraint by its columns only; the convention gives the name."""
    table = next(
        t for t in Base.metadata.tables.values() if name in {c.name for c in t.constraints}
    )
    (constraint,) = (c for c in table.constraints if c.name == name)
    columns = ", ".join(f"{table.name}.{c.name}" for c in constraint.columns)
    driver = sqlite3.IntegrityError(f"UNIQUE constraint failed: {columns}")
    driver.sqlite_errorcode = sqlite3.SQLITE_CONSTRAINT_UNIQUE
    assert violated_constraint(IntegrityError("INSERT", {}, driver)) == (UNIQUE, name)


async def _violate(store: Store, sql: str, **params: object) -> BaseException:
    with pytest.raises(convstore.ConvstoreError) as exc:
        async with store.db.write() as conn:
            await conn.execute(text(sql), params)
    assert isinstance(exc.value.__cause__, IntegrityError)
    return exc.value


async def test_a_taken_email_is_a_conflict_naming_it(store: Store) -> None:
    user = await store.users.create(email=f"{uuid.uuid4().hex}@example.com")
    error = await _violate(
        store,
        "INSERT INTO users (id, email, role, is_active, created_at, updated_at)"
        " VALUES (:id, :email, 'user', true, :now, :now)",
        id=uuid.uuid4().hex if store.db.dialect == "sqlite" else uuid.uuid4(),
        email=user.email,
        now=NOW.replace(tzinfo=None) if store.db.dialect == "sqlite" else NOW,
    )
    assert isinstance(error, convstore.Conflict)
    assert error.message == "a user with this email already exists"


async def test_a_missing_user_is_not_found(store: Store) -> None:
    error = await _violate(
        store,
        "INSERT INTO tasks (id, user_id, title, priority, tags, completed, created_at, updated_at)"
        " VALUES (:id, :user_id, 't', 'low', '[]', false, :now, :now)",
        id=uuid.uuid4().hex if store.db.dialect == "sqlite" else uuid.uuid4(),
        user_id=uuid.uuid4().hex if store.db.dialect == "sqlite" else uuid.uuid4(),
        now=NOW.replace(tzinfo=None) if store.db.dialect == "sqlite" else NOW,
    )
    assert isinstance(error, convstore.NotFound)
    # PostgreSQL names the foreign key; SQLite reports a foreign key failure without one.
    assert error.message == ("user not found" if store.db.dialect == "postgresql" else "not found")


async def test_a_second_answer_to_a_tool_call_is_a_conflict_naming_it(store: Store) -> None:
    user = await store.users.create(email=f"{uuid.uuid4().hex}@example.com")
    me = store.for_user(user.id)
    conv = await make_conversation(me)
    await me.messages.append_many(conv.id, tool_turn("call_1"))
    with pytest.raises(convstore.Conflict) as exc:
        await me.messages.append(conv.id, role="tool", tool_call_id="call_1", content="again")
    assert exc.value.message == "a tool message already answers this tool_call_id"
