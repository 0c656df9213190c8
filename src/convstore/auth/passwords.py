"""Password hashing with Argon2id. Hashing is CPU-heavy, so it runs off the event loop."""

from __future__ import annotations

import asyncio
import gzip
from functools import cache
from importlib import resources
from typing import Any

from convstore.config import Settings
from convstore.errors import InvalidInput
from convstore.extras import require


@cache
def common_passwords() -> frozenset[str]:
    """The 8,354 passwords of 8+ characters among the 20,000 most common ones (lower-cased).

    The list was compiled by Royce Williams and is distributed with Django (BSD licence).
    """
    data = resources.files("convstore.auth").joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def check_password_policy(password: str, field: str = "password") -> None:
    """Refuse the most common passwords (length 8–128 is checked by the schemas).

    No composition rules: a long passphrase of plain words is a good password.
    """
    if password.lower() in common_passwords():
        raise InvalidInput("this password is too common; choose another", field=field)


class Passwords:
    """Hash and verify passwords with the parameters from settings (at least OWASP's floor).

    Argon2 (the server extra) is loaded on the first password: a store whose users have none
    (the storage library alone) does without it.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._argon2: Any = None
        self._dummy: str | None = None

    @property
    def _hasher(self) -> Any:
        if self._argon2 is None:
            require("argon2", "hashing a password")
            from argon2 import PasswordHasher

            self._argon2 = PasswordHasher(
                time_cost=self._settings.password_hash_time_cost,
                memory_cost=self._settings.password_hash_memory_kib,
                parallelism=self._settings.password_hash_parallelism,
            )
        return self._argon2

    async def hash(self, password: str) -> str:
        """The Argon2id hash of ``password`` (off the event loop)."""
        hasher = self._hasher
        return await asyncio.to_thread(hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> tuple[bool, str | None]:
        """Check ``password``; returns (matches, new hash if the parameters changed).

        With ``hashed=None`` (unknown user) a dummy hash is verified, so the cost is the same.
        """
        if hashed is None:
            if self._dummy is None:
                self._dummy = await self.hash("convstore-dummy-password")
            await asyncio.to_thread(self._verify, self._dummy, password)
            return False, None
        if not await asyncio.to_thread(self._verify, hashed, password):
            return False, None
        if self._hasher.check_needs_rehash(hashed):
            return True, await self.hash(password)
        return True, None

    def _verify(self, hashed: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return bool(self._hasher.verify(hashed, password))
        except (VerificationError, InvalidHashError):
            return False
