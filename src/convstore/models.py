"""Every table, imported in one place: this is what Alembic compares against."""

from convstore.apikeys.models import ApiKey
from convstore.assistant.models import StreamFrame
from convstore.auth.models import IdempotencyKey, PasswordResetToken, RefreshToken
from convstore.conversations.models import Conversation, Message
from convstore.kit.base import Base
from convstore.tasks.models import Task, TaskEvent
from convstore.users.models import User

__all__ = [
    "ApiKey",
    "Base",
    "Conversation",
    "IdempotencyKey",
    "Message",
    "PasswordResetToken",
    "RefreshToken",
    "StreamFrame",
    "Task",
    "TaskEvent",
    "User",
]
