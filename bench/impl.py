"""The one interface every measured implementation meets: convstore, the raw-driver bounds and
the peers (``bench/peers/``). The runner (``bench/compare.py``) only ever talks to this.

An implementation is one way of storing chat messages (one library, one driver, sync or
async). It fills its own store with the dataset (:meth:`Implementation.bulk_load`, timed),
then serves the workloads through the operations below. An operation may be a plain function
or a coroutine function: the runner calls it and awaits the result only when there is one, so
a synchronous driver is measured without an event-loop hop it would not have in a program of
its own. A workload an implementation cannot do raises :class:`Unsupported` with the reason.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

MARK = re.compile(r"\[w(\d+) n(\d+)\]$")


class Unsupported(Exception):
    """The implementation has no public way to do this workload (the message says why)."""


@dataclass(frozen=True)
class Conv:
    """A conversation as every implementation knows it: the dataset's conversation id (a
    peer's session id or key is its text) and its owner."""

    id: uuid.UUID
    user_id: uuid.UUID

    @property
    def key(self) -> str:
        return str(self.id)


@dataclass(frozen=True)
class Message:
    """One stored message of the dataset, as read back for the peers' loads."""

    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


@dataclass
class Conversation:
    conv: Conv
    messages: list[Message]


@dataclass
class Context:
    """Where an implementation lives for one backend and dataset size."""

    backend: str
    label: str
    dataset_url: str
    """convstore's loaded dataset (convstore and the raw bounds run their workloads on it)."""
    pg_admin_url: str
    data_dir: Path
    prefix: str
    """Databases and files an implementation creates are named after this."""
    keep: bool = False

    def pg_database(self, slug: str) -> str:
        return f"{self.prefix}_{self.label.lower()}_{slug}"

    def sqlite_path(self, slug: str) -> Path:
        return self.data_dir / f"sqlite-{self.label}-{slug}.db"


Op = Callable[..., Any]


class Implementation:
    """Base of every implementation. Subclasses set the class attributes and override the
    operations they support; the defaults raise :class:`Unsupported`."""

    name: str = ""
    """Shown in the tables, e.g. ``langchain-postgres (async)``."""
    kind: str = "peer"
    """``convstore``, ``raw`` or ``peer``."""
    slug: str = ""
    """Names its database or file."""
    distributions: tuple[str, ...] = ()
    """Packages whose versions the results list."""
    setup_note: str = ""
    """How it is set up, loaded and called, for the report."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- set-up -------------------------------------------------------------------------

    async def setup(self) -> None:
        """Create (or connect to) the store, untimed."""

    async def bulk_load(self, conversations: AsyncIterator[Conversation]) -> LoadTimer:
        """Write every conversation through the implementation's batch API; the timer
        counts only the time spent in the implementation's calls."""
        timer = LoadTimer()
        async for conversation in conversations:
            async with timer.timing(len(conversation.messages)):
                await call(self.load_conversation, conversation)
        await self.after_load()
        return timer

    def load_conversation(self, conversation: Conversation) -> Any:
        """One conversation's messages through the batch API (may be a coroutine)."""
        raise NotImplementedError

    async def after_load(self) -> None:
        """Statistics for the planner, a checkpoint: whatever its operator would do after a
        bulk load (untimed)."""

    async def ready(self, convs: Sequence[Conv]) -> None:
        """Objects the workloads use (one history per conversation, say), made before any
        timing, for every conversation the workloads touch."""

    async def close(self) -> None:
        """Release connections (untimed)."""

    async def drop(self) -> None:
        """Remove the store this implementation created (not convstore's dataset)."""

    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for dist in self.distributions:
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[dist] = "?"
        return out

    # -- workloads ------------------------------------------------------------------------

    def append(self, conv: Conv, text: str) -> Any:
        """W1: one user message, durable when it returns."""
        raise Unsupported("no single append")

    def last50(self, conv: Conv) -> Any:
        """W2: the newest 50 messages, oldest first."""
        raise Unsupported("no history read")

    def recent20(self, user_id: uuid.UUID) -> Any:
        """W3: the user's 20 most recently active conversations."""
        raise Unsupported("no listing of a user's conversations")

    def pending_tasks(self, user_id: uuid.UUID) -> Any:
        """W6: the user's open tasks tagged ``work``."""
        raise Unsupported("no tasks")

    def new_conversation(self, user_id: uuid.UUID, title: str) -> Any:
        """A new empty conversation for W4 and W5; returns its :class:`Conv`."""
        return Conv(uuid.uuid4(), user_id)

    def append_batch(self, conv: Conv, items: list[tuple[str, str]]) -> Any:
        """W4: ``(role, content)`` pairs in one call."""
        raise Unsupported("no batch append")

    async def writers(self, conv: Conv, count: int) -> list[Op]:
        """W5: ``count`` independent writers (``op(text)``), each with its own connection or
        session as the implementation's documentation suggests for concurrent use.
        Synchronous writers run in threads of their own."""
        raise Unsupported("no concurrent append")

    async def release_writers(self, writers: list[Op]) -> None:
        """Close what :meth:`writers` opened."""

    def read_back(self, conv: Conv) -> Any:
        """Every message content of ``conv`` in stored order (the W5 check)."""
        raise Unsupported("no history read")

    def check_w5(self, conv: Conv, writers: int, per_writer: int) -> Any:
        """The W5 verdict; the default reads the contents back and checks the markers."""

        async def run() -> dict[str, Any]:
            contents = await call(self.read_back, conv)
            return verdict_from_contents(list(contents), writers, per_writer)

        return run()


