"""Login: JSON or the OAuth2 password form, and throttling (ASVS 6.3.1, API2): per account and
client, with ``Retry-After``, without locking out the same account on another client or other
accounts on the same one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from convstore import Store
from tests.auth.helpers import (
    API,
    assert_invalid,
    assert_unauthorized,
    client_from,
    login,
    me,
    refresh,
    refresh_row,
)
from tests.support.api import Account, api_settings, client_for, register, running_app

WRONG = "definitely not the password"


class TestFormats:
    async def test_json_login(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await login(client, alice.email, alice.password)
        assert response.status_code == 200
        pair = response.json()
        assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
        assert (await me(client, pair["access_token"])).json()["id"] == str(alice.id)

    async def test_oauth2_password_form(self, client: httpx.AsyncClient, alice: Account) -> None:
        response = await client.post(
            f"{API}/login", data={"username": alice.email, "password": alice.password}
        )
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "bearer"
        assert (await me(client, response.json()["access_token"])).status_code == 200
        wrong = await client.post(f"{API}/login", data={"username": alice.email, "password": WRONG})
        assert_unauthorized(wrong)
        missing = await client.post(f"{API}/login", data={"username": alice.email})
        assert_invalid(missing, "password")

    async def test_email_is_matched_case_insensitively(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        assert (await login(client, f"  {alice.email.upper()} ", alice.password)).status_code == 200

    async def test_every_login_opens_a_new_session(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        first = (await login(client, alice.email, alice.password)).json()
        second = (await login(client, alice.email, alice.password)).json()
        assert first["refresh_token"] != second["refresh_token"]
        assert first["access_token"] != second["access_token"]

    async def test_a_user_agent_with_control_characters_is_kept_cleaned(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        """The session keeps the User-Agent to show its owner; what a text column cannot hold
        (NUL on PostgreSQL) or should not (terminal escapes) is replaced, never a 500."""
        agent = "probe\x00/1 \x1b[31mred\x7f " + "x" * 600
        response = await client.post(
            f"{API}/login",
            json={"email": alice.email, "password": alice.password},
            headers={"User-Agent": agent},
        )
        assert response.status_code == 200, response.text
        row = await refresh_row(store, response.json()["refresh_token"])
        assert row is not None
        assert row["user_agent"] == ("probe\ufffd/1 \ufffd[31mred\ufffd " + "x" * 600)[:512]

    @pytest.mark.parametrize(
        "body",
        [b"not json", b"[]", b'{"email": "x@example.com"}', b'{"password": "abcdefgh"}'],
        ids=["not json", "array", "no password", "no email"],
    )
    async def test_malformed_bodies(self, client: httpx.AsyncClient, body: bytes) -> None:
        response = await client.post(
            f"{API}/login", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    async def test_duplicate_registration_is_a_conflict(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        again = await client.post(
            f"{API}/register", json={"email": alice.email.upper(), "password": "another passphrase"}
        )
        assert again.status_code == 409
        assert (await login(client, alice.email, alice.password)).status_code == 200


@pytest.fixture
async def limited_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = api_settings(database_url, rate_limit_login_account="3/minute")
    async with running_app(settings) as app:
        yield app


def _assert_throttled(response: httpx.Response, window: int = 60) -> None:
    assert response.status_code == 429, response.text
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= window
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 429
    assert body["code"] == "rate_limited"


class TestThrottling:
    async def test_fourth_login_for_an_account_is_throttled(self, limited_app: FastAPI) -> None:
        async with client_for(limited_app) as c:
            victim = await register(c)  # one successful login already counts
            other = await register(c)
            assert (await login(c, victim.email, WRONG)).status_code == 401
            assert (await login(c, victim.email, WRONG)).status_code == 401
            _assert_throttled(await login(c, victim.email, victim.password))
            # the same account, written differently, is the same account
            _assert_throttled(await login(c, victim.email.upper(), victim.password))
            _assert_throttled(
                await c.post(
                    f"{API}/login", data={"username": victim.email, "password": victim.password}
                )
            )
            # another account from the same client is unaffected
            assert (await login(c, other.email, WRONG)).status_code == 401
            assert (await login(c, other.email, other.password)).status_code == 200
            # the victim's live session is unaffected too
            assert (await me(c, victim.access_token)).status_code == 200
            assert (await refresh(c, victim.refresh_token)).status_code == 200

    async def test_an_attacker_elsewhere_does_not_lock_the_owner_out(
        self, limited_app: FastAPI
    ) -> None:
        async with client_for(limited_app) as c:
            owner = await register(c)
        async with client_from(limited_app, "203.0.113.66") as attacker:
            for _ in range(3):
                assert (await login(attacker, owner.email, WRONG)).status_code == 401
            _assert_throttled(await login(attacker, owner.email, WRONG))
        async with client_from(limited_app, "198.51.100.7") as owner_client:
            assert (await login(owner_client, owner.email, owner.password)).status_code == 200

    async def test_unknown_accounts_are_throttled_alike(self, limited_app: FastAPI) -> None:
        """No oracle: an unknown address is throttled exactly like a known one."""
        async with client_for(limited_app) as c:
            statuses = [
                (await login(c, "nobody-here@example.com", WRONG)).status_code for _ in range(4)
            ]
        assert statuses == [401, 401, 401, 429]

    async def test_auth_routes_are_throttled_per_client(self, database_url: str) -> None:
        settings = api_settings(database_url, rate_limit_auth_ip="4/minute")
        async with running_app(settings) as app, client_for(app) as c:
            statuses = [(await refresh(c, "A" * 43)).status_code for _ in range(4)]
            assert statuses == [401] * 4
            _assert_throttled(await refresh(c, "A" * 43))
            _assert_throttled(await login(c, "someone@example.com", WRONG))
            async with client_from(app, "192.0.2.10") as elsewhere:
                assert (await refresh(elsewhere, "A" * 43)).status_code == 401


@pytest.fixture
async def capped_app(database_url: str) -> AsyncIterator[FastAPI]:
    settings = api_settings(
        database_url,
        rate_limit_login_account="3/minute",
        rate_limit_login_account_failures="5/hour",
    )
    async with running_app(settings) as app:
        yield app


def _ip(n: int) -> str:
    return f"198.18.{n // 250}.{n % 250 + 1}"


class TestAccountCap:
    """Failed logins for one account are capped over every client address together, so a
    botnet with an address per guess still gets only so many guesses an hour."""

    async def test_failures_from_many_addresses_hit_the_cap(self, capped_app: FastAPI) -> None:
        async with client_from(capped_app, "203.0.113.10") as home:
            owner = await register(home)  # signs in from home: a known client from now on
            bystander = await register(home)
        for n in range(5):
            async with client_from(capped_app, _ip(n)) as bot:
                assert (await login(bot, owner.email, WRONG)).status_code == 401, n
        async with client_from(capped_app, _ip(5)) as bot:
            _assert_throttled(await login(bot, owner.email, WRONG), 3600)
            # Refused before the password is checked: the right one gets no further.
            _assert_throttled(await login(bot, owner.email, owner.password), 3600)
            _assert_throttled(await login(bot, owner.email.upper(), owner.password), 3600)
            # Other accounts are not affected from the same address.
            assert (await login(bot, bystander.email, bystander.password)).status_code == 200
        # The owner, from where they signed in before, is not locked out; nor are sessions.
        async with client_from(capped_app, "203.0.113.10") as home:
            assert (await login(home, owner.email, owner.password)).status_code == 200
            assert (await me(home, owner.access_token)).status_code == 200
            assert (await refresh(home, owner.refresh_token)).status_code == 200

    async def test_without_the_known_client_exemption_the_cap_applies_to_all(
        self, database_url: str
    ) -> None:
        settings = api_settings(
            database_url,
            rate_limit_login_account_failures="2/hour",
            login_known_client_days=0,
        )
        async with running_app(settings) as app:
            async with client_from(app, "203.0.113.10") as home:
                owner = await register(home)
            for n in range(2):
                async with client_from(app, _ip(50 + n)) as bot:
                    assert (await login(bot, owner.email, WRONG)).status_code == 401
            async with client_from(app, "203.0.113.10") as home:
                _assert_throttled(await login(home, owner.email, owner.password), 3600)

    async def test_successful_logins_do_not_count(self, capped_app: FastAPI) -> None:
        async with client_for(capped_app) as c:
            owner = await register(c)
        for n in range(6):  # one more than the cap
            async with client_from(capped_app, _ip(100 + n)) as laptop:
                assert (await login(laptop, owner.email, owner.password)).status_code == 200

    async def test_an_unknown_address_is_capped_alike(self, capped_app: FastAPI) -> None:
        """No oracle: an email without an account reaches the cap exactly like one with."""
        email = "nobody-capped@example.com"
        statuses = []
        for n in range(7):
            async with client_from(capped_app, _ip(200 + n)) as bot:
                statuses.append((await login(bot, email, WRONG)).status_code)
        assert statuses == [401] * 5 + [429] * 2
