"""convstore: users, conversations, messages with tool calls, and per-user tasks, on SQLite or
PostgreSQL, with strict per-user isolation.

    async with convstore.open("sqlite:///chat.db", migrate=True) as store:
        user = await store.users.create(email="a@example.com", password="…")
        me = store.for_user(user.id)
        conv = await me.conversations.create(metadata={"model": "x"})
        await me.messages.append(conv.id, role="user", content="hello")
"""

from convstore.config import Limits, Settings, get_settings
from convstore.errors import (
    Conflict,
    ConvstoreError,
    DatabaseTimeout,
    DatabaseUnavailable,
    FieldError,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from convstore.kit.pagination import Page
from convstore.store import Store, UserScope, open

__version__ = "0.1.0"

__all__ = [
    "Conflict",
    "ConvstoreError",
    "DatabaseTimeout",
    "DatabaseUnavailable",
    "FieldError",
    "InvalidCredentials",
    "InvalidInput",
    "Limits",
    "NotFound",
    "Page",
    "PermissionDenied",
    "Settings",
    "Store",
    "UserScope",
    "__version__",
    "get_settings",
    "open",
]
