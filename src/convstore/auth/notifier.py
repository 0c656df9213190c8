"""How password reset tokens reach users. The default writes them to the log."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

log = logging.getLogger("convstore.notify")


class Notifier(Protocol):
    """Delivers account messages (mail, SMS, a queue…). Plug your own into ``create_app``."""

    async def password_reset(
        self, email: str, token: str, link: str | None, expires_at: datetime
    ) -> None: ...


class LogNotifier:
    """Logs the reset token at WARNING: for development and single-operator installations."""

    async def password_reset(
        self, email: str, token: str, link: str | None, expires_at: datetime
    ) -> None:
        log.warning(
            "password reset for %s: %s (expires %s)", email, link or token, expires_at.isoformat()
        )
