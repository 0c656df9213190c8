"""Rate limits with the ``limits`` library: per authenticated user, chat turns per user (a
budget of their own: each costs model tokens), and per client IP (and account) on the
unauthenticated auth routes. Exceeding one answers 429 with ``Retry-After``."""

from __future__ import annotations

import math
import time
import uuid

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from convstore.config import Settings
from convstore.errors import ConvstoreError


class RateLimited(ConvstoreError):
    """Too many requests; ``retry_after`` seconds until the next one is allowed."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; retry in {retry_after} s")
        self.retry_after = retry_after


class RateLimits:
    """The configured limits over one storage (memory per process, or Redis shared)."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(_async_url(settings.rate_limit_storage_url))
        )
        self.user = parse(settings.rate_limit_user)
        self.auth_ip = parse(settings.rate_limit_auth_ip)
        self.login_account = parse(settings.rate_limit_login_account)
        self.chat = parse(settings.rate_limit_chat)

    async def hit(self, item: RateLimitItem, *identifiers: str) -> None:
        """Count one request; raise RateLimited when it is one too many."""
        if not self.enabled:
            return
        if await self._limiter.hit(item, *identifiers):
            return
        stats = await self._limiter.get_window_stats(item, *identifiers)
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    async def chat_turn(self, user_id: uuid.UUID) -> None:
        """Count one chat turn of the user against their chat budget."""
        await self.hit(self.chat, "chat", str(user_id))


def _async_url(url: str) -> str:
    """``limits`` picks its asyncio storages by an ``async+`` scheme prefix."""
    return url if url.startswith("async+") else f"async+{url}"
