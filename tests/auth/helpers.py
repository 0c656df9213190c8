"""Helpers of the authentication tests: raw SQL on the stored tokens, self-signed JWTs, RSA keys,
a real local JWKS server, and a notifier that records what it was asked to deliver."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from sqlalchemy import Uuid, bindparam, select, text, update
from sqlalchemy.engine import RowMapping

from convstore import Store
from convstore.auth.repository import refresh_tokens, reset_tokens, users
from convstore.kit.types import utc_now
from tests.support.api import TEST_SECRET

API = "/api/v1/auth"
ISSUER = "convstore"
AUDIENCE = "convstore-api"
OPAQUE_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
"""The URL-safe base64 alphabet of our opaque tokens (no dots: never a JWT)."""


def sha256_hex(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def b64url_decode_json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- our own access tokens -----------------------------------------------------------------


def access_claims(
    user_id: uuid.UUID | str, *, sid: uuid.UUID | str | None = None, **overrides: Any
) -> dict[str, Any]:
    """The claims ``AccessTokens.issue`` puts in a token; ``overrides`` set (or, with the value
    ``None``, remove) single claims."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "typ": "access",
        "jti": uuid.uuid4().hex[:16],
    }
    if sid is not None:
        claims["sid"] = str(sid)
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign_hs256(
    claims: Mapping[str, Any],
    key: str | bytes = TEST_SECRET,
    *,
    headers: Mapping[str, Any] | None = None,
) -> str:
    return jwt.encode(dict(claims), key, algorithm="HS256", headers=dict(headers or {}))


_HMAC_DIGESTS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def hmac_token(header: Mapping[str, Any], claims: Mapping[str, Any], key: bytes) -> str:
    """An HS* token built by hand (``header["alg"]`` picks the digest): PyJWT refuses PEM keys
    as HMAC secrets and warns about short ones; an attacker does neither."""
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    digest = _HMAC_DIGESTS[header["alg"]]
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned_token(claims: Mapping[str, Any], alg: str = "none") -> str:
    return f"{b64url_json({'alg': alg, 'typ': 'JWT'})}.{b64url_json(claims)}."


def session_of(access_token: str) -> uuid.UUID:
    """The ``sid`` (refresh-token family) of one of our access tokens."""
    claims = jwt.decode(access_token, TEST_SECRET, algorithms=["HS256"], audience=AUDIENCE)
    return uuid.UUID(claims["sid"])


# --- an external issuer ----------------------------------------------------------------------


@dataclass(frozen=True)
class RsaKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str) -> RsaKey:
        return cls(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    @property
    def jwk(self) -> dict[str, Any]:
        key: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private.public_key(), as_dict=True
        )
        return {**key, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        kid: str | None | bool = True,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """RS256 over ``claims``; ``kid=True`` names this key, a string names another."""
        values: dict[str, Any] = dict(headers or {})
        if kid is True:
            values["kid"] = self.kid
        elif isinstance(kid, str):
            values["kid"] = kid
        return jwt.encode(dict(claims), self.private, algorithm="RS256", headers=values)


def external_claims(
    issuer: str, audience: str, subject: str | None = None, **overrides: Any
) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": subject or f"ext-{uuid.uuid4().hex}",
        "iat": now,
        "exp": now + 300,
    }
    for name, value in overrides.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


class JwksServer:
    """A real HTTP server on 127.0.0.1 serving a switchable JWKS and counting GETs."""

    def __init__(self, keys: list[RsaKey] | None = None) -> None:
        self._lock = threading.Lock()
        self._gets = 0
        self.body: bytes = b""
        self.status = 200
        self.publish(keys or [])
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner._gets += 1
                    body, status = owner.body, owner.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def publish(self, keys: list[RsaKey]) -> None:
        body = json.dumps({"keys": [k.jwk for k in keys]}).encode()
        with self._lock:
            self.body = body
            self.status = 200

    @property
    def gets(self) -> int:
        with self._lock:
            return self._gets

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/.well-known/jwks.json"

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- password reset delivery -----------------------------------------------------------------


@dataclass
class Delivery:
    email: str
    token: str
    link: str | None
    expires_at: datetime


@dataclass
class RecordingNotifier:
    """A ``Notifier`` that keeps every reset message instead of sending it."""

    sent: list[Delivery] = field(default_factory=list)

    async def password_reset(
        self, email: str, token: str, link: str | None, expires_at: datetime
    ) -> None:
        self.sent.append(Delivery(email, token, link, expires_at))

    def for_email(self, email: str) -> list[Delivery]:
        return [d for d in self.sent if d.email == email]


