"""The peers: the stores chatbot developers use today, each through the public API its own
documentation shows, one module per package. A peer whose package is missing (or fails to
import) is reported as "not installed: <reason>", never dropped.

Their packages are the ``bench`` extra (``pip install -e '.[bench]'``); the normal test suite
does without them.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Any

from bench.impl import Context, Implementation


@dataclass(frozen=True)
class PeerModule:
    module: str
    distribution: str
    """The package a developer installs."""
    title: str


PEERS = (
    PeerModule("langchain_postgres", "langchain-postgres", "langchain-postgres"),
    PeerModule("langchain_sql", "langchain-community", "langchain-community SQL"),
    PeerModule("agents_sqlalchemy", "openai-agents", "Agents SDK SQLAlchemySession"),
    PeerModule("agents_sqlite", "openai-agents", "Agents SDK SQLiteSession"),
    PeerModule("llama_index_postgres", "llama-index-storage-chat-store-postgres", "llama-index PG"),
    PeerModule("llama_index_sqlite", "llama-index-storage-chat-store-sqlite", "llama-index SQLite"),
)


def load(peer: PeerModule) -> tuple[Any | None, str | None]:
    """The peer's module, or ``None`` and why it cannot be used."""
    try:
        with warnings.catch_warnings():
            # langchain-community warns on import that it is being sunset.
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module(f"bench.peers.{peer.module}"), None
    except Exception as exc:  # ImportError, or a package broken against its dependencies
        return None, f"not installed: {type(exc).__name__}: {exc}"[:300]


def discover(
    ctx: Context, only: set[str] | None = None
) -> tuple[list[Implementation], list[dict[str, str]]]:
    """The peers' implementations for ``ctx.backend``, and the peers that cannot run."""
    found: list[Implementation] = []
    missing: list[dict[str, str]] = []
    for peer in PEERS:
        if only is not None and peer.module not in only:
            continue
        module, reason = load(peer)
        if module is None:
            missing.append(
                {
                    "peer": peer.title,
                    "distribution": peer.distribution,
                    "module": peer.module,
                    "status": reason or "?",
                }
            )
            continue
        for cls in module.IMPLEMENTATIONS:
            if ctx.backend in cls.backends:
                found.append(cls(ctx))
    return found, missing
