"""Bad input is refused with an ``InvalidInput`` naming the field, and changes nothing.

"Changes nothing" is checked on the raw rows: every row of the acting user in ``users``,
``conversations``, ``messages`` and ``tasks`` is read with plain SQL before and after the
rejected call and must be identical (``messages_count``, ``updated_at``, titles, contents…).
Accepted text is read back and compared exactly: convstore never escapes or normalizes it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Uuid, bindparam, text

from convstore import InvalidInput, Store, UserScope
from convstore.conversations.schemas import ConversationRead, ToolCall
from convstore.users.schemas import UserRead
from tests.factories import make_conversation, make_messages, make_task

_TABLES = ("users", "conversations", "messages", "tasks")
_CALL = {"id": "call_1", "name": "add_task", "arguments": {"title": "milk"}}


async def _rows(store: Store, user_id: uuid.UUID) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the user owns, straight from the database."""
    uid = bindparam("uid", user_id, type_=Uuid())
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with store.db.engine.connect() as conn:
        for table in _TABLES:
            column = "id" if table == "users" else "user_id"
            stmt = text(f"SELECT * FROM {table} WHERE {column} = :uid ORDER BY id")
            result = await conn.execute(stmt.bindparams(uid))
            rows[table] = [tuple(r) for r in result.all()]
    return rows


async def _rejected(
    store: Store, user: UserRead, call: Callable[[], Awaitable[object]]
) -> InvalidInput:
    """Run ``call``, expect InvalidInput, and check that none of the user's rows changed."""
    before = await _rows(store, user.id)
    assert len(before["users"]) == 1  # the raw query does find the user's rows
    with pytest.raises(InvalidInput) as exc:
        await call()
    assert await _rows(store, user.id) == before
    return exc.value


@pytest.fixture
async def conv(me: UserScope) -> ConversationRead:
    """A conversation that already has a tool turn and a user message in it."""
    conversation = await make_conversation(me)
    await make_messages(me, conversation.id, 5)
    return await me.conversations.get(conversation.id)


class TestConversationTitle:
    @pytest.mark.parametrize(
        "title",
        [
            pytest.param("", id="empty"),
            pytest.param("   ", id="spaces"),
            pytest.param("a" * 256, id="256-chars"),
            pytest.param("first\nsecond", id="newline"),
            pytest.param("tab\there", id="tab"),
            pytest.param("nul\x00", id="nul"),
            pytest.param("esc\x1b[31m", id="escape"),
            pytest.param("lone \ud800", id="lone-surrogate"),
        ],
    )
    async def test_bad_title_is_refused_on_create_and_update(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead, title: str
    ) -> None:
        err = await _rejected(store, user, lambda: me.conversations.create(title=title))
        assert err.fields == ["title"]
        err = await _rejected(store, user, lambda: me.conversations.update(conv.id, title=title))
        assert err.fields == ["title"]
        assert (await me.conversations.get(conv.id)).title == conv.title

    async def test_255_chars_is_accepted(self, me: UserScope) -> None:
        title = "é" * 254 + "z"
        created = await me.conversations.create(title=title)
        assert (await me.conversations.get(created.id)).title == title


class TestTaskText:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            pytest.param({"title": ""}, "title", id="title-empty"),
            pytest.param({"title": " \u3000 "}, "title", id="title-blank"),
            pytest.param({"title": "t" * 201}, "title", id="title-201"),
            pytest.param({"title": "a\nb"}, "title", id="title-newline"),
            pytest.param({"description": "d" * 1001}, "description", id="description-1001"),
            pytest.param({"description": "x\x00y"}, "description", id="description-nul"),
            pytest.param({"priority": "urgent"}, "priority", id="priority"),
        ],
    )
    async def test_bad_field_is_refused_on_create_and_update(
        self,
        store: Store,
        user: UserRead,
        me: UserScope,
        fields: dict[str, str],
        field: str,
    ) -> None:
        task = await make_task(me)
        create: dict[str, Any] = {"title": "ok", **fields}
        err = await _rejected(store, user, lambda: me.tasks.create(**create))
        assert err.fields == [field]
        err = await _rejected(store, user, lambda: me.tasks.update(task.id, **fields))
        assert err.fields == [field]

    async def test_limits_exactly_are_accepted(self, me: UserScope) -> None:
        title, description = "t" * 200, "<b>d</b>\n\t" + "d" * 990
        task = await me.tasks.create(title=title, description=description)
        stored = await me.tasks.get(task.id)
        assert (stored.title, stored.description) == (title, description)


