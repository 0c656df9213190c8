"""Group commit: writes of one key that arrive while one is being written go next, together.

A write that waits for another (SQLite's one writer, PostgreSQL's row lock of a conversation)
pays for the other's whole commit, its WAL sync included; eight writers pay for eight syncs
one after the other. With :class:`Turns`, the writes that queued during a write are written
next as ONE group, by the first of their callers: one commit for them all, each write's
outcome handed back to its own caller. Without contention a group is the one write.

The caller that writes a group (its leader) sees it through to its end even when it is
cancelled meanwhile (the others' outcomes depend on it) and then re-raises the cancellation.
A caller cancelled while it waits leaves the queue, and its write is not made; one whose
write is already in a group keeps it made (as a statement cancelled after it was sent may
be) and gets the cancellation. ``write`` reports each unit's failure on the unit; should it
raise all the same, the other callers of its group queue again, first in line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

U = TypeVar("U")

_NO_LOCK: AbstractAsyncContextManager[None] = contextlib.nullcontext()
_CONTENDED_KEPT = 4096
"""At most this many keys are remembered as contended (see ``Turns._contended``)."""


class _Waiting(Generic[U]):
    __slots__ = ("turn", "unit")

    def __init__(self, unit: U, turn: asyncio.Future[bool]) -> None:
        self.unit = unit
        self.turn = turn  # True: lead the next group; False: written in another's group


class Turns(Generic[U]):
    """One group at a time per key (see the module). ``limit`` caps a group's size;
    ``groups`` and ``units`` count what was written (a mean group size for operators and
    tests)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._queues: dict[Hashable, collections.deque[_Waiting[U]]] = {}
        # Keys whose last group had others waiting: their callers are likely to come back
        # together (each as soon as its outcome is handed back), so the next leader lets
        # them queue (one pass of the event loop) before it makes up its group.
        self._contended: set[Hashable] = set()
        self.groups = 0
        self.units = 0

    async def run(
        self,
        key: Hashable,
        unit: U,
        write: Callable[[list[U]], Awaitable[None]],
        lock: AbstractAsyncContextManager[object] = _NO_LOCK,
    ) -> None:
        """Have ``unit`` written, alone or in a group of ``key``'s units: by ``write`` (which
        sets every unit's outcome on it), under ``lock`` when given (the group is made up
        once it is held). Returns once ``unit``'s outcome is set."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = collections.deque()
        else:  # a group of this key is being written: wait for the turn or for the outcome
            waiting = _Waiting(unit, asyncio.get_running_loop().create_future())
            queue.append(waiting)
            try:
                if not await waiting.turn:
                    return
            except asyncio.CancelledError:
                self._leave(key, queue, waiting)
                raise
        followers: list[_Waiting[U]] = []
        written = False

        async def write_for_all(group: list[U]) -> None:
            nonlocal written
            await write(group)
            written = True

        try:
            if key in self._contended:
                await asyncio.sleep(0)
            async with lock:
                while queue and len(followers) + 1 < self._limit:
                    followers.append(queue.popleft())
                if followers:
                    if len(self._contended) >= _CONTENDED_KEPT:
                        self._contended.clear()  # forget old keys rather than grow
                    self._contended.add(key)
                else:
                    self._contended.discard(key)
                group = [unit, *(waiting.unit for waiting in followers)]
                self.groups += 1
                self.units += len(group)
                await (to_completion(write_for_all(group)) if followers else write(group))
        finally:
            if written:
                for waiting in followers:
                    if not waiting.turn.done():
                        waiting.turn.set_result(False)
            else:  # ``write`` raised (it sets errors on the units, not raises): theirs again
                queue.extendleft(reversed(followers))
            self._hand_over(key, queue)

    def _hand_over(self, key: Hashable, queue: collections.deque[_Waiting[U]]) -> None:
        """The next group's turn to the first caller still waiting, or the key is idle."""
        while queue:
            turn = queue.popleft().turn
            if not turn.done():
                turn.set_result(True)
                return
        del self._queues[key]

    def _leave(
        self, key: Hashable, queue: collections.deque[_Waiting[U]], waiting: _Waiting[U]
    ) -> None:
        """A waiting caller was cancelled: out of the queue, or its turn passed on."""
        if waiting in queue:
            queue.remove(waiting)
        elif not waiting.turn.cancelled() and waiting.turn.result():
            self._hand_over(key, queue)


async def to_completion(work: Awaitable[None]) -> None:
    """Await ``work`` to its end in a task of its own however often the caller is cancelled
    meanwhile (AnyIO cancels a scope again at every ``await`` until it is left), then re-raise
    the cancellation: cleanup, or a write others wait for, cut short would leave them
    undone."""
    task = asyncio.ensure_future(work)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as error:
            cancelled = error
    if cancelled is not None:
        raise cancelled
    task.result()
