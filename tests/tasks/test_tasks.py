"""Tasks through the library API (``store.for_user(id).tasks``), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from convstore import InvalidInput, NotFound, UserScope
from convstore.tasks.schemas import TaskRead
from tests.factories import make_conversation, make_task

UNSTORABLE = ["\x00", "\x1b", "\x7f", "\x01", "\ud800"]
"""Characters no single-line text field accepts: NUL, ESC, DEL, another C0 control, a lone
surrogate."""


def _decode(cursor: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return data


def _encode(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _ids(me: UserScope, **filters: Any) -> list[uuid.UUID]:
    """Every task matching ``filters``, in list order (one page is enough in these tests)."""
    page = await me.tasks.list(limit=100, **filters)
    assert not page.has_more
    assert page.next_cursor is None
    return [t.id for t in page.items]


class TestCreate:
    async def test_defaults(self, me: UserScope) -> None:
        task = await me.tasks.create(title="Buy milk")
        assert task.title == "Buy milk"
        assert task.description is None
        assert task.priority == "medium"
        assert task.completed is False
        assert task.completed_at is None
        assert task.tags == []
        assert task.due_at is None
        assert task.created_at == task.updated_at
        assert task.created_at.tzinfo is not None

    async def test_stores_every_given_field(self, me: UserScope) -> None:
        due = datetime(2030, 5, 17, 9, 30, tzinfo=UTC)
        task = await me.tasks.create(
            title="File taxes",
            description="Forms A and B\n- receipts",
            priority="high",
            tags=["money"],
            due_at=due,
        )
        again = await me.tasks.get(task.id)
        assert again == task
        assert (again.title, again.description, again.priority) == (
            "File taxes",
            "Forms A and B\n- receipts",
            "high",
        )
        assert again.tags == ["money"]
        assert again.due_at == due

    async def test_title_is_trimmed(self, me: UserScope) -> None:
        task = await me.tasks.create(title="  Buy milk  ")
        assert task.title == "Buy milk"
        assert (await me.tasks.get(task.id)).title == "Buy milk"

    async def test_tags_are_lower_cased_without_hash_and_deduplicated(self, me: UserScope) -> None:
        task = await me.tasks.create(title="t", tags=["#Home", "home", "WORK", "#work", "Errand"])
        assert task.tags == ["home", "work", "errand"]
        assert (await me.tasks.get(task.id)).tags == ["home", "work", "errand"]

    @pytest.mark.parametrize(
        "tags",
        [
            pytest.param(["two words"], id="space"),
            pytest.param(["a,b"], id="comma"),
            pytest.param(["#"], id="only-hash"),
            pytest.param([""], id="empty"),
            pytest.param(["x" * 33], id="too-long"),
            pytest.param([f"t{i}" for i in range(17)], id="too-many"),
        ],
    )
    async def test_bad_tags_are_refused(self, me: UserScope, tags: list[str]) -> None:
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.create(title="t", tags=tags)
        assert all(f.startswith("tags") for f in exc.value.fields)
        assert await _ids(me) == []

    @pytest.mark.parametrize("char", UNSTORABLE, ids=[f"U+{ord(c):04X}" for c in UNSTORABLE])
    async def test_tags_with_control_characters_are_refused(self, me: UserScope, char: str) -> None:
        """A tag is one line of text like a title: NUL (which PostgreSQL cannot store), the
        other controls and lone surrogates are refused, naming the tag, on create and update."""
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.create(title="t", tags=["ok", f"a{char}b"])
        assert exc.value.fields == ["tags.1"]
        assert await _ids(me) == []
        task = await me.tasks.create(title="t", tags=["ok"])
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.update(task.id, tags=[f"a{char}b"])
        assert exc.value.fields == ["tags.0"]
        assert (await me.tasks.get(task.id)).tags == ["ok"]

    async def test_due_at_comes_back_aware_and_same_instant(self, me: UserScope) -> None:
        due = datetime(2030, 1, 2, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
        task = await me.tasks.create(title="t", due_at=due)
        stored = (await me.tasks.get(task.id)).due_at
        assert stored is not None
        assert stored == due
        assert stored.utcoffset() == timedelta(0)
        assert stored == datetime(2030, 1, 3, 4, 30, tzinfo=UTC)

    async def test_naive_due_at_is_refused(self, me: UserScope) -> None:
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.create(title="t", due_at=datetime(2030, 1, 1))  # noqa: DTZ001
        assert exc.value.fields == ["due_at"]
        assert await _ids(me) == []


class TestGet:
    async def test_unknown_id_is_not_found(self, me: UserScope) -> None:
        with pytest.raises(NotFound):
            await me.tasks.get(uuid.uuid4())

    async def test_malformed_id_is_invalid_input(self, me: UserScope) -> None:
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.get("not-a-uuid")
        assert exc.value.fields == ["task_id"]

    async def test_accepts_the_id_as_a_string(self, me: UserScope) -> None:
        task = await make_task(me)
        assert (await me.tasks.get(str(task.id))).id == task.id

    async def test_other_users_task_is_not_found(self, me: UserScope, them: UserScope) -> None:
        task = await make_task(me)
        with pytest.raises(NotFound):
            await them.tasks.get(task.id)


class TestList:
    async def test_creation_order_oldest_first(self, me: UserScope) -> None:
        made = [await make_task(me, title=f"Task {i}") for i in range(5)]
        assert await _ids(me) == [t.id for t in made]

    async def test_only_the_users_own_tasks(self, me: UserScope, them: UserScope) -> None:
        mine = await make_task(me)
        await make_task(them)
        assert await _ids(me) == [mine.id]

    async def test_empty(self, me: UserScope) -> None:
        page = await me.tasks.list()
        assert page.items == []
        assert page.has_more is False
        assert page.next_cursor is None

    async def test_filters(self, me: UserScope) -> None:
        now = datetime.now(UTC)
        a = await me.tasks.create(
            title="a", priority="high", tags=["Home", "#Urgent"], due_at=now + timedelta(days=1)
        )
        b = await me.tasks.create(
            title="b", priority="low", tags=["work"], due_at=now + timedelta(days=3)
        )
        c = await me.tasks.create(title="c", priority="high", tags=["work", "urgent"])
        d = await me.tasks.create(title="d", due_at=now - timedelta(days=1))
        e = await me.tasks.create(title="e", tags=["workshop", "homework"])
        await me.tasks.complete(b.id)
        await me.tasks.complete(d.id)

        assert await _ids(me, completed=True) == [b.id, d.id]
        assert await _ids(me, completed=False) == [a.id, c.id, e.id]
        assert await _ids(me, priority="high") == [a.id, c.id]
        assert await _ids(me, priority="medium") == [d.id, e.id]
        assert await _ids(me, tag="urgent") == [a.id, c.id]
        assert await _ids(me, tag="#URGENT") == [a.id, c.id]
        assert await _ids(me, tag="Work") == [b.id, c.id]
        assert await _ids(me, tag="home") == [a.id]
        assert await _ids(me, tag="nothing") == []
        assert await _ids(me, due_before=now + timedelta(days=2)) == [a.id, d.id]
        assert await _ids(me, due_before=now - timedelta(days=2)) == []

        assert await _ids(me, priority="high", tag="urgent", completed=False) == [a.id, c.id]
        assert await _ids(me, completed=False, due_before=now + timedelta(days=2)) == [a.id]
        assert await _ids(me, tag="work", completed=True) == [b.id]
        assert await _ids(me, tag="work", priority="high") == [c.id]
        assert await _ids(me, priority="low", completed=False) == []

    async def test_bad_filters_are_invalid_input(self, me: UserScope) -> None:
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(priority="urgent")
        assert exc.value.fields == ["priority"]
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(due_before=datetime(2030, 1, 1))  # noqa: DTZ001
        assert exc.value.fields == ["due_before"]
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(tag="two words")
        assert exc.value.fields == ["tag"]
        for char in UNSTORABLE:
            with pytest.raises(InvalidInput) as exc:
                await me.tasks.list(tag=f"a{char}b")
            assert exc.value.fields == ["tag"], repr(char)

    async def test_keyset_pages_have_no_duplicates_or_gaps(self, me: UserScope) -> None:
        made = [await make_task(me, title=f"Task {i}") for i in range(25)]
        seen: list[uuid.UUID] = []
        sizes, flags = [], []
        cursor = None
        while True:
            page = await me.tasks.list(limit=7, cursor=cursor)
            seen.extend(t.id for t in page.items)
            sizes.append(len(page.items))
            flags.append(page.has_more)
            if not page.has_more:
                assert page.next_cursor is None
                break
            assert page.next_cursor is not None
            cursor = page.next_cursor
        assert sizes == [7, 7, 7, 4]
        assert flags == [True, True, True, False]
        assert seen == [t.id for t in made]

    async def test_exact_multiple_of_limit_ends_without_more(self, me: UserScope) -> None:
        made = [await make_task(me) for _ in range(4)]
        first = await me.tasks.list(limit=2)
        assert first.has_more is True
        second = await me.tasks.list(limit=2, cursor=first.next_cursor)
        assert [t.id for t in first.items + second.items] == [t.id for t in made]
        assert second.has_more is False
        assert second.next_cursor is None

    async def test_paging_a_filtered_list(self, me: UserScope) -> None:
        urgent = []
        for i in range(7):
            task = await make_task(me, tags=["urgent"] if i % 2 == 0 else ["later"])
            if i % 2 == 0:
                urgent.append(task.id)
        first = await me.tasks.list(limit=3, tag="#Urgent")
        assert first.has_more is True
        # The same filter spelled differently is the same list: the cursor continues it.
        rest = await me.tasks.list(limit=3, tag="urgent", cursor=first.next_cursor)
        assert rest.has_more is False
        assert [t.id for t in first.items + rest.items] == urgent

    async def test_tasks_created_while_paging_appear_at_the_end(self, me: UserScope) -> None:
        made = [await make_task(me) for _ in range(3)]
        first = await me.tasks.list(limit=2)
        late = await make_task(me)
        rest = await me.tasks.list(limit=10, cursor=first.next_cursor)
        assert [t.id for t in first.items + rest.items] == [t.id for t in [*made, late]]

    @pytest.mark.parametrize(
        "other_filters",
        [
            pytest.param({"completed": True}, id="completed"),
            pytest.param({"completed": False, "priority": "high"}, id="added-filter"),
            pytest.param({}, id="no-filters"),
            pytest.param({"completed": False, "tag": "home"}, id="added-tag"),
        ],
    )
    async def test_cursor_is_refused_with_other_filters(
        self, me: UserScope, other_filters: dict[str, Any]
    ) -> None:
        for _ in range(3):
            await make_task(me)
        page = await me.tasks.list(limit=1, completed=False)
        assert page.next_cursor is not None
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(limit=1, cursor=page.next_cursor, **other_filters)
        assert exc.value.fields == ["cursor"]

    async def test_cursor_of_another_list_is_refused(self, me: UserScope) -> None:
        for _ in range(2):
            await make_conversation(me)
        page = await me.conversations.list(limit=1)
        assert page.next_cursor is not None
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(cursor=page.next_cursor)
        assert exc.value.fields == ["cursor"]

    @pytest.mark.parametrize(
        "cursor",
        [
            pytest.param("", id="empty"),
            pytest.param("not a cursor!", id="garbage"),
            pytest.param("x" * 600, id="too-long"),
            pytest.param(_encode([1, 2]), id="json-list"),
            pytest.param(_encode({"s": "tasks", "k": "x"}), id="key-not-list"),
        ],
    )
    async def test_malformed_cursor_is_refused(self, me: UserScope, cursor: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(cursor=cursor)
        assert exc.value.fields == ["cursor"]

    @pytest.mark.parametrize(
        "key",
        [
            pytest.param([], id="no-key"),
            pytest.param(["yesterday", "x"], id="bad-timestamp"),
            pytest.param([1, 2], id="numbers"),
            pytest.param([None, None], id="nulls"),
            pytest.param(["2030-01-01T00:00:00+00:00", "not-a-uuid"], id="bad-id"),
            pytest.param(["2030-01-01T00:00:00", str(uuid.uuid4())], id="naive-timestamp"),
            pytest.param(["0001-01-01T00:00:00+01:00", str(uuid.uuid4())], id="before-year-1"),
            pytest.param(["9999-12-31T23:59:59-01:00", str(uuid.uuid4())], id="after-year-9999"),
        ],
    )
    async def test_tampered_cursor_is_refused(self, me: UserScope, key: list[Any]) -> None:
        """A cursor is client input: a forged key in the right scope is still invalid input."""
        for _ in range(2):
            await make_task(me)
        page = await me.tasks.list(limit=1)
        assert page.next_cursor is not None
        data = _decode(page.next_cursor)
        data["k"] = key
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(limit=1, cursor=_encode(data))
        assert exc.value.fields == ["cursor"]

    @pytest.mark.parametrize("limit", [0, -1, 101, True])
    async def test_limit_out_of_range_is_refused(self, me: UserScope, limit: int) -> None:
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.list(limit=limit)
        assert exc.value.fields == ["limit"]

    @pytest.mark.parametrize("limit", [1, 100])
    async def test_limit_bounds_are_accepted(self, me: UserScope, limit: int) -> None:
        await make_task(me)
        await make_task(me)
        page = await me.tasks.list(limit=limit)
        assert len(page.items) == min(limit, 2)
        assert page.has_more is (limit == 1)


class TestUpdate:
    async def test_only_given_fields_change(self, me: UserScope) -> None:
        task = await me.tasks.create(
            title="Old",
            description="desc",
            priority="low",
            tags=["a"],
            due_at=datetime(2030, 1, 1, tzinfo=UTC),
        )
        updated = await me.tasks.update(task.id, priority="high")
        assert updated.priority == "high"
        unchanged = {"title", "description", "tags", "due_at", "completed", "completed_at"}
        assert updated.model_dump(include=unchanged) == task.model_dump(include=unchanged)
        assert updated.created_at == task.created_at
        assert updated.updated_at > task.updated_at
        assert await me.tasks.get(task.id) == updated

    async def test_changes_every_field(self, me: UserScope) -> None:
        task = await make_task(me)
        due = datetime(2031, 2, 3, 4, 5, tzinfo=UTC)
        updated = await me.tasks.update(
            task.id,
            title="  New title ",
            description="new",
            priority="low",
            tags=["#Garden", "garden", "Out"],
            due_at=due,
        )
        assert (updated.title, updated.description, updated.priority) == ("New title", "new", "low")
        assert updated.tags == ["garden", "out"]
        assert updated.due_at == due
        assert await me.tasks.get(task.id) == updated

    async def test_none_clears_description_and_due_at(self, me: UserScope) -> None:
        task = await make_task(me, description="something")
        assert task.due_at is not None
        updated = await me.tasks.update(task.id, description=None, due_at=None)
        assert updated.description is None
        assert updated.due_at is None
        stored = await me.tasks.get(task.id)
        assert stored.description is None
        assert stored.due_at is None
        assert stored.title == task.title

    @pytest.mark.parametrize("field", ["title", "priority", "tags", "completed"])
    async def test_none_for_a_required_field_is_refused(self, me: UserScope, field: str) -> None:
        task = await make_task(me)
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.update(task.id, **{field: None})
        assert exc.value.fields == [field]
        assert await me.tasks.get(task.id) == task

    async def test_no_changes_returns_the_task_unchanged(self, me: UserScope) -> None:
        task = await make_task(me)
        assert await me.tasks.update(task.id) == task
        assert await me.tasks.get(task.id) == task

    async def test_completed_true_sets_completed_at_false_clears_it(self, me: UserScope) -> None:
        task = await make_task(me)
        done = await me.tasks.update(task.id, completed=True)
        assert done.completed is True
        assert done.completed_at is not None
        assert done.completed_at >= task.created_at
        assert await me.tasks.get(task.id) == done
        reopened = await me.tasks.update(task.id, completed=False)
        assert reopened.completed is False
        assert reopened.completed_at is None
        assert await me.tasks.get(task.id) == reopened

    async def test_completed_true_on_a_done_task_keeps_first_completed_at(
        self, me: UserScope
    ) -> None:
        task = await make_task(me)
        first = await me.tasks.complete(task.id)
        again = await me.tasks.update(task.id, completed=True, title="Renamed")
        assert again.title == "Renamed"
        assert again.completed_at == first.completed_at

    async def test_unknown_field_is_refused(self, me: UserScope) -> None:
        task = await make_task(me)
        with pytest.raises(InvalidInput) as exc:
            await me.tasks.update(task.id, completed_at=datetime.now(UTC))
        assert exc.value.fields == ["completed_at"]
        assert await me.tasks.get(task.id) == task

    async def test_other_users_task_is_not_found(self, me: UserScope, them: UserScope) -> None:
        task = await make_task(me)
        with pytest.raises(NotFound):
            await them.tasks.update(task.id, title="Hijacked")
        assert await me.tasks.get(task.id) == task

    async def test_unknown_task_is_not_found(self, me: UserScope) -> None:
        with pytest.raises(NotFound):
            await me.tasks.update(uuid.uuid4(), title="x")


class TestComplete:
    async def test_sets_completed_and_completed_at(self, me: UserScope) -> None:
        task = await make_task(me)
        done = await me.tasks.complete(task.id)
        assert done.completed is True
        assert done.completed_at is not None
        assert task.created_at <= done.completed_at <= datetime.now(UTC)
        assert await me.tasks.get(task.id) == done

    async def test_completing_twice_keeps_first_completed_at(self, me: UserScope) -> None:
        task = await make_task(me)
        first = await me.tasks.complete(task.id)
        second = await me.tasks.complete(task.id)
        assert second.completed_at == first.completed_at
        assert (await me.tasks.get(task.id)).completed_at == first.completed_at

    async def test_other_users_task_is_not_found(self, me: UserScope, them: UserScope) -> None:
        task = await make_task(me)
        with pytest.raises(NotFound):
            await them.tasks.complete(task.id)
        assert (await me.tasks.get(task.id)).completed is False

    async def test_unknown_task_is_not_found(self, me: UserScope) -> None:
        with pytest.raises(NotFound):
            await me.tasks.complete(uuid.uuid4())


class TestReopen:
    async def test_clears_completed_at(self, me: UserScope) -> None:
        task = await make_task(me)
        await me.tasks.complete(task.id)
        reopened = await me.tasks.reopen(task.id)
        assert reopened.completed is False
        assert reopened.completed_at is None
        assert await me.tasks.get(task.id) == reopened

    async def test_reopening_an_open_task_changes_nothing(self, me: UserScope) -> None:
        task = await make_task(me)
        assert await me.tasks.reopen(task.id) == task

    async def test_complete_after_reopen_sets_a_new_completed_at(self, me: UserScope) -> None:
        task = await make_task(me)
        first = await me.tasks.complete(task.id)
        await me.tasks.reopen(task.id)
        second = await me.tasks.complete(task.id)
        assert first.completed_at is not None
        assert second.completed_at is not None
        assert second.completed_at > first.completed_at

    async def test_other_users_task_is_not_found(self, me: UserScope, them: UserScope) -> None:
        task = await make_task(me)
        done = await me.tasks.complete(task.id)
        with pytest.raises(NotFound):
            await them.tasks.reopen(task.id)
        assert await me.tasks.get(task.id) == done


class TestDelete:
    async def test_then_get_and_delete_again_are_not_found(self, me: UserScope) -> None:
        task = await make_task(me)
        keep = await make_task(me)
        await me.tasks.delete(task.id)
        with pytest.raises(NotFound):
            await me.tasks.get(task.id)
        with pytest.raises(NotFound):
            await me.tasks.delete(task.id)
        assert await _ids(me) == [keep.id]

    async def test_other_users_task_is_not_found(self, me: UserScope, them: UserScope) -> None:
        task = await make_task(me)
        with pytest.raises(NotFound):
            await them.tasks.delete(task.id)
        assert isinstance(await me.tasks.get(task.id), TaskRead)
