"""Messages: append, order, paging, update, soft delete, concurrency."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from sqlalchemy import text

import convstore
from convstore import Store, UserScope
from convstore.conversations.schemas import MessageCreate, MessageRead
from convstore.conversations.service import title_from_message
from convstore.kit.pagination import encode_cursor
from tests.factories import make_conversation, make_messages, tool_turn


async def _page_all(me: UserScope, conv_id: uuid.UUID, size: int, direction: str) -> list[int]:
    """Every seq, reached by following next_cursor from the newest page or from the start."""
    seqs: list[int] = []
    page = await (
        me.messages.list(conv_id, limit=size)
        if direction == "back"
        else me.messages.list(conv_id, limit=size, after=0)
    )
    pages = [page]
    while page.has_more:
        assert page.next_cursor is not None
        page = await me.messages.list(conv_id, limit=size, cursor=page.next_cursor)
        pages.append(page)
    assert page.next_cursor is None
    for p in reversed(pages) if direction == "back" else pages:
        seqs.extend(m.seq for m in p.items)
    return seqs


class TestAppend:
    async def test_first_message_gets_seq_one_and_updates_the_conversation(
        self, me: UserScope
    ) -> None:
        conv = await me.conversations.create()
        msg = await me.messages.append(conv.id, role="user", content="hello")
        after = await me.conversations.get(conv.id)
        assert msg.seq == 1
        assert msg.status == "sent"
        assert after.messages_count == 1
        assert after.last_message_at == msg.created_at
        assert after.updated_at >= conv.updated_at

    async def test_untitled_conversation_takes_its_title_from_the_first_user_message(
        self, me: UserScope
    ) -> None:
        conv = await me.conversations.create()
        await me.messages.append(conv.id, role="system", content="You are helpful.")
        await me.messages.append(conv.id, role="user", content="Plan   my\nweek please")
        await me.messages.append(conv.id, role="user", content="something else")
        assert (await me.conversations.get(conv.id)).title == "Plan my week please"

    async def test_long_first_message_gives_a_title_cut_at_a_word(self, me: UserScope) -> None:
        conv = await me.conversations.create()
        await me.messages.append(conv.id, role="user", content="word " * 40)
        title = (await me.conversations.get(conv.id)).title
        assert title is not None
        assert title.endswith("…")
        assert len(title) <= 60
        assert "wor…" not in title

    async def test_explicit_title_is_kept(self, me: UserScope) -> None:
        conv = await me.conversations.create(title="Mine")
        await me.messages.append(conv.id, role="user", content="hello")
        assert (await me.conversations.get(conv.id)).title == "Mine"

    async def test_tool_turn_round_trips(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        stored = await me.messages.append_many(conv.id, tool_turn("call_abc"))
        read = await me.messages.history(conv.id)
        assert read == stored
        assert [m.role for m in read] == ["user", "assistant", "tool", "assistant"]
        assert read[1].tool_calls is not None
        assert read[1].tool_calls[0].id == "call_abc"
        assert read[1].tool_calls[0].arguments == {"title": "buy milk", "due": "tomorrow"}
        assert read[2].tool_call_id == "call_abc"
        assert read[2].tool_results is not None
        assert read[2].tool_results[0].output == {"ok": True}
        assert read[3].usage == {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}
        assert [m.status for m in read] == ["sent", "complete", "complete", "complete"]

    async def test_append_many_accepts_models_and_dicts(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        stored = await me.messages.append_many(
            conv.id,
            [MessageCreate(role="user", content="a"), {"role": "assistant", "content": "b"}],
        )
        assert [(m.seq, m.content) for m in stored] == [(1, "a"), (2, "b")]

    async def test_a_batch_stores_what_each_message_holds(self, me: UserScope) -> None:
        """Whatever the batch's shape (fields shared by every message or not, equal but not
        the same values), each message is stored as given."""
        conv = await make_conversation(me)
        shared = {"source": "import"}
        batch = [
            {"role": "user", "content": "one", "metadata": {"n": 1}},
            {"role": "user", "content": "two", "metadata": {"n": True}},
            {"role": "user", "content": "three", "metadata": shared},
            {
                "role": "assistant",
                "content": "four",
                "metadata": shared,
                "usage": {"total_tokens": 3},
            },
        ]
        await me.messages.append_many(conv.id, batch)
        await me.messages.append_many(conv.id, [{"role": "user", "content": c} for c in "xyz"])
        read = await me.messages.history(conv.id)
        assert [(m.seq, m.role, m.content) for m in read] == [
            (1, "user", "one"),
            (2, "user", "two"),
            (3, "user", "three"),
            (4, "assistant", "four"),
            (5, "user", "x"),
            (6, "user", "y"),
            (7, "user", "z"),
        ]
        metadata = [m.metadata for m in read[:4]]
        assert metadata == [{"n": 1}, {"n": True}, shared, shared]
        assert type(metadata[0]["n"]) is int
        assert metadata[1]["n"] is True
        assert [m.usage for m in read[:4]] == [None, None, None, {"total_tokens": 3}]
        assert len({m.created_at for m in read[4:]}) == 1

    async def test_second_answer_to_the_same_tool_call_is_a_conflict(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        await me.messages.append_many(conv.id, tool_turn("call_1"))
        with pytest.raises(convstore.Conflict):
            await me.messages.append(conv.id, role="tool", tool_call_id="call_1", content="again")
        assert (await me.conversations.get(conv.id)).messages_count == 4

    async def test_parent_must_be_a_message_of_the_same_conversation(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        other = await make_conversation(me)
        (parent,) = await make_messages(me, other.id, 1)
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.append(conv.id, role="user", content="x", parent_id=parent.id)
        assert exc.value.fields == ["parent_id"]
        (root,) = await make_messages(me, conv.id, 1)
        child = await me.messages.append(conv.id, role="user", content="y", parent_id=root.id)
        assert child.parent_id == root.id

    async def test_a_batch_with_one_bad_parent_names_it_and_stores_nothing(
        self, me: UserScope
    ) -> None:
        conv = await make_conversation(me)
        root, gone = await make_messages(me, conv.id, 2)
        await me.messages.delete(conv.id, gone.id)
        batch = [
            {"role": "user", "content": "a", "parent_id": root.id},
            {"role": "assistant", "content": "b", "parent_id": gone.id},
        ]
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.append_many(conv.id, batch)
        assert exc.value.fields == ["1.parent_id"]
        assert (await me.conversations.get(conv.id)).messages_count == 2
        assert [m.seq for m in await me.messages.history(conv.id)] == [1]
        twice = [{"role": "user", "content": "c", "parent_id": root.id}] * 2
        stored = await me.messages.append_many(conv.id, twice)
        assert [(m.seq, m.parent_id) for m in stored] == [(3, root.id), (4, root.id)]

    async def test_a_missing_conversation_wins_over_a_bad_parent(self, me: UserScope) -> None:
        with pytest.raises(convstore.NotFound):
            await me.messages.append(uuid.uuid4(), role="user", content="x", parent_id=uuid.uuid4())

    async def test_appending_to_a_deleted_conversation_fails_and_writes_nothing(
        self, me: UserScope
    ) -> None:
        conv = await make_conversation(me)
        await make_messages(me, conv.id, 2)
        await me.conversations.delete(conv.id)
        with pytest.raises(convstore.NotFound):
            await me.messages.append(conv.id, role="user", content="late")
        with pytest.raises(convstore.NotFound):
            await me.messages.append_many(conv.id, [{"role": "user", "content": "late"}])
        restored = await me.conversations.restore(conv.id)
        assert restored.messages_count == 2

    async def test_appending_to_a_missing_conversation_fails(self, me: UserScope) -> None:
        with pytest.raises(convstore.NotFound):
            await me.messages.append(uuid.uuid4(), role="user", content="x")

    async def test_batch_whose_first_message_carries_tool_calls(self, me: UserScope) -> None:
        # A batch is one array per column on PostgreSQL: a list-valued JSON first element must
        # not be taken for a nested array.
        conv = await make_conversation(me)
        stored = await me.messages.append_many(conv.id, tool_turn("call_first")[1:])
        read = await me.messages.history(conv.id)
        assert read == stored
        assert [m.role for m in read] == ["assistant", "tool", "assistant"]
        assert read[0].tool_calls is not None
        assert read[0].tool_calls[0].id == "call_first"
        assert read[0].tool_calls[0].arguments == {"title": "buy milk", "due": "tomorrow"}

    async def test_json_values_beyond_64_bits_round_trip(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        big = {"n": 2**70, "neg": -(2**65), "list": [2**64, 1.5, "ü"]}
        stored = await me.messages.append(conv.id, role="user", content="x", metadata=big)
        assert stored.metadata == big
        (read,) = await me.messages.history(conv.id)
        assert read.metadata == big
        batch = await me.messages.append_many(
            conv.id, [{"role": "user", "content": "y", "metadata": big}]
        )
        assert batch[0].metadata == big
        assert (await me.messages.history(conv.id))[-1].metadata == big

    async def test_empty_batch_is_a_no_op(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        assert await me.messages.append_many(conv.id, []) == []
        assert (await me.conversations.get(conv.id)).messages_count == 0


class TestOrder:
    async def test_a_thousand_messages_in_one_transaction_keep_append_order(
        self, me: UserScope
    ) -> None:
        conv = await make_conversation(me)
        items = [
            {"role": "user" if i % 2 else "assistant", "content": f"m{i}"} for i in range(1000)
        ]
        stored = await me.messages.append_many(conv.id, items)
        assert len({m.created_at for m in stored}) == 1, "one transaction, one timestamp"
        expected = list(range(1, 1001))
        history = await me.messages.history(conv.id, limit=1000)
        assert [m.seq for m in history] == expected
        assert [m.content for m in history] == [f"m{i}" for i in range(1000)]
        for size in (1, 7, 100):
            assert await _page_all(me, conv.id, size, "back") == expected, size
            assert await _page_all(me, conv.id, size, "forward") == expected, size

    async def test_history_returns_the_last_n_oldest_first(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        await make_messages(me, conv.id, 30)
        assert [m.seq for m in await me.messages.history(conv.id, limit=5)] == [26, 27, 28, 29, 30]

    async def test_before_and_after_page_around_a_seq(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        await make_messages(me, conv.id, 10)
        before = await me.messages.list(conv.id, limit=3, before=5)
        after = await me.messages.list(conv.id, limit=3, after=5)
        assert [m.seq for m in before.items] == [2, 3, 4]
        assert before.has_more
        assert [m.seq for m in after.items] == [6, 7, 8]
        assert after.has_more
        tail = await me.messages.list(conv.id, limit=5, after=8)
        assert [m.seq for m in tail.items] == [9, 10]
        assert not tail.has_more
        assert tail.next_cursor is None

    async def test_soft_deleted_messages_are_skipped_without_breaking_pages(
        self, me: UserScope
    ) -> None:
        conv = await make_conversation(me)
        stored = await make_messages(me, conv.id, 10)
        for seq in (3, 4, 8):
            await me.messages.delete(conv.id, stored[seq - 1].id)
        expected = [1, 2, 5, 6, 7, 9, 10]
        assert await _page_all(me, conv.id, 2, "back") == expected
        assert await _page_all(me, conv.id, 3, "forward") == expected
        assert (await me.conversations.get(conv.id)).messages_count == 10

    async def test_cursor_of_another_conversation_is_refused(self, me: UserScope) -> None:
        a, b = await make_conversation(me), await make_conversation(me)
        await make_messages(me, a.id, 5)
        page = await me.messages.list(a.id, limit=2)
        assert page.next_cursor is not None
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.list(b.id, limit=2, cursor=page.next_cursor)
        assert exc.value.fields == ["cursor"]

    @pytest.mark.parametrize("cursor", ["", "garbage", "eyJzIjoxfQ", "x" * 600])
    async def test_malformed_cursor_is_invalid_input(self, me: UserScope, cursor: str) -> None:
        conv = await make_conversation(me)
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.list(conv.id, cursor=cursor)
        assert exc.value.fields == ["cursor"]

    @pytest.mark.parametrize("seq", [-1, 2**31, 2**63 - 1, 2**63, 2**64 - 1])
    @pytest.mark.parametrize("direction", ["after", "before"])
    async def test_a_forged_cursor_with_a_seq_out_of_range_is_invalid_input(
        self, me: UserScope, direction: str, seq: int
    ) -> None:
        """A seq is a PostgreSQL ``integer`` (and SQLite's is 64-bit): a cursor naming one
        beyond 2**31 - 1 cannot come from convstore, and is refused like any forgery."""
        conv = await make_conversation(me)
        await make_messages(me, conv.id, 3)
        page = await me.messages.list(conv.id, limit=1)
        assert page.next_cursor is not None
        forged = encode_cursor(f"messages:{conv.id}", [direction, seq])
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.list(conv.id, limit=1, cursor=forged)
        assert exc.value.fields == ["cursor"]
        edge = encode_cursor(f"messages:{conv.id}", [direction, 2**31 - 1])
        assert len((await me.messages.list(conv.id, cursor=edge)).items) == (
            3 if direction == "before" else 0
        )

    @pytest.mark.parametrize("seq", [-1, 2**31, 2**63, 10**30])
    @pytest.mark.parametrize("direction", ["after", "before"])
    async def test_a_position_out_of_range_is_invalid_input(
        self, me: UserScope, direction: str, seq: int
    ) -> None:
        conv = await make_conversation(me)
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.list(conv.id, **{direction: seq})
        assert exc.value.fields == [direction]
        assert (await me.messages.list(conv.id, **{direction: 2**31 - 1})).items == []

    @pytest.mark.parametrize("limit", [0, -1, 101, 10**9])
    async def test_page_size_is_bounded(self, me: UserScope, limit: int) -> None:
        conv = await make_conversation(me)
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.list(conv.id, limit=limit)
        assert exc.value.fields == ["limit"]

    async def test_at_most_one_position_is_accepted(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        with pytest.raises(convstore.InvalidInput):
            await me.messages.list(conv.id, after=1, before=5)


class TestUpdateAndDelete:
    async def test_finalising_a_streamed_reply(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        draft = await me.messages.append(conv.id, role="assistant", status="streaming")
        done = await me.messages.update(
            conv.id,
            draft.id,
            content="Here you go.",
            status="complete",
            usage={"completion_tokens": 4},
        )
        assert (done.seq, done.content, done.status) == (1, "Here you go.", "complete")
        assert done.usage == {"completion_tokens": 4}
        assert done.updated_at > draft.updated_at
        assert await me.messages.get(conv.id, draft.id) == done

    async def test_update_leaves_other_fields_alone(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        (_, call, _, _) = await me.messages.append_many(conv.id, tool_turn("call_9"))
        changed = await me.messages.update(conv.id, call.id, metadata={"edited": True})
        assert changed.tool_calls == call.tool_calls
        assert changed.metadata == {"edited": True}

    async def test_tool_calls_only_on_assistant_messages(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        (msg,) = await make_messages(me, conv.id, 1)
        with pytest.raises(convstore.InvalidInput) as exc:
            await me.messages.update(
                conv.id, msg.id, tool_calls=[{"id": "c", "name": "x", "arguments": {}}]
            )
        assert exc.value.fields == ["tool_calls"]

    async def test_deleted_message_is_gone_everywhere(self, me: UserScope) -> None:
        conv = await make_conversation(me)
        stored = await make_messages(me, conv.id, 3)
        await me.messages.delete(conv.id, stored[1].id)
        with pytest.raises(convstore.NotFound):
            await me.messages.get(conv.id, stored[1].id)
        with pytest.raises(convstore.NotFound):
            await me.messages.update(conv.id, stored[1].id, content="x")
        with pytest.raises(convstore.NotFound):
            await me.messages.delete(conv.id, stored[1].id)
        assert [m.seq for m in await me.messages.history(conv.id)] == [1, 3]

    async def test_message_is_reached_only_through_its_conversation(self, me: UserScope) -> None:
        a, b = await make_conversation(me), await make_conversation(me)
        (msg,) = await make_messages(me, a.id, 1)
        with pytest.raises(convstore.NotFound):
            await me.messages.get(b.id, msg.id)


async def _count(store: Store, conv_id: uuid.UUID) -> tuple[int, int, int, int]:
    async with store.db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM messages "
                    "WHERE conversation_id = :c"
                ),
                {"c": conv_id if store.db.dialect == "postgresql" else conv_id.hex},
            )
        ).one()
    return row[0], row[1], row[2], row[3]


class TestConcurrency:
    async def test_eight_writers_two_hundred_appends_each(
        self, store: Store, me: UserScope
    ) -> None:
        conv = await make_conversation(me)

        async def writer(w: int) -> list[MessageRead]:
            return [
                await me.messages.append(conv.id, role="user", content=f"w{w}-{i}")
                for i in range(200)
            ]

        results = await asyncio.gather(*(writer(w) for w in range(8)))
        seqs = sorted(m.seq for batch in results for m in batch)
        assert seqs == list(range(1, 1601))
        for batch in results:
            assert [m.seq for m in batch] == sorted(m.seq for m in batch), "a writer's own order"
        assert (await me.conversations.get(conv.id)).messages_count == 1600
        assert await _count(store, conv.id) == (1600, 1600, 1, 1600)
        history = await me.messages.history(conv.id, limit=1000)
        assert [m.seq for m in history] == list(range(601, 1601))

    async def test_concurrent_batches_interleave_whole(self, store: Store, me: UserScope) -> None:
        conv = await make_conversation(me)

        async def writer(w: int) -> None:
            for i in range(10):
                await me.messages.append_many(
                    conv.id, [{"role": "user", "content": f"{w}:{i}:{k}"} for k in range(5)]
                )

        await asyncio.gather(*(writer(w) for w in range(8)))
        history = await me.messages.history(conv.id, limit=400)
        assert [m.seq for m in history] == list(range(1, 401))
        for start in range(0, 400, 5):
            batch = [m.content.rsplit(":", 1)[0] for m in history[start : start + 5]]
            assert len(set(batch)) == 1, "a batch is contiguous"
        assert await _count(store, conv.id) == (400, 400, 1, 400)


def _title_by_regex(content: str) -> str:
    """The title rule stated plainly: collapse all whitespace, then cut (the reference)."""
    words = re.sub(r"\s+", " ", content).strip()
    if len(words) <= 60:
        return words
    cut = words[:59]
    if " " in cut[30:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


@pytest.mark.parametrize(
    "content",
    [
        "",
        "   ",
        "buy milk",
        "word " * 40,
        " \n\t " * 100 + "late words after a long run of whitespace " * 3,
        "a" * 300,
        "x" * 59 + " tail",
        "\u2003em\u2003space\u00a0nbsp\u2028line " * 20,
        "Hello,   world;   " * 10,
        " " * 239 + "b" * 100,
    ],
)
def test_title_from_message_collapses_whitespace_and_cuts_at_a_word(content: str) -> None:
    assert title_from_message(content) == _title_by_regex(content)
