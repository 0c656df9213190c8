"""Refresh tokens (ASVS 7.2.3/7.3/7.4, 10.4.5; RFC 9700 §4.14): opaque, hashed at rest, rotated on
every use, reuse revokes the family, concurrent refreshes never fork it, and every way a session
ends (logout, password change, deletion, idle and absolute expiry) ends it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy.engine import RowMapping

from convstore import Store
from convstore.kit.types import utc_now
from tests.auth.helpers import (
    API,
    OPAQUE_TOKEN,
    age_family,
    assert_invalid,
    assert_unauthorized,
    bearer,
    expire_refresh,
    family_rows,
    login,
    me,
    refresh,
    refresh_row,
    session_of,
    sha256_hex,
    user_refresh_rows,
)
from tests.support.api import Account, api_settings, client_for, register, running_app


def _live(rows: list[RowMapping]) -> list[RowMapping]:
    return [r for r in rows if r["revoked_at"] is None]


class TestOpaqueAndHashed:
    async def test_refresh_tokens_are_opaque_with_at_least_128_bits(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        rotated = await refresh(client, alice.refresh_token)
        assert rotated.status_code == 200
        again = await login(client, alice.email, alice.password)
        for token in (alice.refresh_token, rotated.json()["refresh_token"]):
            assert OPAQUE_TOKEN.fullmatch(token), token  # base64url, no dots: not a JWT
            assert len(token) * 6 >= 128 + 6  # 6 bits per character, with room for padding
        # every (re)authentication issues a new token (ASVS 7.2.4)
        assert again.json()["refresh_token"] != alice.refresh_token

    async def test_only_the_sha256_of_the_token_is_stored(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        rotated = (await refresh(client, alice.refresh_token)).json()["refresh_token"]
        for raw in (alice.refresh_token, rotated):
            row = await refresh_row(store, raw)
            assert row is not None
            assert row["token_hash"] == sha256_hex(raw)
            assert row["user_id"] is not None
            assert all(raw not in str(value) for value in row.values())


class TestRotation:
    async def test_every_refresh_rotates(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        first = await refresh(client, alice.refresh_token)
        assert first.status_code == 200
        pair = first.json()
        assert pair["refresh_token"] != alice.refresh_token
        assert pair["token_type"] == "bearer"
        assert (await me(client, pair["access_token"])).status_code == 200
        old = await refresh_row(store, alice.refresh_token)
        new = await refresh_row(store, pair["refresh_token"])
        assert old is not None
        assert new is not None
        assert old["revoked_at"] is not None
        assert old["replaced_by"] == new["id"]
        assert new["family_id"] == old["family_id"] == session_of(pair["access_token"])
        assert new["revoked_at"] is None
        second = await refresh(client, pair["refresh_token"])
        assert second.status_code == 200
        assert second.json()["refresh_token"] not in (alice.refresh_token, pair["refresh_token"])

    async def test_unknown_and_malformed_refresh_tokens(self, client: httpx.AsyncClient) -> None:
        assert_unauthorized(await refresh(client, "A" * 43))
        assert_invalid(await refresh(client, "not a token!"), "refresh_token")
        assert_invalid(await refresh(client, "short"), "refresh_token")


class TestReuse:
    async def test_reuse_after_the_grace_window_revokes_the_family(
        self, database_url: str, store: Store
    ) -> None:
        settings = api_settings(database_url, refresh_reuse_grace_seconds=0)
        async with running_app(settings) as app, client_for(app) as c:
            account = await register(c)
            child = (await refresh(c, account.refresh_token)).json()
            await asyncio.sleep(0.01)
            assert_unauthorized(await refresh(c, account.refresh_token))
            # the legitimate holder of the current token is signed out too
            assert_unauthorized(await refresh(c, child["refresh_token"]))
            assert_unauthorized(await me(c, child["access_token"]))
            family = await family_rows(store, session_of(child["access_token"]))
            assert len(family) == 2
            assert _live(family) == []

    async def test_reuse_only_revokes_its_own_family(self, database_url: str) -> None:
        settings = api_settings(database_url, refresh_reuse_grace_seconds=0)
        async with running_app(settings) as app, client_for(app) as c:
            account = await register(c)
            other = (await login(c, account.email, account.password)).json()
            await refresh(c, account.refresh_token)
            await asyncio.sleep(0.01)
            assert_unauthorized(await refresh(c, account.refresh_token))
            assert (await refresh(c, other["refresh_token"])).status_code == 200

    async def test_parent_within_the_grace_window_returns_the_same_child(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        first = (await refresh(client, alice.refresh_token)).json()
        again = await refresh(client, alice.refresh_token)  # a second tab, or a retry
        assert again.status_code == 200
        assert again.json()["refresh_token"] == first["refresh_token"]
        assert (await me(client, again.json()["access_token"])).status_code == 200
        # the session goes on from the shared child
        following = await refresh(client, first["refresh_token"])
        assert following.status_code == 200
        family = await family_rows(store, session_of(first["access_token"]))
        assert len(family) == 3
        assert len(_live(family)) == 1

    async def test_an_older_ancestor_within_the_grace_window_revokes_the_family(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        r1 = (await refresh(client, alice.refresh_token)).json()["refresh_token"]
        r2 = (await refresh(client, r1)).json()["refresh_token"]
        assert_unauthorized(await refresh(client, alice.refresh_token))  # R0: not R2's parent
        assert_unauthorized(await refresh(client, r2))

    async def test_concurrent_refreshes_never_fork_the_family(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        responses = await asyncio.gather(*(refresh(client, alice.refresh_token) for _ in range(20)))
        assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
        children = {r.json()["refresh_token"] for r in responses}
        assert len(children) == 1
        family = await family_rows(store, session_of(alice.access_token))
        live = _live(family)
        assert len(live) == 1
        assert live[0]["token_hash"] == sha256_hex(children.pop())
        assert len(family) == 2  # the parent and one child, nothing else
        assert (await me(client, responses[-1].json()["access_token"])).status_code == 200


class TestSessionEnd:
    async def test_logout_revokes_this_session_only(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        other = (await login(client, alice.email, alice.password)).json()
        out = await client.post(f"{API}/logout", headers=alice.headers)
        assert out.status_code == 204
        assert_unauthorized(await refresh(client, alice.refresh_token))
        assert_unauthorized(await me(client, alice.access_token))
        assert (await me(client, other["access_token"])).status_code == 200
        assert (await refresh(client, other["refresh_token"])).status_code == 200

    async def test_logout_everywhere_revokes_every_session(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        other = (await login(client, alice.email, alice.password)).json()
        out = await client.post(
            f"{API}/logout", params={"everywhere": "true"}, headers=alice.headers
        )
        assert out.status_code == 204
        for token in (alice.refresh_token, other["refresh_token"]):
            assert_unauthorized(await refresh(client, token))
        for token in (alice.access_token, other["access_token"]):
            assert_unauthorized(await me(client, token))
        assert _live(await user_refresh_rows(store, alice.id)) == []

    async def test_logout_does_not_touch_another_users_sessions(
        self, client: httpx.AsyncClient, alice: Account, bob: Account
    ) -> None:
        out = await client.post(
            f"{API}/logout", json={"refresh_token": bob.refresh_token}, headers=alice.headers
        )
        assert out.status_code == 204
        assert (await refresh(client, bob.refresh_token)).status_code == 200

    async def test_password_change_revokes_older_tokens(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        other = (await login(client, alice.email, alice.password)).json()
        new_password = "a different long passphrase"
        changed = await client.post(
            f"{API}/password/change",
            json={"current_password": alice.password, "new_password": new_password},
            headers=alice.headers,
        )
        assert changed.status_code == 200, changed.text
        pair = changed.json()
        for token in (alice.refresh_token, other["refresh_token"]):
            assert_unauthorized(await refresh(client, token))
        assert_unauthorized(await me(client, alice.access_token))
        assert (await me(client, pair["access_token"])).status_code == 200
        assert (await refresh(client, pair["refresh_token"])).status_code == 200
        assert len(_live(await user_refresh_rows(store, alice.id))) == 1
        assert (await login(client, alice.email, alice.password)).status_code == 401
        assert (await login(client, alice.email, new_password)).status_code == 200

    async def test_password_change_needs_the_current_password(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        wrong = await client.post(
            f"{API}/password/change",
            json={"current_password": "not my password at all", "new_password": "x" * 20},
            headers=alice.headers,
        )
        assert_invalid(wrong, "current_password")
        assert (await refresh(client, alice.refresh_token)).status_code == 200

    async def test_account_deletion_revokes_everything(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        refused = await client.request("DELETE", f"{API}/me", headers=alice.headers)
        assert_invalid(refused, "current_password")
        deleted = await client.request(
            "DELETE",
            f"{API}/me",
            json={"current_password": alice.password},
            headers=alice.headers,
        )
        assert deleted.status_code == 204
        assert_unauthorized(await me(client, alice.access_token))
        assert_unauthorized(await refresh(client, alice.refresh_token))
        assert await user_refresh_rows(store, alice.id) == []
        assert (await login(client, alice.email, alice.password)).status_code == 401

    async def test_idle_timeout(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        await expire_refresh(store, alice.refresh_token)
        assert_unauthorized(await refresh(client, alice.refresh_token))
        assert_unauthorized(await me(client, alice.access_token))  # the session is over

    async def test_absolute_lifetime(self, database_url: str, store: Store) -> None:
        settings = api_settings(database_url, refresh_token_absolute_ttl_seconds=60)
        async with running_app(settings) as app, client_for(app) as c:
            account = await register(c)
            family = session_of(account.access_token)
            young = (await login(c, account.email, account.password)).json()
            # 40 s old: refreshing works, but the child cannot outlive the family's 60 s
            await age_family(store, family, 40)
            pair = (await refresh(c, account.refresh_token)).json()
            child = await refresh_row(store, pair["refresh_token"])
            assert child is not None
            assert child["expires_at"] <= utc_now() + timedelta(seconds=21)
            # 70 s old: over
            await age_family(store, family, 30)
            assert_unauthorized(await refresh(c, pair["refresh_token"]))
            # a session of the same user that started now is unaffected
            assert (await refresh(c, young["refresh_token"])).status_code == 200

    async def test_refresh_of_a_deactivated_user_fails(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        await store.users.update(alice.id, is_active=False)
        assert_unauthorized(await refresh(client, alice.refresh_token))
        assert_unauthorized(await me(client, alice.access_token))
        assert (await login(client, alice.email, alice.password)).status_code == 401


async def test_refresh_needs_no_access_token(client: httpx.AsyncClient, alice: Account) -> None:
    """The refresh endpoint needs no access token: a client whose access token expired can
    still refresh."""
    response = await client.post(
        f"{API}/refresh", json={"refresh_token": alice.refresh_token}, headers=bearer("garbage")
    )
    assert response.status_code == 200
