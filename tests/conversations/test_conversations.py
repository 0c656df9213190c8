"""Conversations: create, list by recent activity, update, soft delete, restore, purge."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

import convstore
from convstore import Store, UserScope
from convstore.kit.pagination import encode_cursor
from tests.factories import make_conversation, make_messages


async def _rows(store: Store, table: str, column: str, value: uuid.UUID) -> int:
    param = value if store.db.dialect == "postgresql" else value.hex
    async with store.db.engine.connect() as conn:
        result = await conn.execute(
            text(f"SELECT count(*) FROM {table} WHERE {column} = :v"), {"v": param}
        )
        return int(result.scalar_one())


class TestCreateAndGet:
    async def test_create_returns_the_stored_conversation(self, me: UserScope) -> None:
        conv = await me.conversations.create(title="  Trip planning ", metadata={"model": "m"})
        assert conv.title == "Trip planning"
        assert conv.metadata == {"model": "m"}
        assert conv.messages_count == 0
        assert conv.last_message_at is None
        assert conv.id.version == 7
        assert conv.created_at.tzinfo is not None
        assert await me.conversations.get(conv.id) == conv

    async def test_get_accepts_the_id_as_a_string(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        assert (await me.conversations.get(str(conv.id))).id == conv.id

    async def test_malformed_id_is_invalid_input(self, me: UserScope) -> None:
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.conversations.get("not-a-uuid")
        assert exc.value.fields == ["conversation_id"]

    async def test_unknown_id_is_not_found(self, me: UserScope) -> None:
        with pytest.raises(convstore.NotFound):
            await me.conversations.get(uuid.uuid4())

    async def test_a_user_that_does_not_exist_cannot_create(self, store: Store) -> None:
        with pytest.raises(convstore.NotFound):
            await store.for_user(uuid.uuid4()).conversations.create(title="x")


class TestList:
    async def test_most_recent_activity_first(self, me: UserScope) -> None:
        a = await make_conversation(me)
        b = await make_conversation(me)
        c = await make_conversation(me)
        await me.messages.append(a.id, role="user", content="bump a")
        page = await me.conversations.list()
        assert [x.id for x in page.items] == [a.id, c.id, b.id]
        await me.conversations.update(b.id, title="renamed")
        assert [x.id for x in (await me.conversations.list()).items] == [b.id, a.id, c.id]

    async def test_pages_through_every_conversation_once(self, me: UserScope) -> None:
        made = [await make_conversation(me) for _ in range(23)]
        seen: list[uuid.UUID] = []
        page = await me.conversations.list(limit=5)
        seen.extend(x.id for x in page.items)
        while page.has_more:
            assert page.next_cursor is not None
            page = await me.conversations.list(limit=5, cursor=page.next_cursor)
            seen.extend(x.id for x in page.items)
        assert seen == [c.id for c in reversed(made)]
        assert page.next_cursor is None

    async def test_deleted_conversations_only_with_include_deleted(self, me: UserScope) -> None:
        live = await make_conversation(me)
        gone = await make_conversation(me)
        await me.conversations.delete(gone.id)
        assert [x.id for x in (await me.conversations.list()).items] == [live.id]
        everything = await me.conversations.list(include_deleted=True)
        assert {x.id for x in everything.items} == {live.id, gone.id}
        deleted = next(x for x in everything.items if x.id == gone.id)
        assert deleted.deleted_at is not None

    async def test_cursor_of_the_deleted_listing_is_refused_by_the_live_one(
        self, me: UserScope
    ) -> None:
        for _ in range(3):
            await make_conversation(me)
        page = await me.conversations.list(limit=1, include_deleted=True)
        assert page.next_cursor is not None
        with pytest.raises(convstore.InvalidInput):
            await me.conversations.list(limit=1, cursor=page.next_cursor)

    @pytest.mark.parametrize(
        "key",
        [
            ["2026-01-01T00:00:00", "0"],
            ["2026-01-01T00:00:00", str(uuid.UUID(int=1))],
            ["yesterday", str(uuid.UUID(int=1))],
            ["2026-01-01T00:00:00+00:00"],
            ["0001-01-01T00:00:00+01:00", str(uuid.UUID(int=1))],
            ["9999-12-31T23:59:59-01:00", str(uuid.UUID(int=1))],
        ],
    )
    async def test_forged_cursor_is_invalid_input(self, me: UserScope, key: list[str]) -> None:
        """Including timestamps that leave the calendar once converted to UTC."""
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.conversations.list(cursor=encode_cursor("conversations:0", key))
        assert exc.value.fields == ["cursor"]

    @pytest.mark.parametrize("at", ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
    async def test_a_cursor_at_the_ends_of_the_calendar_is_a_position(
        self, me: UserScope, at: str
    ) -> None:
        await me.conversations.create(title="c")
        page = await me.conversations.list(
            cursor=encode_cursor("conversations:0", [at, str(uuid.UUID(int=0))])
        )
        assert len(page.items) == (1 if at.startswith("9999") else 0)


class TestUpdate:
    async def test_title_and_metadata_change_independently(self, me: UserScope) -> None:
        conv = await me.conversations.create(title="old", metadata={"a": "1"})
        renamed = await me.conversations.update(conv.id, title="new")
        assert (renamed.title, renamed.metadata) == ("new", {"a": "1"})
        replaced = await me.conversations.update(conv.id, metadata={"b": 2})
        assert (replaced.title, replaced.metadata) == ("new", {"b": 2})
        cleared = await me.conversations.update(conv.id, title=None)
        assert cleared.title is None

    async def test_nothing_to_change_returns_it_unchanged(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        assert await me.conversations.update(conv.id) == conv

    async def test_deleted_conversation_cannot_be_updated(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        await me.conversations.delete(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.conversations.update(conv.id, title="x")


class TestSoftDeleteRestorePurge:
    async def test_soft_delete_hides_the_conversation_and_its_messages(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        stored = await make_messages(me, conv.id, 4)
        await me.conversations.delete(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.conversations.get(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.messages.history(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.messages.list(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.messages.get(conv.id, stored[0].id)
        with pytest.raises(convstore.NotFound):
            await me.messages.update(conv.id, stored[0].id, content="x")
        with pytest.raises(convstore.NotFound):
            await me.messages.delete(conv.id, stored[0].id)
        with pytest.raises(convstore.NotFound):
            await me.conversations.delete(conv.id)
        hidden = await me.conversations.get(conv.id, include_deleted=True)
        assert hidden.deleted_at is not None

    async def test_restore_brings_everything_back(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        stored = await make_messages(me, conv.id, 4)
        await me.conversations.delete(conv.id)
        restored = await me.conversations.restore(conv.id)
        assert restored.deleted_at is None
        assert restored.messages_count == 4
        assert await me.messages.history(conv.id) == stored
        assert conv.id in [x.id for x in (await me.conversations.list()).items]
        assert (await me.conversations.restore(conv.id)).id == conv.id, "restoring twice is fine"

    async def test_purge_removes_conversation_and_messages_for_good(
        self, store: Store, me: UserScope
    ) -> None:
        conv = await make_conversation(me)
        await make_messages(me, conv.id, 8)
        await me.conversations.delete(conv.id)
        await me.conversations.purge(conv.id)
        assert await _rows(store, "messages", "conversation_id", conv.id) == 0
        assert await _rows(store, "conversations", "id", conv.id) == 0
        with pytest.raises(convstore.NotFound):
            await me.conversations.restore(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.conversations.purge(conv.id)

    async def test_purge_works_on_a_live_conversation_with_threaded_messages(
        self, store: Store, me: UserScope
    ) -> None:
        conv = await make_conversation(me)
        (root,) = await make_messages(me, conv.id, 1)
        await me.messages.append(conv.id, role="assistant", content="re", parent_id=root.id)
        await me.conversations.purge(conv.id)
        assert await _rows(store, "messages", "conversation_id", conv.id) == 0


class TestUserCascade:
    async def test_deleting_a_user_removes_everything_they_own(
        self, store: Store, me: UserScope, them: UserScope
    ) -> None:
        mine = await make_conversation(me)
        await make_messages(me, mine.id, 8)
        await me.tasks.create(title="mine")
        theirs = await make_conversation(them)
        await make_messages(them, theirs.id, 4)
        await store.users.delete(me.user_id)
        for table in ("conversations", "messages", "tasks", "refresh_tokens"):
            assert await _rows(store, table, "user_id", me.user_id) == 0, table
        assert await _rows(store, "messages", "user_id", them.user_id) == 4
        with pytest.raises(convstore.NotFound):
            await store.users.get(me.user_id)
