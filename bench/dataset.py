"""The synthetic dataset: users × conversations × messages, with tool calls and tasks.

Rows are generated lazily, one user at a time, so memory stays flat whatever the size. Every
row is what convstore itself would write: UUIDv7 ids whose timestamp is the row's
``created_at``, ``seq`` 1…n per conversation, ``messages_count`` equal to the last ``seq``,
``last_message_at``/``updated_at`` equal to the last message's time, the title taken from the
first user message, JSON columns in the library's shapes, tags lower-cased.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from convstore.conversations.service import title_from_message

HEAVY_EMAIL = "heavy@bench.example.com"
"""The W3/W6 user: 500 conversations and 500 tasks, whatever the dataset size."""
LONG_EMAIL = "long@bench.example.com"
"""The owner of the long conversation (W1L, W2L), whatever the dataset size."""
TAGS = ("home", "work", "errands", "health", "finance", "urgent")
TOOL_NAMES = ("add_task", "list_tasks", "complete_task", "update_task", "delete_task")
BENCH_PASSWORD = "bench password 1234"
"""Every generated user can log in with this (the HTTP workloads do)."""

_WORDS = (
    "the a to of and in is it you that for on with as this be are at or have from by not "
    "task milk buy tomorrow meeting report doctor invoice call email plan project deadline "
    "please could would should remind list done open update priority high low medium week "
    "monday friday today later note idea draft review budget travel flight hotel book "
    "summary answer question model context token assistant user message tool result error "
    "because however therefore example detail step first second third finally thanks"
).split()


def parse_size(text: str) -> int:
    """``10k`` → 10_000, ``1M`` → 1_000_000, ``250000`` → 250_000."""
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor != 1 else text
    return int(float(number) * factor)


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


@dataclass(frozen=True)
class Shape:
    """How ``messages`` messages are spread out."""

    messages: int
    per_conversation: int = 100
    conversations_per_user: int = 50
    tasks_per_user: int = 20
    heavy_conversations: int = 500
    heavy_messages_per_conversation: int = 2
    heavy_tasks: int = 500
    long_messages: int = 2_000
    """One conversation this long (W1L, W2L), besides ``messages``."""
    tool_call_share: float = 0.2
    seed: int = 42

    @property
    def users(self) -> int:
        per_user = self.per_conversation * self.conversations_per_user
        return max(1, -(-self.messages // per_user))

    @property
    def conversations(self) -> int:
        return max(1, -(-self.messages // self.per_conversation))


@dataclass
class UserRows:
    """Everything one user owns, in insertion order (parents first)."""

    user: dict[str, Any]
    conversations: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)


class Generator:
    """Deterministic rows for a :class:`Shape`; iterate :meth:`users` to stream them."""

    def __init__(self, shape: Shape, password_hash: str | None) -> None:
        self.shape = shape
        self.password_hash = password_hash
        self.rng = random.Random(shape.seed)
        self.corpus = " ".join(self.rng.choice(_WORDS) for _ in range(400_000))
        # History starts a year ago and advances as rows are generated, so ids (UUIDv7) and
        # timestamps grow together, as they do in a live store.
        total_minutes = 365 * 24 * 60
        self.step = timedelta(minutes=total_minutes / max(1, shape.messages + 2_000))
        self.clock = datetime.now(UTC) - timedelta(days=366)

    def _tick(self) -> datetime:
        self.clock += self.step
        return self.clock

    def _id(self, at: datetime) -> uuid.UUID:
        """A UUIDv7 of ``at``: 48 bits of milliseconds, the sub-millisecond fraction in the
        12 bits after the version (so ids sort as their times do), 62 random bits."""
        us = int(at.timestamp() * 1_000_000)
        ms, frac = divmod(us, 1_000)
        value = (ms << 80) | (0x7 << 76) | ((frac * 4096 // 1_000) << 64)
        value |= (0b10 << 62) | self.rng.getrandbits(62)
        return uuid.UUID(int=value)

    def _text(self, mean: float, cap: int) -> str:
        n = min(cap, max(8, int(self.rng.lognormvariate(0, 0.8) * mean)))
        start = self.rng.randrange(0, len(self.corpus) - cap - 1)
        return self.corpus[start : start + n].strip() or "hello"

    def users(self) -> Iterator[UserRows]:
        """The heavy user first, the long conversation's owner, then the regular ones."""
        s = self.shape
        yield self._user(
            HEAVY_EMAIL, s.heavy_conversations, s.heavy_messages_per_conversation, s.heavy_tasks
        )
        if s.long_messages:
            yield self._user(LONG_EMAIL, 1, s.long_messages, 0)
        left = s.messages
        for i in range(s.users):
            per_user = min(left, s.per_conversation * s.conversations_per_user)
            convs = max(1, -(-per_user // s.per_conversation))
            left -= per_user
            yield self._user(
                f"user{i}@bench.example.com", convs, s.per_conversation, s.tasks_per_user
            )

    def _user(self, email: str, convs: int, per_conv: int, tasks: int) -> UserRows:
        at = self._tick()
        uid = self._id(at)
        rows = UserRows(
            user={
                "id": uid,
                "email": email,
                "hashed_password": self.password_hash,
                "name": email.split("@")[0],
                "role": "user",
                "is_active": True,
                "created_at": at,
                "updated_at": at,
            }
        )
        for _ in range(convs):
            self._conversation(rows, uid, per_conv)
        for _ in range(tasks):
            rows.tasks.append(self._task(uid))
        return rows

    def _conversation(self, rows: UserRows, uid: uuid.UUID, count: int) -> None:
        start = self._tick()
        cid = self._id(start)
        title: str | None = None
        last = start
        for seq, message in enumerate(self._messages(count), start=1):
            last = self._tick()
            if title is None and message["role"] == "user":
                title = title_from_message(message["content"])
            message.update(
                id=self._id(last),
                conversation_id=cid,
                user_id=uid,
                seq=seq,
                created_at=last,
                updated_at=last,
            )
            rows.messages.append(message)
        rows.conversations.append(
            {
                "id": cid,
                "user_id": uid,
                "title": title,
                "attributes": {"model": "gpt-4o-mini"},
                "messages_count": count,
                "last_message_at": last if count else None,
                "created_at": start,
                "updated_at": last,
            }
        )

    def _messages(self, count: int) -> Iterator[dict[str, Any]]:
        """user, assistant (a share of them calling a tool, answered by a tool message)…"""
        produced = 0
        call = 0
        while produced < count:
            yield self._message("user", self._text(120, 4_000))
            produced += 1
            if produced < count - 1 and self.rng.random() < self.shape.tool_call_share:
                call += 1
                call_id = f"call_{call}"
                name = self.rng.choice(TOOL_NAMES)
                msg = self._message("assistant", "")
                msg["tool_calls"] = [
                    {
                        "id": call_id,
                        "type": "function",
                        "name": name,
                        "arguments": {"title": self._text(20, 60)},
                    }
                ]
                yield msg
                tool = self._message("tool", '{"ok": true, "task": {"title": "x"}}')
                tool["tool_call_id"] = call_id
                yield tool
                produced += 2
            if produced < count:
                yield self._message("assistant", self._text(600, 20_000))
                produced += 1

    def _message(self, role: str, content: str) -> dict[str, Any]:
        return {
            "role": role,
            "content": content,
            "status": "sent" if role == "user" else "complete",
            "tool_calls": None,
            "tool_results": None,
            "tool_call_id": None,
            "attributes": {},
            "parent_id": None,
            "usage": {"prompt_tokens": 120, "completion_tokens": 80}
            if role == "assistant"
            else None,
            "deleted_at": None,
        }

    def _task(self, uid: uuid.UUID) -> dict[str, Any]:
        at = self._tick()
        completed = self.rng.random() < 0.3
        return {
            "id": self._id(at),
            "user_id": uid,
            "title": self._text(30, 100)[:100].strip() or "task",
            "description": None,
            "completed": completed,
            "completed_at": at if completed else None,
            "priority": self.rng.choice(("low", "medium", "high")),
            "tags": sorted(set(self.rng.sample(TAGS, self.rng.randint(0, 3)))),
            "due_at": None,
            "created_at": at,
            "updated_at": at,
        }
