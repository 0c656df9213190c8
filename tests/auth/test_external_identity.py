"""Tokens of an external issuer (ASVS 9.1.x, RFC 8725 §3.1/3.8/3.9): RS256 keys from a JWKS
served by a real local HTTP server (or a configured PEM), users provisioned once per
(issuer, subject), key rotation, and no JWKS amplification from unknown ``kid`` floods."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from convstore import Store
from tests.auth.helpers import (
    API,
    JwksServer,
    RsaKey,
    assert_unauthorized,
    external_claims,
    identity_rows,
    me,
    refresh,
    unsigned_token,
)
from tests.support.api import Account, api_settings, client_for, register, running_app

ISSUER = "https://idp.example.test"
AUDIENCE = "convstore-external"


@pytest.fixture(scope="module")
def k1() -> RsaKey:
    return RsaKey.generate("k1")


@pytest.fixture(scope="module")
def k2() -> RsaKey:
    return RsaKey.generate("k2")


@pytest.fixture(scope="module")
def stranger() -> RsaKey:
    """A key the issuer never published, using k1's kid."""
    return RsaKey.generate("k1")


@pytest.fixture
def jwks(k1: RsaKey) -> Iterator[JwksServer]:
    with JwksServer([k1]) as server:
        yield server


@dataclass
class External:
    client: httpx.AsyncClient
    jwks: JwksServer


@pytest.fixture
async def external(database_url: str, jwks: JwksServer) -> AsyncIterator[External]:
    async with _app(database_url, jwks) as ctx:
        yield ctx


@contextlib.asynccontextmanager
async def _app(database_url: str, jwks: JwksServer, **overrides: Any) -> AsyncIterator[External]:
    settings = api_settings(
        database_url,
        external_issuer=ISSUER,
        external_audience=AUDIENCE,
        external_jwks_url=jwks.url,
        **overrides,
    )
    async with running_app(settings) as app, client_for(app) as c:
        yield External(c, jwks)


def _claims(subject: str | None = None, **overrides: Any) -> dict[str, Any]:
    return external_claims(ISSUER, AUDIENCE, subject, **overrides)


