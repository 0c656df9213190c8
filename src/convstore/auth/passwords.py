"""Password hashing with Argon2id. Hashing is CPU-heavy, so it runs off the event loop."""

from __future__ import annotations

import asyncio
import gzip
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from convstore.config import Settings
from convstore.errors import InvalidInput


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
    """Hash and verify passwords with the parameters from settings (at least OWASP's floor)."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_cost=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        )
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

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
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False
