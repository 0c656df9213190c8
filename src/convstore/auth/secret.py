"""The signing secret: from settings, or generated once and kept beside the database."""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path

from convstore.config import Settings
from convstore.db import is_sqlite, normalize_url, sqlite_path

MIN_SECRET_BYTES = 32
"""HS256 keys need at least 256 bits (RFC 8725 §3.5)."""
SECRET_FILE_SUFFIX = ".secret"

log = logging.getLogger("convstore.auth")


class WeakSecret(RuntimeError):
    """Production refuses to start without a strong ``CONVSTORE_SECRET_KEY``."""


def secret_file(settings: Settings) -> Path:
    """Where a generated secret lives: beside the SQLite file, else in the working directory."""
    url = normalize_url(settings.database_url)
    path = sqlite_path(url) if is_sqlite(url) else None
    if path is not None:
        return path.with_name(path.name + SECRET_FILE_SUFFIX)
    return Path.cwd() / f"convstore{SECRET_FILE_SUFFIX}"


def resolve_secret(settings: Settings) -> bytes:
    """The HS256 signing key.

    Raises:
        WeakSecret: in production, when the secret is missing or shorter than 32 bytes.
    """
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value().encode()
        if len(key) >= MIN_SECRET_BYTES:
            return key
        if settings.env == "production":
            raise WeakSecret(f"CONVSTORE_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes")
        log.warning(
            "CONVSTORE_SECRET_KEY is shorter than %d bytes; fine for development only",
            MIN_SECRET_BYTES,
        )
        return key
    if settings.env == "production":
        raise WeakSecret("CONVSTORE_SECRET_KEY is required in production")
    path = secret_file(settings)
    if path.exists():
        return _read_secret_file(path)
    key = secrets.token_urlsafe(48).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_secret_file(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    log.warning(
        "no CONVSTORE_SECRET_KEY set: generated one in %s (mode 0600); "
        "set CONVSTORE_SECRET_KEY in production",
        path,
    )
    return key


def _read_secret_file(path: Path, wait_seconds: float = 1.0) -> bytes:
    """A generated secret, waiting briefly for a process that is still writing it.

    Raises:
        WeakSecret: the file stays empty or short (a crash mid-write): refuse to sign with it.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        key = path.read_bytes().strip()
        if len(key) >= MIN_SECRET_BYTES or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if len(key) < MIN_SECRET_BYTES:
        raise WeakSecret(
            f"{path} holds fewer than {MIN_SECRET_BYTES} bytes: delete it to generate a new "
            "secret, or set CONVSTORE_SECRET_KEY"
        )
    return key
