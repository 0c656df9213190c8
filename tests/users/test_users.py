"""Users through the library API (``store.users``), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Uuid, bindparam, text

from convstore import Conflict, InvalidInput, NotFound, Store
from convstore.users.schemas import UserRead
from tests.factories import make_conversation, make_messages, make_task, make_user

PASSWORD = "violet otter sings at dawn 42"
"""Long, plain words, and in no list of common passwords."""
_NOISE = "k7Qz-m2Wp" * 15
"""Not a dictionary password at any length: the length tests measure only length."""


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@example.com"


async def _hashed_password(store: Store, user_id: uuid.UUID) -> str | None:
    """The stored hash, read with raw SQL (no read model exposes it)."""
    stmt = text("SELECT hashed_password FROM users WHERE id = :uid").bindparams(
        bindparam("uid", user_id, type_=Uuid())
    )
    async with store.db.engine.connect() as conn:
        value: str | None = (await conn.execute(stmt)).scalar_one()
    return value


async def _count(store: Store, table: str, user_id: uuid.UUID) -> int:
    column = "id" if table == "users" else "user_id"
    stmt = text(f"SELECT count(*) FROM {table} WHERE {column} = :uid").bindparams(
        bindparam("uid", user_id, type_=Uuid())
    )
    async with store.db.engine.connect() as conn:
        count: int = (await conn.execute(stmt)).scalar_one()
    return count


async def _count_email(store: Store, email: str) -> int:
    stmt = text("SELECT count(*) FROM users WHERE lower(email) = :email").bindparams(
        email=email.lower()
    )
    async with store.db.engine.connect() as conn:
        count: int = (await conn.execute(stmt)).scalar_one()
    return count


class TestCreate:
    async def test_defaults(self, store: Store) -> None:
        email = _email()
        user = await store.users.create(email=email)
        assert user.email == email
        assert user.name is None
        assert user.role == "user"
        assert user.is_active is True
        assert user.auth_provider is None
        assert user.created_at == user.updated_at
        assert await store.users.get(user.id) == user

    async def test_email_is_trimmed_and_lower_cased(self, store: Store) -> None:
        local = f"Mixed.Case-{uuid.uuid4().hex[:8]}"
        user = await store.users.create(email=f"  {local}@Example.COM  ")
        assert user.email == f"{local.lower()}@example.com"
        assert (await store.users.get(user.id)).email == user.email

    async def test_duplicate_email_in_other_case_is_a_conflict(self, store: Store) -> None:
        email = _email()
        await store.users.create(email=email)
        with pytest.raises(Conflict):
            await store.users.create(email=f" {email.upper()} ")
        assert await _count_email(store, email) == 1

    async def test_invalid_email_is_refused(self, store: Store) -> None:
        with pytest.raises(InvalidInput) as exc:
            await store.users.create(email="not-an-email")
        assert exc.value.fields == ["email"]

    @pytest.mark.parametrize("field", ["email", "name", "auth_provider", "auth_subject"])
    @pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\n"], ids=repr)
    async def test_text_with_control_characters_is_refused(
        self, store: Store, field: str, char: str
    ) -> None:
        """Every text field of a user is one line (NUL would fail on PostgreSQL)."""
        email = _email()
        values = {"email": email, "name": "Ada", "auth_provider": "idp", "auth_subject": "s-1"}
        values[field] = f"a{char}b" if field != "email" else f"a{char}b-{email}"
        with pytest.raises(InvalidInput) as exc:
            await store.users.create(**values)
        assert exc.value.fields == [field]
        assert await _count_email(store, email) == 0

    async def test_invalid_role_is_refused(self, store: Store) -> None:
        email = _email()
        with pytest.raises(InvalidInput) as exc:
            await store.users.create(email=email, role="superuser")
        assert exc.value.fields == ["role"]
        assert await _count_email(store, email) == 0

    async def test_admin_role_is_accepted(self, store: Store) -> None:
        user = await store.users.create(email=_email(), role="admin")
        assert (await store.users.get(user.id)).role == "admin"


class TestPassword:
    async def test_stored_as_argon2id_hash_not_plain(self, store: Store) -> None:
        user = await store.users.create(email=_email(), password=PASSWORD)
        hashed = await _hashed_password(store, user.id)
        assert hashed is not None
        assert hashed.startswith("$argon2id$")
        assert PASSWORD not in hashed
        assert (await store.passwords.verify(hashed, PASSWORD))[0] is True
        assert (await store.passwords.verify(hashed, PASSWORD + "!"))[0] is False

    async def test_read_model_never_carries_the_hash(self, store: Store) -> None:
        user = await store.users.create(email=_email(), password=PASSWORD)
        for read in (user, await store.users.get(user.id)):
            assert not hasattr(read, "hashed_password")
            assert not hasattr(read, "password")
            dumped = read.model_dump()
            assert not [k for k in dumped if "password" in k or "hash" in k]
            assert PASSWORD not in read.model_dump_json()
        assert not [f for f in UserRead.model_fields if "password" in f or "hash" in f]

    async def test_no_password_stores_no_hash(self, store: Store) -> None:
        user = await store.users.create(email=_email())
        assert await _hashed_password(store, user.id) is None

    @pytest.mark.parametrize("length", [0, 1, 7, 129, 1000])
    async def test_length_out_of_bounds_is_refused(self, store: Store, length: int) -> None:
        email = _email()
        with pytest.raises(InvalidInput) as exc:
            await store.users.create(email=email, password=(_NOISE * 8)[:length])
        assert exc.value.fields == ["password"]
        assert await _count_email(store, email) == 0

    @pytest.mark.parametrize(
        "password",
        [
            pytest.param(_NOISE[:8], id="8-chars"),
            pytest.param(_NOISE[:128], id="128-chars"),
            pytest.param("pässwörd🔒日本語", id="unicode"),
            pytest.param("  spaces inside and out  ", id="spaces"),
        ],
    )
    async def test_accepted_exactly_as_typed(self, store: Store, password: str) -> None:
        user = await store.users.create(email=_email(), password=password)
        hashed = await _hashed_password(store, user.id)
        assert hashed is not None
        assert hashed.startswith("$argon2id$")
        assert (await store.passwords.verify(hashed, password))[0] is True
        if password != password.strip():
            # Never trimmed: the trimmed form is a different password.
            assert (await store.passwords.verify(hashed, password.strip()))[0] is False


class TestGet:
    async def test_unknown_id_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.users.get(uuid.uuid4())

    async def test_malformed_id_is_invalid_input(self, store: Store) -> None:
        with pytest.raises(InvalidInput) as exc:
            await store.users.get("nope")
        assert exc.value.fields == ["user_id"]

    async def test_accepts_the_id_as_a_string(self, store: Store, user: UserRead) -> None:
        assert await store.users.get(str(user.id)) == user


class TestGetByEmail:
    async def test_is_case_insensitive_and_ignores_outer_spaces(self, store: Store) -> None:
        user = await store.users.create(email=_email())
        assert await store.users.get_by_email(user.email) == user
        assert await store.users.get_by_email(user.email.upper()) == user
        assert await store.users.get_by_email(f"  {user.email.title()} ") == user

    async def test_unknown_email_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.users.get_by_email(_email())


class TestUpdate:
    async def test_name(self, store: Store, user: UserRead) -> None:
        updated = await store.users.update(user.id, name="  New Name ")
        assert updated.name == "New Name"
        assert updated.email == user.email
        assert updated.updated_at > user.updated_at
        assert await store.users.get(user.id) == updated

    async def test_name_none_clears_it(self, store: Store, user: UserRead) -> None:
        assert user.name is not None
        assert (await store.users.update(user.id, name=None)).name is None
        assert (await store.users.get(user.id)).name is None

    async def test_email_is_normalized(self, store: Store, user: UserRead) -> None:
        new = _email()
        updated = await store.users.update(user.id, email=f" {new.upper()} ")
        assert updated.email == new
        assert await store.users.get_by_email(new) == updated

    async def test_own_email_in_other_case_is_not_a_conflict(
        self, store: Store, user: UserRead
    ) -> None:
        updated = await store.users.update(user.id, email=user.email.upper())
        assert updated.email == user.email

    async def test_email_of_another_user_is_a_conflict(
        self, store: Store, user: UserRead, other_user: UserRead
    ) -> None:
        with pytest.raises(Conflict):
            await store.users.update(user.id, email=other_user.email.upper())
        assert await store.users.get(user.id) == user
        assert await _count_email(store, other_user.email) == 1

    async def test_password_changes_the_hash(self, store: Store) -> None:
        user = await store.users.create(email=_email(), password=PASSWORD)
        before = await _hashed_password(store, user.id)
        await store.users.update(user.id, password="another otter at dusk 7")
        after = await _hashed_password(store, user.id)
        assert after is not None
        assert after != before
        assert after.startswith("$argon2id$")
        assert (await store.passwords.verify(after, "another otter at dusk 7"))[0] is True
        assert (await store.passwords.verify(after, PASSWORD))[0] is False

    async def test_short_password_is_refused_and_hash_kept(self, store: Store) -> None:
        user = await store.users.create(email=_email(), password=PASSWORD)
        before = await _hashed_password(store, user.id)
        with pytest.raises(InvalidInput) as exc:
            await store.users.update(user.id, password="short")
        assert exc.value.fields == ["password"]
        assert await _hashed_password(store, user.id) == before

    async def test_invalid_role_is_refused(self, store: Store, user: UserRead) -> None:
        with pytest.raises(InvalidInput) as exc:
            await store.users.update(user.id, role="root")
        assert exc.value.fields == ["role"]
        assert await store.users.get(user.id) == user

    async def test_role_and_is_active(self, store: Store, user: UserRead) -> None:
        updated = await store.users.update(user.id, role="admin", is_active=False)
        assert (updated.role, updated.is_active) == ("admin", False)
        assert await store.users.get(user.id) == updated

    @pytest.mark.parametrize("field", ["email", "password", "role", "is_active"])
    async def test_none_for_a_required_field_is_refused(
        self, store: Store, user: UserRead, field: str
    ) -> None:
        with pytest.raises(InvalidInput) as exc:
            await store.users.update(user.id, **{field: None})
        assert exc.value.fields == [field]
        assert await store.users.get(user.id) == user

    @pytest.mark.parametrize("field", ["hashed_password", "id", "auth_subject", "created_at"])
    async def test_unknown_field_is_refused(self, store: Store, user: UserRead, field: str) -> None:
        with pytest.raises(InvalidInput) as exc:
            await store.users.update(user.id, **{field: "x"})
        assert exc.value.fields == [field]
        assert await store.users.get(user.id) == user

    async def test_unknown_user_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.users.update(uuid.uuid4(), name="x")


class TestDelete:
    async def test_cascades_to_everything_the_user_owns(
        self, store: Store, user: UserRead, other_user: UserRead
    ) -> None:
        me, them = store.for_user(user.id), store.for_user(other_user.id)
        for scope in (me, them):
            for _ in range(2):
                conv = await make_conversation(scope)
                await make_messages(scope, conv.id, 5)
            await make_task(scope)
            await make_task(scope)
        tables = ("users", "conversations", "messages", "tasks")
        assert [await _count(store, t, user.id) for t in tables] == [1, 2, 10, 2]
        theirs = [await _count(store, t, other_user.id) for t in tables]
        assert theirs == [1, 2, 10, 2]

        await store.users.delete(user.id)

        assert [await _count(store, t, user.id) for t in tables] == [0, 0, 0, 0]
        assert [await _count(store, t, other_user.id) for t in tables] == theirs
        assert len((await them.conversations.list()).items) == 2

    async def test_then_get_and_delete_again_are_not_found(
        self, store: Store, user: UserRead
    ) -> None:
        await store.users.delete(user.id)
        with pytest.raises(NotFound):
            await store.users.get(user.id)
        with pytest.raises(NotFound):
            await store.users.get_by_email(user.email)
        with pytest.raises(NotFound):
            await store.users.delete(user.id)

    async def test_email_is_free_again(self, store: Store, user: UserRead) -> None:
        await store.users.delete(user.id)
        again = await store.users.create(email=user.email)
        assert again.id != user.id

    async def test_deleted_users_scope_cannot_write(self, store: Store, user: UserRead) -> None:
        me = store.for_user(user.id)
        await store.users.delete(user.id)
        with pytest.raises(NotFound):
            await me.tasks.create(title="orphan")
        with pytest.raises(NotFound):
            await me.conversations.create(title="orphan")
        assert await _count(store, "tasks", user.id) == 0
        assert await _count(store, "conversations", user.id) == 0


class TestExternalIdentity:
    async def test_provider_and_subject_without_password(self, store: Store) -> None:
        subject = uuid.uuid4().hex
        user = await store.users.create(
            email=_email(), auth_provider="https://issuer.example", auth_subject=subject
        )
        assert user.auth_provider == "https://issuer.example"
        assert await _hashed_password(store, user.id) is None
        assert await store.users.get(user.id) == user

    @pytest.mark.parametrize(
        ("provider", "subject"), [("https://issuer.example", None), (None, "sub-123")]
    )
    async def test_only_one_of_provider_and_subject_is_refused(
        self, store: Store, provider: str | None, subject: str | None
    ) -> None:
        email = _email()
        with pytest.raises(InvalidInput) as exc:
            await store.users.create(email=email, auth_provider=provider, auth_subject=subject)
        assert exc.value.fields == ["auth_subject"]
        assert await _count_email(store, email) == 0

    async def test_same_identity_twice_is_a_conflict(self, store: Store) -> None:
        subject = uuid.uuid4().hex
        await make_user(store, auth_provider="issuer", auth_subject=subject)
        email = _email()
        with pytest.raises(Conflict):
            await store.users.create(email=email, auth_provider="issuer", auth_subject=subject)
        assert await _count_email(store, email) == 0

    async def test_same_subject_at_another_provider_is_another_user(self, store: Store) -> None:
        subject = uuid.uuid4().hex
        a = await make_user(store, auth_provider="issuer-a", auth_subject=subject)
        b = await make_user(store, auth_provider="issuer-b", auth_subject=subject)
        assert a.id != b.id
