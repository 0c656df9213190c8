"""``convstore purge``: delete for good the conversations soft-deleted longer ago than the
retention, and the periodic purge ``convstore serve`` runs when the retention is set.

Users are visited one by one (a page of ids at a time); each user's purge is one write
transaction acting as that user, so row-level security applies to it (see
:mod:`convstore.conversations.retention`). On PostgreSQL, a session-level advisory lock lets one
process at a time purge: other workers and replicas skip the round.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import typer

from convstore.commands import common
from convstore.config import Settings
from convstore.conversations import retention
from convstore.db import is_sqlite
from convstore.store import Store
from convstore.store import open as open_store
from convstore.users.service import user as user_service

log = logging.getLogger("convstore.purge")

PAGE = 500
"""User ids read per transaction while purging."""


@dataclass(frozen=True, slots=True)
class Purged:
    cutoff: datetime
    users: int
    conversations: int
    skipped: bool = False
    """Another process held the purge lock (PostgreSQL): nothing was done."""


async def purge_deleted(store: Store, older_than_days: float) -> Purged:
    """Delete for good every conversation soft-deleted more than ``older_than_days`` ago."""
    before = retention.cutoff(older_than_days)
    engine = store.db.engine
    if is_sqlite(engine.url):
        return await _purge(store, before)
    async with engine.connect() as lock:  # held for the whole purge, outside its transactions
        held = await retention.try_lock(lock)
        await lock.commit()
        if not held:
            return Purged(before, 0, 0, skipped=True)
        try:
            return await _purge(store, before)
        finally:
            await retention.unlock(lock)
            await lock.commit()


async def _purge(store: Store, before: datetime) -> Purged:
    users = conversations = 0
    after: uuid.UUID | None = None
    while True:
        async with store.reading() as conn:
            page = await user_service.list(conn, limit=PAGE, after=after)
        for account in page:
            async with store.writing(account.id) as conn:
                conversations += await retention.purge_user(conn, account.id, before)
            users += 1
        if len(page) < PAGE:
            return Purged(before, users, conversations)
        after = page[-1].id


async def purge_periodically(store: Store, settings: Settings) -> None:
    """``serve``'s background purge: every ``purge_interval_seconds`` while the app runs, when
    ``purge_retention_days`` is set. A failed round is logged and the next one runs."""
    days = settings.purge_retention_days
    if days is None:
        return
    while True:
        try:
            done = await purge_deleted(store, days)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "the periodic purge failed; retrying in %ss", settings.purge_interval_seconds
            )
        else:
            if not done.skipped and done.conversations:
                log.info(
                    "purged %d conversation(s) deleted before %s",
                    done.conversations,
                    done.cutoff.isoformat(timespec="seconds"),
                )
        await asyncio.sleep(settings.purge_interval_seconds)


def purge(
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=0,
            help="Purge what was deleted more than DAYS days ago (default: "
            "CONVSTORE_PURGE_RETENTION_DAYS).",
        ),
    ] = None,
    database_url: common.DatabaseUrl = None,
) -> None:
    """Delete for good the soft-deleted conversations (and their messages) past retention."""
    settings = common.settings_for(database_url)
    days = settings.purge_retention_days if older_than is None else older_than
    if days is None:
        raise common.fail("give --older-than DAYS or set CONVSTORE_PURGE_RETENTION_DAYS")

    async def go() -> Purged:
        async with open_store(settings.database_url, settings=settings) as store:
            return await purge_deleted(store, days)

    done = common.run(go, database_url)
    if done.skipped:
        raise common.fail("another process is purging (PostgreSQL advisory lock): try later")
    common.console.print(
        f"purged {done.conversations} conversation(s) deleted before "
        f"{done.cutoff.isoformat(timespec='seconds')} ({done.users} user(s) checked)",
        markup=False,
        highlight=False,
    )
