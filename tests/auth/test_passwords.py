"""Passwords (ASVS 6.2.x, 11.4.2; OWASP Password Storage): Argon2id at or above OWASP's floor,
rehash on login when the parameters change, 8–128 characters verified exactly as typed, no
composition rules, common passwords refused, and login costs one verification whether or not
the account exists."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from convstore import Settings, Store
from tests.auth.helpers import (
    API,
    argon2_parameters,
    assert_invalid,
    login,
    stored_password_hash,
)
from tests.support.api import Account, api_settings, client_for, register, running_app

PASSPHRASE_64 = "correct horse battery staple over the lazy river in the old town"
_NOISE = "k7Qz-m2Wp"


def _email() -> str:
    return f"pw-{uuid.uuid4().hex[:12]}@example.com"


async def _register(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post(f"{API}/register", json={"email": _email(), "password": password})


class TestStorage:
    async def test_stored_hash_is_argon2id_at_or_above_owasp_floor(
        self, client: httpx.AsyncClient, store: Store, alice: Account
    ) -> None:
        stored = await stored_password_hash(store, alice.id)
        assert stored is not None
        assert alice.password not in stored
        params = argon2_parameters(stored)
        assert params["v"] == 19
        assert params["m"] >= 19_456
        assert params["t"] >= 2
        assert params["p"] >= 1

    def test_defaults_and_floor_of_the_settings(self) -> None:
        defaults = Settings(env="test")
        assert defaults.password_hash_memory_kib == 65_536
        assert defaults.password_hash_time_cost == 3
        assert defaults.password_hash_parallelism == 4
        with pytest.raises(ValidationError):
            Settings(env="test", password_hash_memory_kib=19_455)
        with pytest.raises(ValidationError):
            Settings(env="test", password_hash_time_cost=1)

    async def test_the_response_never_carries_the_hash(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        body = (await client.get(f"{API}/me", headers=alice.headers)).text
        assert "argon2" not in body
        assert "password" not in body

    async def test_rehash_on_login_when_parameters_change(
        self, database_url: str, store: Store
    ) -> None:
        async with running_app(api_settings(database_url)) as app, client_for(app) as c:
            account = await register(c)
        before = await stored_password_hash(store, account.id)
        assert before is not None
        assert argon2_parameters(before)["t"] == 2
        stronger = api_settings(database_url, password_hash_time_cost=3)
        async with running_app(stronger) as app, client_for(app) as c:
            failed = await login(c, account.email, "a wrong passphrase entirely")
            assert failed.status_code == 401
            assert await stored_password_hash(store, account.id) == before  # only on success
            assert (await login(c, account.email, account.password)).status_code == 200
            after = await stored_password_hash(store, account.id)
            assert after is not None
            assert argon2_parameters(after)["t"] == 3
            assert after != before
            assert (await login(c, account.email, account.password)).status_code == 200
            assert await stored_password_hash(store, account.id) == after  # no rehash loop


class TestPolicy:
    @pytest.mark.parametrize(
        "password",
        [
            "x" * 7,
            "",
        ],
        ids=["7 characters", "empty"],
    )
    async def test_too_short(self, client: httpx.AsyncClient, password: str) -> None:
        assert_invalid(await _register(client, password), "password")

    async def test_too_long(self, client: httpx.AsyncClient) -> None:
        assert_invalid(await _register(client, (_NOISE * 15)[:129]), "password")

    @pytest.mark.parametrize(
        "password",
        [
            (_NOISE * 2)[:8],
            (_NOISE * 15)[:128],
            PASSPHRASE_64,
            "ünïcödé pässphrâse wïth äccents and spaces ☕ 🙂 漢字かな",
            "        " + "padded with spaces both sides" + "        ",
            "alllowercaseandnothingelse",
        ],
        ids=["8 characters", "128 characters", "64-char passphrase", "unicode", "spaces", "lower"],
    )
    async def test_accepted_without_composition_rules(
        self, client: httpx.AsyncClient, password: str
    ) -> None:
        email = _email()
        created = await client.post(f"{API}/register", json={"email": email, "password": password})
        assert created.status_code == 201, created.text
        assert (await login(client, email, password)).status_code == 200

    def test_the_passphrase_is_64_lowercase_characters_and_spaces(self) -> None:
        assert len(PASSPHRASE_64) == 64
        assert set(PASSPHRASE_64) <= set("abcdefghijklmnopqrstuvwxyz ")

    @pytest.mark.parametrize(
        "password", ["password123", "iloveyou1", "PASSWORD123", "qwertyuiop", "12345678"]
    )
    async def test_common_passwords_are_refused(
        self, client: httpx.AsyncClient, password: str
    ) -> None:
        assert_invalid(await _register(client, password), "password")

    async def test_common_passwords_are_refused_on_change(
        self, client: httpx.AsyncClient, alice: Account
    ) -> None:
        changed = await client.post(
            f"{API}/password/change",
            json={"current_password": alice.password, "new_password": "password123"},
            headers=alice.headers,
        )
        assert_invalid(changed, "new_password")
        patched = await client.patch(
            f"{API}/me",
            json={"password": "iloveyou1", "current_password": alice.password},
            headers=alice.headers,
        )
        assert_invalid(patched, "password")
        assert (await login(client, alice.email, alice.password)).status_code == 200

    async def test_verified_exactly_as_typed(self, client: httpx.AsyncClient) -> None:
        """No truncation (bcrypt's 72 bytes), no trimming, no case folding."""
        password = (_NOISE * 12)[:100]
        email = _email()
        created = await client.post(f"{API}/register", json={"email": email, "password": password})
        assert created.status_code == 201
        differs_at_90 = password[:89] + ("X" if password[89] != "X" else "Y") + password[90:]
        variants = [
            differs_at_90,
            password.upper(),
            password.swapcase(),
            password + " ",
            password[:72],
        ]
        for variant in variants:
            assert variant != password
            assert (await login(client, email, variant)).status_code == 401, variant
        assert (await login(client, email, password)).status_code == 200


class TestNoEnumeration:
    @pytest.fixture
    def verify_calls(self, app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """Counts Argon2 verifications (not hashes: the dummy hash is made on first use)."""
        passwords = app.state.auth.passwords
        original: Callable[[str, str], bool] = passwords._verify
        calls: list[str] = []

        def counting(hashed: str, password: str) -> bool:
            calls.append(hashed)
            return original(hashed, password)

        monkeypatch.setattr(passwords, "_verify", counting)
        return calls

    async def test_unknown_email_and_wrong_password_look_and_cost_the_same(
        self, client: httpx.AsyncClient, alice: Account, verify_calls: list[str]
    ) -> None:
        unknown = await login(client, _email(), "some long wrong password")
        unknown_calls = len(verify_calls)
        verify_calls.clear()
        wrong = await login(client, alice.email, "some long wrong password")
        wrong_calls = len(verify_calls)
        verify_calls.clear()
        assert unknown_calls == 1
        assert wrong_calls == 1
        assert unknown.status_code == wrong.status_code == 401
        assert unknown.json() == wrong.json()
        assert unknown.headers["content-type"] == wrong.headers["content-type"]
        assert unknown.headers.get("www-authenticate") == wrong.headers.get("www-authenticate")
        # a second unknown login (the dummy hash now exists) still verifies exactly once
        await login(client, _email(), "some long wrong password")
        assert len(verify_calls) == 1
        verify_calls.clear()
        assert (await login(client, alice.email, alice.password)).status_code == 200
        assert len(verify_calls) == 1

    async def test_an_account_without_a_password_looks_like_any_other(
        self, client: httpx.AsyncClient, store: Store, verify_calls: list[str]
    ) -> None:
        email = _email()
        await store.users.create(email=email)  # no password (as an external identity has)
        nobody = await login(client, email, "some long wrong password")
        assert nobody.status_code == 401
        assert len(verify_calls) == 1
        assert nobody.json() == (await login(client, _email(), "some long wrong pw")).json()
