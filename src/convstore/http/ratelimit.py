"""Rate limits with the ``limits`` library: per authenticated user, chat turns per user (a
budget of their own: each costs model tokens), and per client IP (and account) on the
unauthenticated auth routes. Exceeding one answers 429 with ``Retry-After``."""

from __future__ import annotations

import math
import time
import uuid

from limits import RateLimitItem, RateLimitItemPerDay, parse
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
        self.login_failures = parse(settings.rate_limit_login_account_failures)
        days = settings.login_known_client_days
        self.known_client = RateLimitItemPerDay(1, days) if days else None
        self.chat = parse(settings.rate_limit_chat)

    async def hit(self, item: RateLimitItem, *identifiers: str) -> None:
        """Count one request; raise RateLimited when it is one too many."""
        if not self.enabled:
            return
        if await self._limiter.hit(item, *identifiers):
            return
        stats = await self._limiter.get_window_stats(item, *identifiers)
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    async def check_login(self, email: str, ip: str) -> None:
        """Before a password is checked: count the attempt against (account, client IP), and
        refuse it when the account is past its failure cap, unless the client IP signed in to
        the account recently.

        Raises:
            RateLimited: either limit is reached.
        """
        await self.hit(self.login_account, "login", email, ip)
        if not self.enabled or await self._limiter.test(self.login_failures, "login-failed", email):
            return
        if self.known_client is not None and not await self._limiter.test(
            self.known_client, "login-ok", email, ip
        ):
            return  # a recent sign-in from here used up the one-per-period "hit"
        stats = await self._limiter.get_window_stats(self.login_failures, "login-failed", email)
        raise RateLimited(max(1, math.ceil(stats.reset_time - time.time())))

    async def login_failed(self, email: str) -> None:
        """Count a failed login against the account's cap over every client."""
        if self.enabled:
            await self._limiter.hit(self.login_failures, "login-failed", email)

    async def login_succeeded(self, email: str, ip: str) -> None:
        """Remember that ``ip`` signed in to the account (see :meth:`check_login`)."""
        if self.enabled and self.known_client is not None:
            await self._limiter.clear(self.known_client, "login-ok", email, ip)
            await self._limiter.hit(self.known_client, "login-ok", email, ip)

    async def chat_turn(self, user_id: uuid.UUID) -> None:
        """Count one chat turn of the user against their chat budget."""
        await self.hit(self.chat, "chat", str(user_id))


def _async_url(url: str) -> str:
    """``limits`` picks its asyncio storages by an ``async+`` scheme prefix."""
    return url if url.startswith("async+") else f"async+{url}"