@dataclass
class LoadTimer:
    """Time and messages of a bulk load, and the loader's RSS every so often."""

    seconds: float = 0.0
    messages: int = 0
    conversations: int = 0
    rss_samples_mb: list[float] = field(default_factory=list)

    def timing(self, messages: int) -> _Timing:
        return _Timing(self, messages)

    def as_dict(self) -> dict[str, Any]:
        rss = self.rss_samples_mb
        return {
            "messages": self.messages,
            "conversations": self.conversations,
            "seconds": round(self.seconds, 2),
            "items_per_s": round(self.messages / self.seconds, 1) if self.seconds else None,
            "rss_first_mb": round(rss[0], 1) if rss else None,
            "rss_last_mb": round(rss[-1], 1) if rss else None,
            "peak_rss_mb": round(max(rss), 1) if rss else None,
        }


class _Timing:
    def __init__(self, timer: LoadTimer, messages: int) -> None:
        self.timer = timer
        self.messages = messages
        self.t0 = 0.0

    async def __aenter__(self) -> None:
        import time

        self.t0 = time.perf_counter()

    async def __aexit__(self, *exc: object) -> None:
        import time

        from bench.procinfo import rss_mb

        t = self.timer
        t.seconds += time.perf_counter() - self.t0
        t.messages += self.messages
        t.conversations += 1
        if t.conversations % 100 == 1:
            t.rss_samples_mb.append(rss_mb())


async def call(op: Op, *args: Any) -> Any:
    """``op(*args)``, awaited when it returns an awaitable."""
    result = op(*args)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        return await result
    return result


def marked(text: str, worker: int, i: int) -> str:
    """The W5 message text: the writer and its sequence number at the end."""
    return f"{text} [w{worker} n{i}]"


def verdict_from_contents(contents: list[str], writers: int, per_writer: int) -> dict[str, Any]:
    """Every message arrived exactly once, and each writer's in the order it sent them."""
    expected = writers * per_writer
    per: dict[int, list[int]] = {}
    for text in contents:
        found = MARK.search(text)
        if found:
            per.setdefault(int(found[1]), []).append(int(found[2]))
    in_order = all(ns == list(range(per_writer)) for ns in per.values())
    stored = sum(len(ns) for ns in per.values())
    once = all(len(set(ns)) == len(ns) for ns in per.values())
    ok = stored == expected and len(per) == writers and in_order and once
    return {
        "ok": ok,
        "expected": expected,
        "stored": stored,
        "each_once": once,
        "writers_in_order": in_order,
    }