class TestAcceptance:
    async def test_bearer_token_provisions_the_user_once(
        self, external: External, store: Store, k1: RsaKey
    ) -> None:
        subject = f"user-{uuid.uuid4().hex}"
        email = f"{subject}@idp.example"
        token = k1.sign(_claims(subject, email=email, email_verified=True, name="Ext User"))
        first = await me(external.client, token)
        assert first.status_code == 200, first.text
        user = first.json()
        assert user["auth_provider"] == ISSUER
        assert user["email"] == email
        assert user["name"] == "Ext User"
        second = await me(external.client, k1.sign(_claims(subject)))
        assert second.status_code == 200
        assert second.json()["id"] == user["id"]
        rows = await identity_rows(store, ISSUER, subject)
        assert len(rows) == 1
        assert rows[0]["hashed_password"] is None

    async def test_concurrent_first_sight_creates_one_user(
        self, external: External, store: Store, k1: RsaKey
    ) -> None:
        subject = f"user-{uuid.uuid4().hex}"
        token = k1.sign(_claims(subject, email=f"{subject}@idp.example"))
        responses = await asyncio.gather(*(me(external.client, token) for _ in range(50)))
        assert [r.status_code for r in responses] == [200] * 50, [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert len(await identity_rows(store, ISSUER, subject)) == 1

    async def test_exchange_for_a_convstore_session(self, external: External, k1: RsaKey) -> None:
        c = external.client
        subject = f"user-{uuid.uuid4().hex}"
        exchanged = await c.post(f"{API}/external", json={"id_token": k1.sign(_claims(subject))})
        assert exchanged.status_code == 200, exchanged.text
        assert exchanged.headers["cache-control"] == "no-store"
        assert exchanged.headers["pragma"] == "no-cache"
        pair = exchanged.json()
        assert pair["expires_in"] == 900
        mine = await me(c, pair["access_token"])
        assert mine.status_code == 200
        assert (await me(c, k1.sign(_claims(subject)))).json()["id"] == mine.json()["id"]
        assert (await refresh(c, pair["refresh_token"])).status_code == 200

    async def test_an_external_email_never_takes_over_a_local_account(
        self, external: External, store: Store, k1: RsaKey
    ) -> None:
        local: Account = await register(external.client)
        token = k1.sign(_claims(email=local.email, email_verified=True))
        response = await me(external.client, token)
        assert response.status_code == 200
        assert response.json()["id"] != str(local.id)
        assert response.json()["email"].endswith("@external.invalid")
        unverified = k1.sign(_claims(email=f"{uuid.uuid4().hex}@idp.example", email_verified=False))
        assert (await me(external.client, unverified)).json()["email"].endswith("@external.invalid")

    @pytest.mark.parametrize(
        "verified",
        [None, False, "true", 1],
        ids=["claim-missing", "false", "string-true", "number-1"],
    )
    async def test_an_email_is_only_trusted_when_the_issuer_says_it_is_verified(
        self, external: External, k1: RsaKey, verified: Any
    ) -> None:
        """Anyone can put any address in their profile at many issuers: without
        ``email_verified: true`` (the boolean) the account gets a placeholder address."""
        email = f"{uuid.uuid4().hex}@idp.example"
        token = k1.sign(_claims(email=email, email_verified=verified))
        response = await me(external.client, token)
        assert response.status_code == 200, response.text
        assert response.json()["email"].endswith("@external.invalid")
        trusted = k1.sign(_claims(email=email, email_verified=True))
        assert (await me(external.client, trusted)).json()["email"] == email

    async def test_a_setting_trusts_an_issuer_that_only_vouches_for_verified_emails(
        self, database_url: str, jwks: JwksServer, k1: RsaKey
    ) -> None:
        async with _app(database_url, jwks, external_email_verified=True) as ctx:
            email = f"{uuid.uuid4().hex}@idp.example"
            vouched = await me(ctx.client, k1.sign(_claims(email=email)))
            assert vouched.json()["email"] == email
            other = f"{uuid.uuid4().hex}@idp.example"
            denied = await me(ctx.client, k1.sign(_claims(email=other, email_verified=False)))
            assert denied.json()["email"].endswith("@external.invalid")

    @pytest.mark.parametrize(
        ("claims", "email_kept", "name_kept"),
        [
            ({"email": "not an address", "name": "Ada"}, False, True),
            ({"email": "a\u0000b@idp.example", "name": "Ada"}, False, True),
            ({"name": "Ada\u0000\u001b[2J"}, True, False),
            ({"name": "n" * 201}, True, False),
            ({"name": "   "}, True, False),
        ],
        ids=["bad-email", "nul-email", "control-name", "long-name", "blank-name"],
    )
    async def test_a_profile_the_database_cannot_hold_is_not_kept(
        self,
        external: External,
        k1: RsaKey,
        claims: dict[str, Any],
        email_kept: bool,
        name_kept: bool,
    ) -> None:
        """A profile claim that fails the rules of a user's field is dropped (the address
        becomes the placeholder, the name none), never a 500 and never a refused sign-in."""
        email = f"{uuid.uuid4().hex}@idp.example"
        token = k1.sign(_claims(**{"email": email, "email_verified": True, **claims}))
        response = await me(external.client, token)
        assert response.status_code == 200, response.text
        user = response.json()
        assert (user["email"] == email) is email_kept, user
        assert user["email"] == email or user["email"].endswith("@external.invalid"), user
        assert user["name"] == ("Ada" if name_kept else None), user

    async def test_our_own_tokens_still_work_beside_the_issuer(self, external: External) -> None:
        account = await register(external.client)
        assert (await me(external.client, account.access_token)).status_code == 200


def _negatives(k1: RsaKey, stranger: RsaKey) -> dict[str, str]:
    now = int(time.time())
    return {
        "wrong aud": k1.sign(_claims(aud="another-api")),
        "our audience": k1.sign(_claims(aud="convstore-api")),
        "no aud": k1.sign(_claims(aud=None)),
        "expired": k1.sign(_claims(exp=now - 60, iat=now - 400)),
        "nbf in the future": k1.sign(_claims(nbf=now + 600)),
        "no exp": k1.sign(_claims(exp=None)),
        "no iat": k1.sign(_claims(iat=None)),
        "no sub": k1.sign(_claims(sub=None)),
        "empty sub": k1.sign(_claims(sub="")),
        "sub not a string": k1.sign(_claims(sub=42)),
        "sub over 255 characters": k1.sign(_claims(sub="s" * 256)),
        "sub with NUL": k1.sign(_claims(sub="a\u0000b")),
        "sub with a line break": k1.sign(_claims(sub="a\nb")),
        "signed by an unpublished key with a known kid": stranger.sign(_claims()),
        "alg none": unsigned_token(_claims()),
        "jku header": k1.sign(_claims(), headers={"jku": "https://evil.example/jwks"}),
        "x5u header": k1.sign(_claims(), headers={"x5u": "https://evil.example/c.pem"}),
        "crit header": k1.sign(_claims(), headers={"crit": ["b64"], "b64": True}),
        "over 8 KiB": k1.sign(_claims(pad="p" * 8_300)),
    }


async def test_negative_vectors_of_the_issuer(
    external: External, k1: RsaKey, stranger: RsaKey
) -> None:
    assert (await me(external.client, k1.sign(_claims()))).status_code == 200  # control
    for name, token in _negatives(k1, stranger).items():
        response = await me(external.client, token)
        assert response.status_code == 401, name
        assert_unauthorized(response)
        exchanged = await external.client.post(f"{API}/external", json={"id_token": token})
        assert exchanged.status_code in (401, 422), (name, exchanged.text)


async def test_exchange_refuses_our_own_tokens(external: External) -> None:
    account = await register(external.client)
    exchanged = await external.client.post(
        f"{API}/external", json={"id_token": account.access_token}
    )
    assert_unauthorized(exchanged)


async def test_key_rotation(database_url: str, jwks: JwksServer, k1: RsaKey, k2: RsaKey) -> None:
    """K1 → {K1, K2} → {K2}: K2 is accepted after one refetch; K1 until the cache (2 s here)
    that still holds it expires, then refused."""
    settings = {"jwks_cache_seconds": 2, "jwks_refetch_cooldown_seconds": 0}
    async with _app(database_url, jwks, **settings) as ctx:
        c = ctx.client
        assert (await me(c, k1.sign(_claims()))).status_code == 200
        assert jwks.gets == 1
        jwks.publish([k1, k2])
        assert (await me(c, k2.sign(_claims()))).status_code == 200
        assert jwks.gets == 2
        assert (await me(c, k1.sign(_claims()))).status_code == 200
        assert jwks.gets == 2
        jwks.publish([k2])
        assert (await me(c, k1.sign(_claims()))).status_code == 200  # from the fresh cache
        assert jwks.gets == 2
        await asyncio.sleep(2.1)
        assert_unauthorized(await me(c, k1.sign(_claims())))
        assert jwks.gets == 3
        assert (await me(c, k2.sign(_claims()))).status_code == 200
        assert jwks.gets == 3


async def test_unknown_kid_flood_does_not_amplify(
    database_url: str, jwks: JwksServer, k1: RsaKey
) -> None:
    async with _app(database_url, jwks, jwks_refetch_cooldown_seconds=30) as ctx:
        c = ctx.client
        assert (await me(c, k1.sign(_claims()))).status_code == 200
        baseline = jwks.gets
        assert baseline == 1
        flood = [k1.sign(_claims(), kid=uuid.uuid4().hex) for _ in range(200)]
        responses = await asyncio.gather(*(me(c, token) for token in flood))
        assert {r.status_code for r in responses} == {401}
        assert jwks.gets - baseline <= 1
        # the legitimate key still works after the flood
        assert (await me(c, k1.sign(_claims()))).status_code == 200


async def test_unknown_kid_flood_on_a_cold_cache(
    database_url: str, jwks: JwksServer, k1: RsaKey
) -> None:
    """The flood and some genuine tokens arrive together before any key is cached: one fetch,
    the genuine ones wait for it and pass, the rest fail."""
    async with _app(database_url, jwks, jwks_refetch_cooldown_seconds=30) as ctx:
        c = ctx.client
        flood = [k1.sign(_claims(), kid=uuid.uuid4().hex) for _ in range(200)]
        genuine = [k1.sign(_claims()) for _ in range(5)]
        tokens = flood[:1] + genuine + flood[1:]  # the genuine ones come while the fetch runs
        responses = await asyncio.gather(*(me(c, token) for token in tokens))
        assert [r.status_code for r in responses[1:6]] == [200] * 5
        assert {r.status_code for r in responses[:1] + responses[6:]} == {401}
        assert jwks.gets == 1
        assert (await me(c, k1.sign(_claims()))).status_code == 200
        assert jwks.gets == 1


@pytest.mark.parametrize("failure", ["500", "not json", "unreachable"])
async def test_a_broken_jwks_endpoint_means_401_not_500(
    database_url: str, jwks: JwksServer, k1: RsaKey, failure: str
) -> None:
    url = jwks.url
    if failure == "500":
        jwks.status = 500
    elif failure == "not json":
        jwks.body = b"<html>oops</html>"
    else:
        url = "http://127.0.0.1:9/jwks.json"  # the discard port: nothing listens
    settings = api_settings(
        database_url, external_issuer=ISSUER, external_audience=AUDIENCE, external_jwks_url=url
    )
    async with running_app(settings) as app, client_for(app) as c:
        assert_unauthorized(await me(c, k1.sign(_claims())))


async def test_public_key_mode(database_url: str, k1: RsaKey, k2: RsaKey) -> None:
    settings = api_settings(
        database_url,
        external_issuer=ISSUER,
        external_audience=AUDIENCE,
        external_public_key=k1.public_pem,
    )
    async with running_app(settings) as app, client_for(app) as c:
        assert (await me(c, k1.sign(_claims(), kid=None))).status_code == 200
        assert (await me(c, k1.sign(_claims()))).status_code == 200
        assert_unauthorized(await me(c, k2.sign(_claims(), kid=None)))
        assert_unauthorized(await me(c, k1.sign(_claims(aud="wrong"), kid=None)))
        exchanged = await c.post(f"{API}/external", json={"id_token": k1.sign(_claims())})
        assert exchanged.status_code == 200