class TestMessageContent:
    @pytest.mark.parametrize(
        ("role", "extra", "limit"),
        [
            pytest.param("user", {}, "max_user_message_chars", id="user"),
            pytest.param("system", {}, "max_user_message_chars", id="system"),
            pytest.param("assistant", {}, "max_assistant_message_chars", id="assistant"),
            pytest.param("tool", {"tool_call_id": "c"}, "max_assistant_message_chars", id="tool"),
        ],
    )
    async def test_exactly_the_limit_is_accepted_one_more_is_refused(
        self,
        store: Store,
        user: UserRead,
        me: UserScope,
        conv: ConversationRead,
        role: str,
        extra: dict[str, Any],
        limit: str,
    ) -> None:
        size = getattr(store.settings.limits, limit)
        too_long = "x" * (size + 1)
        err = await _rejected(
            store, user, lambda: me.messages.append(conv.id, role=role, content=too_long, **extra)
        )
        assert err.fields == ["content"]
        stored = await me.messages.append(conv.id, role=role, content="y" * size, **extra)
        assert stored.seq == conv.messages_count + 1
        assert (await me.messages.get(conv.id, stored.id)).content == "y" * size

    async def test_default_limits(self, store: Store) -> None:
        assert store.settings.limits.max_user_message_chars == 10_000
        assert store.settings.limits.max_assistant_message_chars == 200_000

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param("nul \x00 byte", id="nul"),
            pytest.param("start of heading \x01", id="x01"),
            pytest.param("\x1b[2J clear screen", id="escape"),
            pytest.param("delete \x7f", id="del"),
            pytest.param("form feed \x0c", id="form-feed"),
            pytest.param("lone \ud800 surrogate", id="lone-high-surrogate"),
            pytest.param("lone \udfff surrogate", id="lone-low-surrogate"),
        ],
    )
    @pytest.mark.parametrize("role", ["user", "assistant"])
    async def test_control_characters_are_refused(
        self,
        store: Store,
        user: UserRead,
        me: UserScope,
        conv: ConversationRead,
        role: str,
        content: str,
    ) -> None:
        err = await _rejected(
            store, user, lambda: me.messages.append(conv.id, role=role, content=content)
        )
        assert err.fields == ["content"]

    async def test_control_characters_are_refused_on_update(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        (last,) = await me.messages.history(conv.id, limit=1)
        err = await _rejected(
            store, user, lambda: me.messages.update(conv.id, last.id, content="bad\x00")
        )
        assert err.fields == ["content"]

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param("tab\there", id="tab"),
            pytest.param("line 1\nline 2\r\nline 3\rend\n", id="line-breaks"),
            pytest.param("  leading and trailing spaces  ", id="outer-spaces"),
            pytest.param("hi 👋🏽 family 👨‍👩‍👧 flag 🇳🇱", id="emoji"),
            pytest.param("<script>alert(1)</script>", id="html"),
            pytest.param("&amp; &lt;b&gt; \"quoted\" 'single'", id="entities"),
            pytest.param("'; DROP TABLE messages; --", id="sql"),
            pytest.param("cafe\u0301 vs caf\u00e9", id="unnormalized"),
            pytest.param("back\\slash \\n \\u0000 %s {0} $1", id="escapes-literal"),
        ],
    )
    async def test_text_is_stored_exactly_as_given(
        self, me: UserScope, conv: ConversationRead, content: str
    ) -> None:
        stored = await me.messages.append(conv.id, role="user", content=content)
        assert stored.content == content
        assert (await me.messages.get(conv.id, stored.id)).content == content
        (last,) = await me.messages.history(conv.id, limit=1)
        assert last.content == content
        task = await me.tasks.create(title="t", description=content)
        assert (await me.tasks.get(task.id)).description == content


