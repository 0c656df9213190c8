"""Settings: one typed model read from ``CONVSTORE_*`` environment variables (or ``.env``).

Read them through :func:`get_settings`; tests and embedders pass a :class:`Settings` instance
explicitly instead of editing the environment.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    max_item_bytes: int = Field(default=1_048_576, ge=64)
    """Largest JSON encoding (UTF-8 bytes) of one item an agent adds (see docs/schema.md)."""


class ChatModel(BaseModel):
    """A model a conversation may pick with ``metadata.model`` (``CONVSTORE_CHAT_MODELS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: Literal["builtin", "openai"]
    model: str | None = Field(default=None, min_length=1)
    """The provider's model name (``openai``; unset: ``CONVSTORE_OPENAI_MODEL``)."""


class McpServer(BaseModel):
    """An MCP server whose tools the assistant may call (``CONVSTORE_MCP_SERVERS``): a
    command started over stdio, or a streamable HTTP ``url``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command (stdio) or url (streamable HTTP)")
        return self


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
    db_statement_timeout_ms: int = Field(default=5_000, ge=0)
    """PostgreSQL ``statement_timeout`` of every connection (0: not set, the role's applies)."""
    db_lock_timeout_ms: int = Field(default=2_000, ge=0)
    """PostgreSQL ``lock_timeout``: the longest wait for a row or table lock (0: not set)."""
    db_idle_in_transaction_timeout_ms: int = Field(default=30_000, ge=0)
    """PostgreSQL ``idle_in_transaction_session_timeout``: a transaction left idle this long
    is ended by the server, its locks released (0: not set)."""

    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    """``/readyz`` fails when no write could start within this long (a SQLite write lock held,
    a read-only or unreachable PostgreSQL)."""

    sqlite_busy_timeout_ms: int = Field(default=5_000, ge=0)
    """How long a SQLite connection waits for a lock held by another process."""
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    """FULL makes every acknowledged commit durable, also across power loss."""

    limits: Limits = Field(default_factory=Limits)

    password_hash_time_cost: int = Field(default=3, ge=2)
    password_hash_memory_kib: int = Field(default=65_536, ge=19_456)
    """Argon2id memory in KiB; OWASP's floor (19 MiB) is the minimum accepted."""
    password_hash_parallelism: int = Field(default=4, ge=1)

    secret_key: SecretStr | None = None
    """Signs access tokens (HS256, at least 32 bytes). Unset outside production: generated and
    kept in a 0600 file beside the SQLite database (or in the working directory)."""
    jwt_issuer: str = "convstore"
    jwt_audience: str = "convstore-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=14 * 86_400, ge=60)
    """A refresh token unused this long expires (idle timeout)."""
    refresh_token_absolute_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    """No session outlives this, however often it is refreshed."""
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0, le=60)
    """Within this window the parent of the current refresh token still returns that token
    (two tabs refreshing at once); later reuse revokes the whole family."""
    password_reset_ttl_seconds: int = Field(default=3_600, ge=60)
    password_reset_url: str | None = None
    """Link template for reset mails, with ``{token}``; None: the notifier gets the bare token."""

    external_issuer: str | None = None
    """Accept access tokens from this issuer too (Better Auth, an OIDC provider)."""
    external_audience: str | None = None
    external_jwks_url: str | None = None
    external_public_key: str | None = None
    """PEM public key of the external issuer (instead of a JWKS URL)."""
    external_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    external_email_verified: bool = False
    """Trust the issuer's ``email`` claim without ``email_verified: true`` (for an issuer that
    only ever puts verified addresses in its tokens). ``email_verified: false`` is never
    trusted. An untrusted address gives the account a placeholder one."""
    jwks_cache_seconds: int = Field(default=300, ge=1)
    jwks_refetch_cooldown_seconds: int = Field(default=30, ge=0)
    """An unknown ``kid`` triggers at most one JWKS fetch per this many seconds."""

    assistant_provider: Literal["builtin", "openai"] = "builtin"
    """``builtin``: the offline task assistant; ``openai``: any Chat Completions endpoint."""
    assistant_timezone: str = "UTC"
    """The zone for "today" and "friday" (a conversation's ``metadata.timezone`` overrides)."""
    assistant_max_steps: int = Field(default=6, ge=1, le=32)
    """Model calls per turn at most (each may call tools)."""
    assistant_max_tool_calls: int = Field(default=16, ge=1, le=128)
    chat_history_messages: int = Field(default=50, ge=1, le=1_000)
    """The most recent messages given to the assistant."""
    chat_history_chars: int = Field(default=60_000, ge=1_000)
    """…and no more text than this (older messages are dropped first)."""
    chat_turn_timeout_seconds: float = Field(default=120.0, gt=0)
    chat_cancel_on_disconnect: bool = False
    """True: a streamed turn whose client goes away is ended (its reply stored as
    interrupted); False (the default) lets it run to the end and store the whole reply, which
    the client can resume."""
    chat_models: dict[str, ChatModel] = Field(default_factory=dict)
    """The models a conversation may choose by name in ``metadata.model``, e.g.
    ``{"gpt-4o": {"provider": "openai", "model": "gpt-4o"}, "offline": {"provider":
    "builtin"}}``; a conversation without one gets ``CONVSTORE_ASSISTANT_PROVIDER``."""
    mcp_servers: list[McpServer] = Field(default_factory=list)
    """MCP servers whose tools the ``openai`` assistant may call, e.g. ``[{"name": "files",
    "command": "python", "args": ["files_server.py"]}, {"name": "web", "url":
    "http://127.0.0.1:9000/mcp"}]``."""
    chat_frames_flush_seconds: float = Field(default=0.1, gt=0, le=5)
    """A turn stores its frames in batches this often (and checks for a cancel request)."""
    chat_frames_retention_hours: float = Field(default=24.0, gt=0)
    """A turn's stored frames are deleted this long after they were written."""
    chat_follow_poll_seconds: float = Field(default=0.2, gt=0, le=5)
    """How often a resumed stream looks for the turn's new frames in the store."""
    openai_base_url: str | None = None
    """E.g. ``http://localhost:11434/v1`` (Ollama) or a vLLM server; unset: OpenAI's."""
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    system_prompt: str = (
        "You are a helpful assistant that manages the user's todo list with the tools you are "
        "given. Use them to add, list, complete, reopen, update and delete tasks; answer briefly "
        "and say what you changed. Ask when a request is ambiguous."
    )

    auto_migrate: bool = True
    """``serve`` upgrades a database that is behind the migrations on start (and logs it).
    Turn off where deployments run ``convstore db upgrade`` themselves."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65_535)
    workers: int = Field(default=1, ge=1, le=64)
    """``serve``'s uvicorn worker processes. Above one, give the rate limiter a shared storage
    (``rate_limit_storage_url``): with ``memory://`` each worker counts on its own."""
    api_docs: bool | None = None
    """Serve ``/docs``, ``/redoc`` and ``/openapi.json``. Unset: on, except in production,
    where the map of the whole API is not handed to whoever asks."""
    access_log: bool = True
    """``serve`` logs one line per request (the access log)."""
    log_format: Literal["auto", "json", "text"] = "auto"
    """``serve``'s log lines: ``json`` (one object a line), ``text``, or ``auto``: text when
    stderr is a terminal, JSON otherwise."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins a browser may call the API from (a comma list or a JSON list); empty: no CORS
    answers at all. ``*``: any origin (not with credentials)."""
    cors_allow_credentials: bool = False
    """Let browsers send cookies and HTTP authentication to the allowed origins."""
    cors_max_age_seconds: int = Field(default=600, ge=0, le=86_400)
    """How long a browser may cache a preflight answer."""

    metrics_enabled: bool = True
    """Serve ``/metrics`` (Prometheus text format; needs the server extra)."""
    metrics_token: SecretStr | None = None
    """When set, ``/metrics`` needs ``Authorization: Bearer <token>``."""
    otel_enabled: bool | None = None
    """Traces (the otel extra): unset: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the
    extra is installed; true: on (an error without the extra); false: off."""

    max_body_bytes: int = Field(default=1_048_576, ge=1_024)
    """Larger request bodies are refused with 413, larger WebSocket messages with close 1009."""
    max_header_bytes: int = Field(default=65_536, ge=4_096, le=1_048_576)
    """``serve``: a request head (request line and headers) above this many bytes is refused
    with 431 before the rest of it is read."""
    max_headers: int = Field(default=100, ge=16, le=10_000)
    """``serve``: a request with more header fields than this is refused with 431."""
    ws_auth_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """A chat WebSocket that has not authenticated this long after it opened is closed."""
    idempotency_ttl_seconds: int = Field(default=86_400, ge=60)
    api_keys_per_user: int = Field(default=100, ge=1, le=10_000)
    """The most API keys one user may hold; creating one more is refused with 409."""

    purge_retention_days: float | None = Field(default=None, ge=0)
    """Soft-deleted conversations are deleted for good this many days after their deletion:
    the default of ``convstore purge``, and, when set, ``serve`` purges periodically
    (unset: never automatically)."""
    purge_interval_seconds: float = Field(default=3_600, ge=1)
    """How often ``serve`` purges when ``purge_retention_days`` is set."""

    rate_limit_enabled: bool = True
    rate_limit_storage_url: str = "memory://"
    """``memory://`` (one process) or ``redis://host:6379`` (shared by every worker)."""
    rate_limit_user: str = "600/minute"
    """Requests per authenticated user (keyed on the token's subject)."""
    rate_limit_auth_ip: str = "30/minute"
    """Login, register, refresh and password-reset requests per client IP."""
    rate_limit_login_account: str = "5/minute"
    """Login attempts per account and client IP."""
    rate_limit_login_account_failures: str = "20/hour"
    """Failed logins per account over every client IP together: past it, the account's logins
    are refused (429) except from a client IP that signed in to it recently
    (``login_known_client_days``). Bounds a distributed guessing attack to this many guesses
    an hour, however many addresses it comes from."""
    login_known_client_days: int = Field(default=30, ge=0)
    """A client IP that signed in to an account stays exempt from that account's failure cap
    this long, so an attack cannot lock the owner out of where they usually sign in
    (0: no exemption)."""

    @property
    def serves_api_docs(self) -> bool:
        """Whether the API documents are served (``api_docs``, or its default)."""
        return self.api_docs if self.api_docs is not None else self.env != "production"

    rate_limit_chat: str = "30/minute"
    """Chat turns per authenticated user (each one costs model tokens), counted on top of
    ``rate_limit_user``: every POST chat route and every WebSocket message."""

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _token_or_unset(cls, value: object) -> object:
        """An empty ``CONVSTORE_METRICS_TOKEN`` (a compose default) leaves ``/metrics`` open."""
        return None if value == "" else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        """A comma list (``https://a.example,https://b.example``) or a JSON list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin != "*" and (
                not origin.startswith(("http://", "https://"))
                or origin.rstrip("/") != origin
                or origin.count("/") != 2
            ):
                raise ValueError(
                    f"{origin!r} is not an origin: scheme://host[:port], no path or trailing /"
                )
        return origins

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.database_url.strip():
            raise ValueError("database_url must not be empty")
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "cors_origins must name the origins when cors_allow_credentials is true "
                "(a browser refuses credentials with '*')"
            )
        if self.external_issuer is not None:
            if not self.external_audience:
                raise ValueError("external_audience is required with external_issuer")
            if not (self.external_jwks_url or self.external_public_key):
                raise ValueError("external_jwks_url or external_public_key is required")
            if any(
                alg.upper().startswith("HS") or alg == "none" for alg in self.external_algorithms
            ):
                raise ValueError("external_algorithms must be asymmetric (RS*, ES*, PS*, EdDSA)")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
