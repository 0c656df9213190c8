"""Group commit's turn taking (convstore.kit.turns), on its own: who writes, who waits, what
a cancellation does. The database's use of it is tested in tests/conversations/."""

from __future__ import annotations

import asyncio

import pytest

from convstore.kit.turns import Turns


class Unit:
    def __init__(self, name: str) -> None:
        self.name = name
        self.written_in: int | None = None


class Writer:
    """Writes groups, each one taking as long as ``gate`` stays closed."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.started = asyncio.Event()

    async def write(self, group: list[Unit]) -> None:
        self.started.set()
        await self.gate.wait()
        self.groups.append([unit.name for unit in group])
        for unit in group:
            unit.written_in = len(self.groups)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_alone_a_write_is_its_own_group() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    for name in "abc":
        await turns.run("k", Unit(name), writer.write)
    assert writer.groups == [["a"], ["b"], ["c"]]
    assert (turns.groups, turns.units) == (3, 3)


async def _while_the_first_is_written(
    turns: Turns[Unit], writer: Writer, units: list[Unit]
) -> None:
    """Run ``units`` of one key, all but the first arriving while the first is written."""
    writer.gate.clear()
    first = asyncio.create_task(turns.run("k", units[0], writer.write))
    await writer.started.wait()
    rest = [asyncio.create_task(turns.run("k", unit, writer.write)) for unit in units[1:]]
    await _settle()
    writer.gate.set()
    await asyncio.gather(first, *rest)


async def test_writes_that_wait_go_next_together_in_arrival_order() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    units = [Unit(name) for name in "abcde"]
    await _while_the_first_is_written(turns, writer, units)
    assert writer.groups == [["a"], ["b", "c", "d", "e"]]
    assert [unit.written_in for unit in units] == [1, 2, 2, 2, 2]


async def test_keys_do_not_wait_for_each_other() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    writer.gate.clear()
    blocked = asyncio.create_task(turns.run("k1", Unit("a"), writer.write))
    await writer.started.wait()
    other = Writer()
    await turns.run("k2", Unit("b"), other.write)  # does not wait for k1's group
    assert other.groups == [["b"]]
    writer.gate.set()
    await blocked


async def test_a_group_holds_at_most_limit_writes() -> None:
    turns: Turns[Unit] = Turns(limit=3)
    writer = Writer()
    await _while_the_first_is_written(turns, writer, [Unit(n) for n in "abcdefg"])
    assert writer.groups == [["a"], ["b", "c", "d"], ["e", "f", "g"]]


async def test_a_cancelled_waiting_write_is_not_made() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    writer.gate.clear()
    first = asyncio.create_task(turns.run("k", Unit("a"), writer.write))
    await writer.started.wait()
    b, c = Unit("b"), Unit("c")
    waiting_b = asyncio.create_task(turns.run("k", b, writer.write))
    waiting_c = asyncio.create_task(turns.run("k", c, writer.write))
    await _settle()
    waiting_b.cancel()
    await _settle()
    writer.gate.set()
    await asyncio.gather(first, waiting_c)
    with pytest.raises(asyncio.CancelledError):
        await waiting_b
    assert writer.groups == [["a"], ["c"]]
    assert b.written_in is None


async def test_a_cancelled_leader_still_writes_its_group_for_the_others() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    writer.gate.clear()
    first = asyncio.create_task(turns.run("k", Unit("a"), writer.write))
    await writer.started.wait()
    writer.started.clear()
    units = [Unit(n) for n in "bcd"]
    tasks = [asyncio.create_task(turns.run("k", unit, writer.write)) for unit in units]
    writer.gate.set()
    await first  # b leads the next group...
    writer.gate.clear()
    await writer.started.wait()
    tasks[0].cancel()  # ...and is cancelled while it is being written
    await _settle()
    assert not tasks[1].done(), "the others still wait for the group"
    writer.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    await asyncio.gather(*tasks[1:])
    assert writer.groups == [["a"], ["b", "c", "d"]]
    assert [unit.written_in for unit in units] == [2, 2, 2]


async def test_a_failed_write_leaves_the_key_free() -> None:
    turns: Turns[Unit] = Turns(limit=8)

    async def failing(group: list[Unit]) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await turns.run("k", Unit("a"), failing)
    writer = Writer()
    await turns.run("k", Unit("b"), writer.write)
    assert writer.groups == [["b"]]


async def test_the_group_is_made_up_once_the_lock_is_held() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    lock = asyncio.Lock()
    await lock.acquire()
    tasks = [asyncio.create_task(turns.run("k", Unit(n), writer.write, lock)) for n in "abc"]
    await _settle()
    assert writer.groups == []
    lock.release()
    await asyncio.gather(*tasks)
    assert writer.groups == [["a", "b", "c"]]


async def test_a_leader_cancelled_before_the_lock_hands_its_turn_on() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    lock = asyncio.Lock()
    await lock.acquire()
    a, b = Unit("a"), Unit("b")
    leading = asyncio.create_task(turns.run("k", a, writer.write, lock))
    await _settle()
    waiting = asyncio.create_task(turns.run("k", b, writer.write, lock))
    await _settle()
    leading.cancel()
    await _settle()
    lock.release()
    await waiting
    with pytest.raises(asyncio.CancelledError):
        await leading
    assert writer.groups == [["b"]]
    assert a.written_in is None


class Stop(BaseException):
    """Raised by a write, as an interruption would be (not an outcome set on the units)."""


async def test_when_a_write_raises_the_others_of_its_group_are_written_next() -> None:
    turns: Turns[Unit] = Turns(limit=8)
    writer = Writer()
    writer.gate.clear()
    first = asyncio.create_task(turns.run("k", Unit("a"), writer.write))
    await writer.started.wait()
    b, c, d = Unit("b"), Unit("c"), Unit("d")

    async def raising(group: list[Unit]) -> None:
        raise Stop

    leader = asyncio.create_task(turns.run("k", b, raising))  # leads the next group
    rest = [asyncio.create_task(turns.run("k", unit, writer.write)) for unit in (c, d)]
    await _settle()
    writer.gate.set()
    await first
    with pytest.raises(Stop):
        await leader
    await asyncio.gather(*rest)
    assert writer.groups == [["a"], ["c", "d"]]
    assert (b.written_in, c.written_in, d.written_in) == (None, 2, 2)