class TestMessageEnums:
    async def test_unknown_role_is_refused(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        err = await _rejected(
            store, user, lambda: me.messages.append(conv.id, role="robot", content="beep")
        )
        assert err.fields == ["role"]

    async def test_unknown_status_is_refused(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        err = await _rejected(
            store,
            user,
            lambda: me.messages.append(conv.id, role="assistant", content="x", status="done"),
        )
        assert err.fields == ["status"]
        (last,) = await me.messages.history(conv.id, limit=1)
        err = await _rejected(
            store, user, lambda: me.messages.update(conv.id, last.id, status="finished")
        )
        assert err.fields == ["status"]


def _calls(n: int) -> list[dict[str, Any]]:
    return [{"id": f"call_{i}", "name": "f", "arguments": {}} for i in range(n)]


class TestToolCalls:
    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            pytest.param(
                {"tool_calls": [{"name": "f", "arguments": {}}]}, "tool_calls.0.id", id="no-id"
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "arguments": {}}]}, "tool_calls.0.name", id="no-name"
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "name": "add task", "arguments": {}}]},
                "tool_calls.0.name",
                id="name-with-space",
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "name": "f", "arguments": "{not json"}]},
                "tool_calls.0.arguments",
                id="arguments-not-json",
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "name": "f", "arguments": "[1, 2]"}]},
                "tool_calls.0.arguments",
                id="arguments-json-array",
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "name": "f", "arguments": '"text"'}]},
                "tool_calls.0.arguments",
                id="arguments-json-string",
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "name": "f", "arguments": [1, 2]}]},
                "tool_calls.0.arguments",
                id="arguments-list",
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "name": "f", "arguments": {"x": "a" * 65_529}}]},
                "tool_calls.0.arguments",
                id="arguments-over-64KiB",
            ),
            pytest.param(
                {"tool_calls": [{"id": "c", "type": "function", "function": {"arguments": "{}"}}]},
                "tool_calls.0.name",
                id="chat-completions-no-name",
            ),
            pytest.param({"tool_calls": _calls(65)}, "tool_calls", id="65-calls"),
            pytest.param(
                {"tool_calls": [_CALL, {**_CALL, "name": "other"}]},
                "tool_calls",
                id="duplicate-ids",
            ),
            pytest.param(
                {"role": "user", "content": "hi", "tool_calls": [_CALL]},
                "tool_calls",
                id="on-user-message",
            ),
            pytest.param({"role": "tool", "content": "{}"}, "tool_call_id", id="tool-without-id"),
            pytest.param(
                {"role": "user", "content": "hi", "tool_call_id": "call_1"},
                "tool_call_id",
                id="tool-call-id-on-user",
            ),
            pytest.param(
                {"role": "tool", "tool_call_id": "has space"}, "tool_call_id", id="bad-call-id"
            ),
        ],
    )
    async def test_malformed_is_refused(
        self,
        store: Store,
        user: UserRead,
        me: UserScope,
        conv: ConversationRead,
        fields: dict[str, Any],
        field: str,
    ) -> None:
        item = {"role": "assistant", "content": "", **fields}
        err = await _rejected(store, user, lambda: me.messages.append(conv.id, **item))
        assert err.fields == [field]

    async def test_64_calls_and_64_KiB_arguments_are_accepted(
        self, me: UserScope, conv: ConversationRead
    ) -> None:
        stored = await me.messages.append(
            conv.id, role="assistant", content="", tool_calls=_calls(64)
        )
        assert len((await me.messages.get(conv.id, stored.id)).tool_calls or []) == 64
        # {"x":"…"} is 8 characters plus the value: exactly 65,536 once encoded.
        arguments = {"x": "a" * 65_528}
        assert len(json.dumps(arguments, separators=(",", ":"))) == 65_536
        call = {"id": "c", "name": "f", "arguments": arguments}
        stored = await me.messages.append(conv.id, role="assistant", tool_calls=[call])
        calls = (await me.messages.get(conv.id, stored.id)).tool_calls
        assert calls is not None
        assert calls[0].arguments == arguments

    async def test_arguments_over_64_KiB_of_utf8_are_refused(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        call = {"id": "c", "name": "f", "arguments": {"x": "é" * 40_000}}
        assert len(json.dumps(call["arguments"], ensure_ascii=False).encode()) > 65_536
        err = await _rejected(
            store, user, lambda: me.messages.append(conv.id, role="assistant", tool_calls=[call])
        )
        assert err.fields == ["tool_calls.0.arguments"]

    async def test_every_accepted_form_reads_back_as_the_same_tool_call(
        self, me: UserScope, conv: ConversationRead
    ) -> None:
        arguments: dict[str, Any] = {
            "title": "buy milk",
            "due": {"day": "tomorrow"},
            "n": 2,
            "ok": True,
        }
        encoded = json.dumps(arguments)
        forms: list[dict[str, Any]] = [
            {"id": "call_1", "name": "add_task", "arguments": arguments},
            {"id": "call_1", "name": "add_task", "arguments": encoded},
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add_task", "arguments": encoded},
            },
        ]
        expected = ToolCall(id="call_1", type="function", name="add_task", arguments=arguments)
        for form in forms:
            stored = await me.messages.append(conv.id, role="assistant", tool_calls=[form])
            read = await me.messages.get(conv.id, stored.id)
            assert read.tool_calls == [expected]
            assert read.tool_calls[0].arguments == arguments
        history = await me.messages.history(conv.id, limit=3)
        assert [m.tool_calls for m in history] == [[expected]] * 3


