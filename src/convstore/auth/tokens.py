"""Access tokens (JWT, HS256, our own) and tokens of an external issuer (JWKS or a PEM key).

Every rule of RFC 8725 that applies: the algorithm list is fixed per issuer and never read from
the token; ``iss``, ``aud``, ``exp``, ``iat``, ``sub`` (and our ``typ``) are required; header
parameters that point at other keys (``jku``, ``x5u``, ``jwk``, ``x5c``) or demand unknown
processing (``crit``) are refused; tokens above 8 KiB are refused before decoding.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from pydantic import TypeAdapter, ValidationError

from convstore.config import Settings
from convstore.errors import InvalidCredentials
from convstore.kit.jsoninput import loads
from convstore.users.schemas import Identity

ACCESS_ALGORITHM = "HS256"
ACCESS_TYPE = "access"
MAX_TOKEN_BYTES = 8_192
LEEWAY_SECONDS = 10
VERIFIED_TOKENS = 10_000
"""How many verified access tokens a process remembers (the oldest is forgotten first)."""
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]
_IDENTITY: TypeAdapter[str] = TypeAdapter(Identity)


def _invalid() -> InvalidCredentials:
    return InvalidCredentials("invalid or expired token")


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_BYTES:
        raise _invalid()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid() from None
    if FORBIDDEN_HEADERS.intersection(header):
        raise _invalid()
    return header


def _is_identity(subject: Any) -> bool:
    """Whether ``subject`` can be stored as the user's ``auth_subject`` exactly as the issuer
    wrote it: a subject that cannot is refused, never cut or cleaned (two subjects must never
    become one)."""
    try:
        _IDENTITY.validate_python(subject, strict=True)
    except ValidationError:
        return False
    return True


def token_issuer(token: str) -> str | None:
    """The unverified ``iss`` claim: only to choose which verifier to use."""
    _header(token)
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid() from None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID | None


class AccessTokens:
    """Our own access tokens: short-lived, signed with the server secret."""

    def __init__(self, settings: Settings, key: bytes) -> None:
        self._key = key
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = settings.access_token_ttl_seconds
        # Tokens this process verified, with their expiry: a client sends the same token on
        # every request, and checking its signature and claims again cost about a tenth of
        # serving a page of messages (docs/performance.md, fourth round). An entry is only
        # a verified token's claims: its session is still checked on every request.
        self._verified: OrderedDict[str, tuple[AccessClaims, int]] = OrderedDict()

    def issue(self, user_id: uuid.UUID, session_id: uuid.UUID | None = None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "typ": ACCESS_TYPE,
            "jti": secrets.token_hex(8),
        }
        if session_id is not None:
            claims["sid"] = str(session_id)
        return jwt.encode(claims, self._key, algorithm=ACCESS_ALGORITHM, headers={"typ": "at+jwt"})

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid access token.

        Raises:
            InvalidCredentials: anything wrong with the token, for any reason.
        """
        known = self._verified.get(token)
        if known is not None:
            if time.time() < known[1] + LEEWAY_SECONDS:
                return known[0]
            self._verified.pop(token, None)
            raise _invalid()  # expired since it was verified
        verified = self._verify(token)
        self._verified[token] = verified
        if len(self._verified) > VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return verified[0]

    def _verify(self, token: str) -> tuple[AccessClaims, int]:
        _header(token)
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ACCESS_ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": [*REQUIRED_CLAIMS, "typ"]},
            )
            if claims.get("typ") != ACCESS_TYPE:
                raise _invalid()
            sid = claims.get("sid")
            access = AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(sid) if sid else None)
            return access, int(claims["exp"])
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
            raise _invalid() from None


class ExternalIssuer:
    """Verifies tokens of one configured external issuer.

    Keys come from a PEM public key or a JWKS URL. The JWKS is cached; a token with an unknown
    ``kid`` triggers a refetch at most once per cooldown, so random ``kid`` values cannot turn
    convstore into an amplifier against the issuer.
    """

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        if settings.external_issuer is None:
            raise ValueError("external_issuer is not configured")
        self.issuer = settings.external_issuer
        self.audience = settings.external_audience
        self.algorithms = list(settings.external_algorithms)
        self._jwks_url = settings.external_jwks_url
        self._pem = settings.external_public_key
        self._cache_seconds = settings.jwks_cache_seconds
        self._cooldown = settings.jwks_refetch_cooldown_seconds
        self._client = client
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the JWKS was fetched (observable by operators and tests)."""

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims (``sub`` is the subject at the issuer)."""
        header = _header(token)
        key = await self._key_for(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError:
            raise _invalid() from None
        if not _is_identity(claims.get("sub")):
            raise _invalid()
        return claims

    async def _key_for(self, kid: Any) -> Any:
        if self._pem is not None:
            return self._pem
        if kid is not None and not isinstance(kid, str):
            raise _invalid()
        known = kid in self._keys
        if not known or (self._stale() and not self._lock.locked()):
            # Through the lock: a request whose key is missing waits for a fetch under way
            # instead of failing on the empty (or old) cache; a known key serves meanwhile.
            async with self._lock:
                due = time.monotonic() - self._attempted_at >= self._cooldown
                if due and (kid not in self._keys or self._stale()):
                    self._attempted_at = time.monotonic()
                    await self._fetch()
        found = self._keys.get(kid)
        if found is None and kid is None and len(self._keys) == 1:
            found = next(iter(self._keys.values()))
        if found is None:
            raise _invalid()
        return found

    def _stale(self) -> bool:
        return time.monotonic() - self._fetched_at > self._cache_seconds

    async def _fetch(self) -> None:
        if self._jwks_url is None:
            raise _invalid()
        client = self._client or httpx.AsyncClient(timeout=5)
        try:
            response = await client.get(self._jwks_url)
            response.raise_for_status()
            jwks = jwt.PyJWKSet.from_dict(loads(response.content))
        except (httpx.HTTPError, ValueError, jwt.PyJWTError):
            return  # keep the keys we have; the next attempt waits for the cooldown
        finally:
            if self._client is None:
                await client.aclose()
        self.fetches += 1
        self._keys = {k.key_id: k for k in jwks.keys}
        self._fetched_at = time.monotonic()
