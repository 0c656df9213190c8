"""Access tokens (RFC 8725, ASVS V9): HS256, 15 minutes, every claim required, and every
negative vector refused with 401, a ``WWW-Authenticate`` challenge and a problem body.

The tokens are signed here with PyJWT and the test secret, with the claims the app itself uses;
a correctly signed control token is accepted, so each refusal is due to the one thing changed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.auth.helpers import (
    API,
    AUDIENCE,
    ISSUER,
    RsaKey,
    access_claims,
    assert_unauthorized,
    b64url_decode_json,
    b64url_json,
    hmac_token,
    me,
    session_of,
    sign_hs256,
    unsigned_token,
)
from tests.support.api import TEST_SECRET, Account, api_settings, client_for, register, running_app

OTHER_SECRET = "another-secret-key-that-is-also-32-bytes-long"
EXTERNAL_ISSUER = "https://idp.example.test"


def _now() -> int:
    return int(time.time())


def _tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = b64url_decode_json(payload)
    claims.update(changes)
    return f"{header}.{b64url_json(claims)}.{signature}"


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


TokenMaker = Callable[[Account], str]
"""Builds a token for the account (whose id and signed-in session are known)."""

NEGATIVE_VECTORS: dict[str, TokenMaker] = {
    "alg none": lambda a: unsigned_token(access_claims(a.id)),
    "alg None": lambda a: unsigned_token(access_claims(a.id), alg="None"),
    "alg NONE with a signature": lambda a: unsigned_token(access_claims(a.id), alg="NONE") + "c2ln",
    "HS384 with our secret": lambda a: hmac_token(
        {"alg": "HS384", "typ": "JWT"}, access_claims(a.id), TEST_SECRET.encode()
    ),
    "HS512 with our secret": lambda a: hmac_token(
        {"alg": "HS512", "typ": "JWT"}, access_claims(a.id), TEST_SECRET.encode()
    ),
    "signed with another secret": lambda a: sign_hs256(access_claims(a.id), OTHER_SECRET),
    "wrong aud": lambda a: sign_hs256(access_claims(a.id, aud="someone-else")),
    "aud list without ours": lambda a: sign_hs256(access_claims(a.id, aud=["x", "y"])),
    "no aud": lambda a: sign_hs256(access_claims(a.id, aud=None)),
    "wrong iss": lambda a: sign_hs256(access_claims(a.id, iss="https://evil.example")),
    "no iss": lambda a: sign_hs256(access_claims(a.id, iss=None)),
    "expired beyond the leeway": lambda a: sign_hs256(
        access_claims(a.id, iat=_now() - 1000, nbf=_now() - 1000, exp=_now() - 60)
    ),
    "nbf in the future": lambda a: sign_hs256(access_claims(a.id, nbf=_now() + 600)),
    "iat in the future": lambda a: sign_hs256(access_claims(a.id, iat=_now() + 600)),
    "no exp": lambda a: sign_hs256(access_claims(a.id, exp=None)),
    "exp not a number": lambda a: sign_hs256(access_claims(a.id, exp="tomorrow")),
    "no iat": lambda a: sign_hs256(access_claims(a.id, iat=None)),
    "no sub": lambda a: sign_hs256(access_claims(a.id, sub=None)),
    "sub not a uuid": lambda a: sign_hs256(access_claims(a.id, sub="admin")),
    "sub of nobody": lambda a: sign_hs256(access_claims(uuid.uuid4())),
    "sid of no session": lambda a: sign_hs256(access_claims(a.id, sid=uuid.uuid4())),
    "sid not a uuid": lambda a: sign_hs256(access_claims(a.id, sid="x")),
    "no typ": lambda a: sign_hs256(access_claims(a.id, typ=None)),
    "typ refresh": lambda a: sign_hs256(access_claims(a.id, typ="refresh")),
    "typ id": lambda a: sign_hs256(access_claims(a.id, typ="id_token")),
    "tampered payload (sub)": lambda a: _tamper_payload(a.access_token, sub=str(uuid.uuid4())),
    "tampered payload (exp)": lambda a: _tamper_payload(a.access_token, exp=_now() + 10**6),
    "tampered signature": lambda a: _tamper_signature(a.access_token),
    "signature stripped": lambda a: a.access_token.rsplit(".", 1)[0] + ".",
    "trailing garbage": lambda a: a.access_token + "x",
    "extra segment": lambda a: a.access_token + ".e30",
    "the refresh token": lambda a: a.refresh_token,
    "jku header": lambda a: sign_hs256(
        access_claims(a.id), headers={"jku": "https://evil.example/jwks.json"}
    ),
    "x5u header": lambda a: sign_hs256(
        access_claims(a.id), headers={"x5u": "https://evil.example/cert.pem"}
    ),
    "jwk header": lambda a: sign_hs256(
        access_claims(a.id), headers={"jwk": {"kty": "oct", "k": "c2VjcmV0"}}
    ),
    "x5c header": lambda a: sign_hs256(access_claims(a.id), headers={"x5c": ["MIIB"]}),
    "crit header": lambda a: sign_hs256(
        access_claims(a.id), headers={"crit": ["exp"], "exp": _now() + 60}
    ),
    "over 8 KiB": lambda a: sign_hs256(access_claims(a.id, pad="p" * 8_300)),
    "garbage": lambda a: "garbage",
    "three dots": lambda a: "a.b.c",
    "empty segments": lambda a: "..",
    "base64 of nothing useful": lambda a: f"{b64url_json({'alg': 'HS256'})}.e30.AAAA",
    "header not JSON": lambda a: "bm90IGpzb24.e30.AAAA",
}


@pytest.fixture
def control(alice: Account) -> str:
    """A token signed here, exactly as the app signs them: it must be accepted."""
    return sign_hs256(access_claims(alice.id, sid=session_of(alice.access_token)))


async def test_login_issues_a_15_minute_hs256_token(
    client: httpx.AsyncClient, alice: Account
) -> None:
    response = await client.post(
        f"{API}/login", json={"email": alice.email, "password": alice.password}
    )
    pair = response.json()
    assert pair["expires_in"] == 900
    assert pair["token_type"] == "bearer"
    token = pair["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(
        token,
        TEST_SECRET,
        algorithms=["HS256"],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["iss", "aud", "exp", "iat", "sub"]},
    )
    assert claims["sub"] == str(alice.id)
    assert claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - _now()) < 60


async def test_the_access_ttl_follows_the_settings(database_url: str) -> None:
    async with running_app(api_settings(database_url, access_token_ttl_seconds=60)) as app:
        async with client_for(app) as c:
            account = await register(c)
            claims = jwt.decode(account.access_token, options={"verify_signature": False})
            assert claims["exp"] - claims["iat"] == 60


async def test_a_correctly_signed_token_is_accepted(
    client: httpx.AsyncClient, alice: Account, control: str
) -> None:
    response = await me(client, control)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(alice.id)
    # without sid (not bound to a session) and with exp just inside the 10 s leeway, too
    bare = sign_hs256(access_claims(alice.id, exp=_now() - 5, iat=_now() - 900))
    assert (await me(client, bare)).status_code == 200


@pytest.mark.parametrize("vector", list(NEGATIVE_VECTORS))
async def test_negative_vector_is_refused(
    client: httpx.AsyncClient, alice: Account, control: str, vector: str
) -> None:
    token = NEGATIVE_VECTORS[vector](alice)
    assert_unauthorized(await me(client, token))
    assert (await me(client, control)).status_code == 200


async def test_the_oversized_token_is_refused_only_for_its_size(
    client: httpx.AsyncClient, alice: Account
) -> None:
    just_under = sign_hs256(access_claims(alice.id, pad="p" * 5_700))
    assert len(just_under) < 8_192
    assert (await me(client, just_under)).status_code == 200
    over = NEGATIVE_VECTORS["over 8 KiB"](alice)
    assert len(over) > 8_192
    assert_unauthorized(await me(client, over))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Token abc.def.ghi"},
    ],
    ids=["none", "empty bearer", "bearer space", "basic", "other scheme"],
)
async def test_missing_credentials(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    assert_unauthorized(await client.get(f"{API}/me", headers=headers))


async def test_token_of_a_deleted_user(client: httpx.AsyncClient) -> None:
    account = await register(client)
    unbound = sign_hs256(access_claims(account.id))  # no sid: only the user row can stop it
    deleted = await client.request(
        "DELETE", f"{API}/me", json={"current_password": account.password}, headers=account.headers
    )
    assert deleted.status_code == 204
    assert_unauthorized(await me(client, account.access_token))
    assert_unauthorized(await me(client, unbound))


async def test_token_after_logout_of_its_session(client: httpx.AsyncClient, alice: Account) -> None:
    assert (await me(client, alice.access_token)).status_code == 200
    assert (await client.post(f"{API}/logout", headers=alice.headers)).status_code == 204
    assert_unauthorized(await me(client, alice.access_token))


async def test_one_users_token_never_reaches_another(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    """Alice's session id with Bob's subject, signed with our key: the session must be his."""
    token = sign_hs256(access_claims(bob.id, sid=session_of(alice.access_token)))
    assert_unauthorized(await me(client, token))


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    return RsaKey.generate("k1")


@pytest.fixture
async def external_pem_client(
    database_url: str, rsa_key: RsaKey
) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(
        database_url,
        external_issuer=EXTERNAL_ISSUER,
        external_audience="convstore-external",
        external_public_key=rsa_key.public_pem,
    )
    async with running_app(settings) as app, client_for(app) as c:
        yield c


async def test_algorithm_confusion_with_the_external_public_key(
    external_pem_client: httpx.AsyncClient, rsa_key: RsaKey
) -> None:
    """HS256 keyed with the issuer's RSA public PEM: refused as theirs and as ours."""
    c = external_pem_client
    pem = rsa_key.public_pem.encode()
    now = _now()
    theirs = {
        "iss": EXTERNAL_ISSUER,
        "aud": "convstore-external",
        "sub": f"victim-{uuid.uuid4().hex}",
        "iat": now,
        "exp": now + 300,
    }
    # control: the same claims, properly signed with RS256, are accepted
    assert (await me(c, rsa_key.sign(theirs, kid=None))).status_code == 200
    for key in (pem, pem.strip(), rsa_key.public_pem.replace("\n", "").encode()):
        forged = hmac_token({"alg": "HS256", "typ": "JWT"}, theirs, key)
        assert_unauthorized(await me(c, forged))
    account = await register(c)
    ours = access_claims(account.id)
    assert_unauthorized(await me(c, hmac_token({"alg": "HS256", "typ": "JWT"}, ours, pem)))
    # and no unsigned token passes as the external issuer's either
    assert_unauthorized(await me(c, unsigned_token(theirs)))
    assert (await me(c, account.access_token)).status_code == 200


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    from convstore.auth import tokens
    from convstore.errors import InvalidCredentials

    access = tokens.AccessTokens(api_settings("sqlite://"), TEST_SECRET.encode())
    user_id = uuid.uuid4()
    token = access.issue(user_id)
    assert access.verify(token).user_id == user_id
    assert access.verify(token).user_id == user_id  # now from what the process remembers
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr(tokens.time, "time", lambda: expires + tokens.LEEWAY_SECONDS + 1)
    with pytest.raises(InvalidCredentials):
        access.verify(token)