class TestMetadata:
    @pytest.mark.parametrize(
        ("metadata", "field"),
        [
            pytest.param({f"k{i}": "v" for i in range(17)}, "metadata", id="17-keys"),
            pytest.param({"k" * 65: "v"}, "metadata", id="65-char-key"),
            pytest.param({"": "v"}, "metadata", id="empty-key"),
            pytest.param({"key": "v" * 513}, "metadata.key", id="513-char-value"),
            pytest.param({"key": ["v" * 300, "w" * 300]}, "metadata.key", id="long-json-value"),
        ],
    )
    async def test_over_the_limits_is_refused(
        self,
        store: Store,
        user: UserRead,
        me: UserScope,
        conv: ConversationRead,
        metadata: dict[str, Any],
        field: str,
    ) -> None:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: me.conversations.create(metadata=metadata),
            lambda: me.conversations.update(conv.id, metadata=metadata),
            lambda: me.messages.append(conv.id, role="user", content="hi", metadata=metadata),
        ]
        for call in calls:
            err = await _rejected(store, user, call)
            assert err.fields == [field]

    async def test_exactly_at_the_limits_is_accepted(
        self, me: UserScope, conv: ConversationRead
    ) -> None:
        metadata: dict[str, Any] = {f"k{i}": "v" for i in range(14)}
        metadata["k" * 64] = "v"
        metadata["long"] = "v" * 512
        assert len(metadata) == 16
        created = await me.conversations.create(metadata=metadata)
        assert (await me.conversations.get(created.id)).metadata == metadata
        stored = await me.messages.append(conv.id, role="user", content="hi", metadata=metadata)
        assert (await me.messages.get(conv.id, stored.id)).metadata == metadata


class TestUnknownFields:
    @pytest.mark.parametrize(
        "field", ["seq", "user_id", "id", "created_at", "updated_at", "deleted_at"]
    )
    async def test_append_refuses_fields_it_does_not_know(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead, field: str
    ) -> None:
        value: Any = 5 if field == "seq" else str(uuid.uuid4())
        err = await _rejected(
            store,
            user,
            lambda: me.messages.append(conv.id, role="user", content="hi", **{field: value}),
        )
        assert err.fields == [field]

    async def test_update_methods_refuse_fields_they_do_not_know(
        self,
        store: Store,
        user: UserRead,
        other_user: UserRead,
        me: UserScope,
        conv: ConversationRead,
    ) -> None:
        task = await make_task(me)
        (last,) = await me.messages.history(conv.id, limit=1)
        cases: list[tuple[Callable[[], Awaitable[object]], str]] = [
            (lambda: me.conversations.update(conv.id, messages_count=0), "messages_count"),
            (lambda: me.conversations.update(conv.id, user_id=other_user.id), "user_id"),
            (lambda: me.messages.update(conv.id, last.id, role="system"), "role"),
            (lambda: me.messages.update(conv.id, last.id, seq=1), "seq"),
            (lambda: me.tasks.update(task.id, user_id=other_user.id), "user_id"),
            (lambda: me.tasks.update(task.id, created_at="2020-01-01T00:00:00Z"), "created_at"),
        ]
        for call, field in cases:
            err = await _rejected(store, user, call)
            assert err.fields == [field]

    async def test_create_refuses_fields_it_does_not_know(
        self, store: Store, user: UserRead, other_user: UserRead, me: UserScope
    ) -> None:
        """``create`` has a closed, typed signature: an unknown keyword is a programming error
        (TypeError, as for any Python function, and flagged by mypy), and nothing is written."""
        extra: dict[str, Any] = {"user_id": other_user.id}
        before = await _rows(store, user.id)
        with pytest.raises(TypeError):
            await me.conversations.create(title="t", **extra)
        with pytest.raises(TypeError):
            await me.tasks.create(title="t", **extra)
        assert await _rows(store, user.id) == before


