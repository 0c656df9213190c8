"""Settings: one typed model read from ``CONVSTORE_*`` environment variables (or ``.env``).

Read them through :func:`get_settings`; tests and embedders pass a :class:`Settings` instance
explicitly instead of editing the environment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///convstore.db"
"""The embedded default: a SQLite file in the working directory."""


class Limits(BaseSettings):
    """Size limits applied to every write, before anything reaches the database."""

    model_config = SettingsConfigDict(env_prefix="CONVSTORE_", env_file=".env", extra="ignore")

    max_user_message_chars: int = Field(default=10_000, ge=1)
    """Longest content of a ``user`` (and ``system``) message."""
    max_assistant_message_chars: int = Field(default=200_000, ge=1)
    """Longest content of an ``assistant`` or ``tool`` message."""
    max_metadata_keys: int = Field(default=16, ge=0)
    max_metadata_key_chars: int = Field(default=64, ge=1)
    max_metadata_value_chars: int = Field(default=512, ge=1)
    max_tool_calls: int = Field(default=64, ge=0)
    """Most tool calls one assistant message may carry."""
    max_tool_arguments_bytes: int = Field(default=65_536, ge=2)
    """Largest JSON encoding of one tool call's arguments."""


class Settings(BaseSettings):
    """Every setting convstore reads. Environment variables carry the ``CONVSTORE_`` prefix."""

    model_config = SettingsConfigDict(env_prefix="CONVSTORE_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    """``sqlite:///path``, ``postgresql://user@host/db`` or a driver-qualified URL."""

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout: float = Field(default=30.0, gt=0)
    """Seconds to wait for a pooled connection before failing."""
    db_pool_recycle: int = Field(default=3600, ge=-1)
    """Seconds after which a pooled connection is replaced (-1: never)."""
    db_pool_pre_ping: bool = True
    db_echo: bool = False
    """Log every SQL statement (development only)."""

    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0)
    """How long a SQLite connection waits for a lock held by another process."""
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    """FULL makes every acknowledged commit durable, also across power loss."""

    limits: Limits = Field(default_factory=Limits)

    password_hash_time_cost: int = Field(default=3, ge=2)
    password_hash_memory_kib: int = Field(default=65_536, ge=19_456)
    password_hash_parallelism: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _url_not_empty(self) -> Settings:
        if not self.database_url.strip():
            raise ValueError("database_url must not be empty")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