# --- raw SQL ---------------------------------------------------------------------------------


async def stored_password_hash(store: Store, user_id: uuid.UUID) -> str | None:
    stmt = text("SELECT hashed_password FROM users WHERE id = :uid").bindparams(
        bindparam("uid", user_id, type_=Uuid())
    )
    async with store.db.engine.connect() as conn:
        value: str | None = (await conn.execute(stmt)).scalar_one()
    return value


def argon2_parameters(encoded: str) -> dict[str, int]:
    """``$argon2id$v=19$m=…,t=…,p=…$salt$hash`` → {"v": 19, "m": …, "t": …, "p": …}."""
    match = re.fullmatch(
        r"\$argon2id\$v=(?P<v>\d+)\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$[^$]+\$[^$]+", encoded
    )
    assert match is not None, f"not an argon2id hash: {encoded!r}"
    return {name: int(value) for name, value in match.groupdict().items()}


async def refresh_row(store: Store, raw: str) -> RowMapping | None:
    """The stored row of a refresh token, found by its SHA-256 (raw SQL, not the API)."""
    stmt = select(*refresh_tokens.c).where(refresh_tokens.c.token_hash == sha256_hex(raw))
    async with store.db.engine.connect() as conn:
        row: RowMapping | None = (await conn.execute(stmt)).mappings().one_or_none()
    return row


async def family_rows(store: Store, family_id: uuid.UUID) -> list[RowMapping]:
    stmt = select(*refresh_tokens.c).where(refresh_tokens.c.family_id == family_id)
    async with store.db.engine.connect() as conn:
        return list((await conn.execute(stmt)).mappings().all())


async def user_refresh_rows(store: Store, user_id: uuid.UUID) -> list[RowMapping]:
    stmt = select(*refresh_tokens.c).where(refresh_tokens.c.user_id == user_id)
    async with store.db.engine.connect() as conn:
        return list((await conn.execute(stmt)).mappings().all())


async def age_family(store: Store, family_id: uuid.UUID, seconds: float) -> None:
    """Move every ``created_at`` of a refresh-token family ``seconds`` into the past."""
    async with store.db.engine.begin() as conn:
        rows = (
            await conn.execute(
                select(refresh_tokens.c.id, refresh_tokens.c.created_at).where(
                    refresh_tokens.c.family_id == family_id
                )
            )
        ).all()
        for token_id, created in rows:
            await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.id == token_id)
                .values(created_at=created - timedelta(seconds=seconds))
            )


async def expire_refresh(store: Store, raw: str) -> None:
    """Set a refresh token's ``expires_at`` one second into the past (idle timeout reached)."""
    async with store.db.engine.begin() as conn:
        result = await conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == sha256_hex(raw))
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
        assert result.rowcount == 1


async def reset_rows(store: Store, user_id: uuid.UUID) -> list[RowMapping]:
    stmt = select(*reset_tokens.c).where(reset_tokens.c.user_id == user_id)
    async with store.db.engine.connect() as conn:
        return list((await conn.execute(stmt)).mappings().all())


async def expire_reset(store: Store, raw: str) -> None:
    async with store.db.engine.begin() as conn:
        result = await conn.execute(
            update(reset_tokens)
            .where(reset_tokens.c.token_hash == sha256_hex(raw))
            .values(expires_at=utc_now() - timedelta(seconds=1))
        )
        assert result.rowcount == 1


async def identity_rows(store: Store, issuer: str, subject: str) -> list[RowMapping]:
    stmt = select(*users.c).where(users.c.auth_provider == issuer, users.c.auth_subject == subject)
    async with store.db.engine.connect() as conn:
        return list((await conn.execute(stmt)).mappings().all())


# --- HTTP ----------------------------------------------------------------------------------


def client_from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    """A client whose requests come from ``ip`` (the ASGI scope's peer address)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 50_000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/login", json={"email": email, "password": password})


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{API}/me", headers=bearer(token))


def assert_unauthorized(response: httpx.Response) -> None:
    """401 with a ``WWW-Authenticate`` challenge and an RFC 9457 problem body."""
    assert response.status_code == 401, response.text
    assert response.headers.get("www-authenticate", "").startswith("Bearer")
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == "invalid_credentials"


def assert_invalid(response: httpx.Response, field_name: str) -> None:
    """422 problem naming ``field_name`` among the rejected fields."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in response.json()["errors"]]
    assert field_name in fields, fields