class TestAppendMany:
    @pytest.mark.parametrize(
        ("bad", "field"),
        [
            pytest.param({"role": "user", "content": "x" * 10_001}, "1.content", id="too-long"),
            pytest.param({"role": "user", "content": "a\x00"}, "1.content", id="nul"),
            pytest.param({"role": "robot", "content": "x"}, "1.role", id="role"),
            pytest.param({"role": "user", "content": "   "}, "1.content", id="blank"),
            pytest.param(
                {"role": "assistant", "tool_calls": [{"id": "c", "name": "a b", "arguments": {}}]},
                "1.tool_calls.0.name",
                id="tool-call-name",
            ),
            pytest.param({"role": "tool", "content": "{}"}, "1.tool_call_id", id="tool-no-id"),
            pytest.param(
                {"role": "user", "content": "x", "metadata": {"k": "v" * 513}},
                "1.metadata.k",
                id="metadata",
            ),
            pytest.param({"role": "user", "content": "x", "seq": 2}, "1.seq", id="unknown-field"),
        ],
    )
    async def test_one_bad_item_names_its_index_and_writes_nothing(
        self,
        store: Store,
        user: UserRead,
        me: UserScope,
        conv: ConversationRead,
        bad: dict[str, Any],
        field: str,
    ) -> None:
        items = [
            {"role": "user", "content": "first"},
            bad,
            {"role": "assistant", "content": "third"},
        ]
        err = await _rejected(store, user, lambda: me.messages.append_many(conv.id, items))
        assert err.fields == [field]
        assert (await me.conversations.get(conv.id)).messages_count == conv.messages_count
        history = await me.messages.history(conv.id)
        assert [m.content for m in history][-1] != "first"
        assert len(history) == conv.messages_count

    async def test_every_bad_item_is_named(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        items = [{"role": "robot"}, {"role": "user", "content": "ok"}]
        err = await _rejected(store, user, lambda: me.messages.append_many(conv.id, items))
        assert err.fields == ["0.role"]

    async def test_single_item_limit_error_names_index(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        items = [{"role": "user", "content": "x" * 10_001}]
        err = await _rejected(store, user, lambda: me.messages.append_many(conv.id, items))
        assert err.fields == ["0.content"]


class TestCursors:
    async def test_conversation_cursor_with_naive_timestamp_is_refused(self, me: UserScope) -> None:
        """A cursor is client input: a forged naive timestamp is invalid input, not a crash."""
        for _ in range(2):
            await make_conversation(me)
        page = await me.conversations.list(limit=1)
        assert page.next_cursor is not None
        cursor = page.next_cursor
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        data["k"][0] = data["k"][0].removesuffix("+00:00")
        forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        with pytest.raises(InvalidInput) as exc:
            await me.conversations.list(limit=1, cursor=forged)
        assert exc.value.fields == ["cursor"]


async def test_row_snapshot_sees_every_table(
    store: Store, user: UserRead, me: UserScope, conv: ConversationRead
) -> None:
    """The "changes nothing" check is only as good as the snapshot: it must see real rows."""
    await make_task(me)
    rows = await _rows(store, user.id)
    assert {t: len(r) for t, r in rows.items()} == {
        "users": 1,
        "conversations": 1,
        "messages": 5,
        "tasks": 1,
    }
    await me.messages.append(conv.id, role="user", content="one more")
    assert await _rows(store, user.id) != rows


class TestJsonPayloadText:
    """JSONB refuses NUL and unpaired surrogates; convstore refuses them first, on both
    databases, in every JSON field — never a 5xx from the database."""

    @pytest.mark.parametrize("bad", ["nul\x00", "\ud800", "esc\x1b"])
    async def test_bad_characters_anywhere_in_json_fields(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead, bad: str
    ) -> None:
        cases: list[tuple[Callable[[], Awaitable[object]], str]] = [
            (lambda: me.conversations.update(conv.id, metadata={"k": bad}), "metadata"),
            (lambda: me.conversations.update(conv.id, metadata={bad: "v"}), "metadata"),
            (
                lambda: me.messages.append(
                    conv.id, role="user", content="x", metadata={"k": [bad]}
                ),
                "metadata",
            ),
            (
                lambda: me.messages.append(
                    conv.id,
                    role="assistant",
                    tool_calls=[{"id": "c9", "name": "f", "arguments": {"nested": {"x": bad}}}],
                ),
                "tool_calls.0.arguments",
            ),
            (lambda: me.messages.append(conv.id, role="assistant", usage={"note": bad}), "usage"),
            (
                lambda: me.messages.append(
                    conv.id,
                    role="tool",
                    tool_call_id="c8",
                    tool_results=[{"tool_call_id": "c8", "output": {"text": bad}}],
                ),
                "tool_results.0.output",
            ),
        ]
        for call, field in cases:
            err = await _rejected(store, user, call)
            assert err.fields[0].startswith(field), (field, err.fields)


def _nested(depth: int) -> Any:
    """``depth`` arrays, one inside the other, around a number."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _nested_text(value: dict[str, Any]) -> str:
    """``value`` (one key, nested arrays around a number) as JSON text, at any depth (the
    ``json`` module cannot write beyond the recursion limit)."""
    ((key, inner),) = value.items()
    depth = 0
    while isinstance(inner, list):
        inner, depth = inner[0], depth + 1
    return f'{{"{key}": {"[" * depth}{inner}{"]" * depth}}}'


class TestJsonNesting:
    """A JSON value (metadata, tool-call arguments, tool results, usage) holds at most 64 levels
    of arrays and objects, the value itself counting as one. Deeper is invalid input naming the
    field, however deep: never a RecursionError, and never a row that cannot be read back."""

    def cases(
        self, me: UserScope, conv: ConversationRead, inner: Any, as_text: bool = False
    ) -> list[tuple[Callable[[], Awaitable[Any]], str]]:
        """Each JSON field holding ``{"k": inner}`` (the arguments also as JSON text)."""
        value = {"k": inner}
        arguments: Any = _nested_text(value) if as_text else value
        call = {"id": f"c{uuid.uuid4().hex[:8]}", "name": "f", "arguments": arguments}
        tool_id = f"t{uuid.uuid4().hex[:8]}"
        result = {"tool_call_id": tool_id, "output": value}
        return [
            (lambda: me.conversations.update(conv.id, metadata=value), "metadata"),
            (
                lambda: me.messages.append(conv.id, role="user", content="x", metadata=value),
                "metadata",
            ),
            (
                lambda: me.messages.append(conv.id, role="assistant", tool_calls=[call]),
                "tool_calls.0.arguments",
            ),
            (lambda: me.messages.append(conv.id, role="assistant", usage=value), "usage"),
            (
                lambda: me.messages.append(
                    conv.id, role="tool", tool_call_id=tool_id, tool_results=[result]
                ),
                "tool_results.0.output",
            ),
        ]

    @pytest.mark.parametrize("depth", [65, 300, 10_000])
    async def test_deeper_than_64_levels_is_refused(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead, depth: int
    ) -> None:
        for call, field in self.cases(me, conv, _nested(depth - 1)):
            err = await _rejected(store, user, call)
            assert err.fields == [field], (depth, err.fields)
            assert "nested deeper than 64 levels" in err.errors[0].message, err.errors

    async def test_an_integer_python_cannot_write_out_is_refused(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead
    ) -> None:
        """More than 4,300 digits: Python refuses to turn it into text (so into JSON)."""
        for call, field in self.cases(me, conv, 10**5_000):
            err = await _rejected(store, user, call)
            assert err.fields == [field], err.fields

    @pytest.mark.parametrize("depth", [65, 3_000])
    async def test_tool_call_arguments_text_deeper_than_64_levels_is_refused(
        self, store: Store, user: UserRead, me: UserScope, conv: ConversationRead, depth: int
    ) -> None:
        (call, field) = self.cases(me, conv, _nested(depth - 1), as_text=True)[2]
        err = await _rejected(store, user, call)
        assert err.fields == [field]
        assert "nested deeper than 64 levels" in err.errors[0].message, err.errors

    async def test_64_levels_are_stored_and_read_back(
        self, me: UserScope, conv: ConversationRead
    ) -> None:
        inner = _nested(63)
        for call, field in self.cases(me, conv, inner) + self.cases(me, conv, inner, True)[2:3]:
            stored = await call()
            if field == "metadata" and hasattr(stored, "messages_count"):
                assert (await me.conversations.get(conv.id)).metadata == {"k": inner}
                continue
            read = (await me.messages.get(conv.id, stored.id)).model_dump(mode="json")
            top = field.split(".")[0]
            value = read[top][0] if "." in field else read[top]
            if top == "tool_calls":
                value = value["arguments"]
            elif top == "tool_results":
                value = value["output"]
            assert value == {"k": inner}, field
