"""``/api/v1/auth``: register, login (JSON or the OAuth2 password form), refresh, logout, the
current user, password change and reset, and external-identity login.

Each handler owns its transactions (``Auth`` works on the connection it is given); a password is
hashed or checked outside any transaction, so a slow hash never holds a connection or SQLite's
write lock."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from convstore.auth.schemas import (
    ExternalLoginRequest,
    LoginRequest,
    LogoutRequest,
    PasswordChangeRequest,
    PasswordResetConfirm,
    PasswordResetRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from convstore.auth.service import Auth, bad_refresh, hash_token, invalid_reset
from convstore.errors import InvalidCredentials, InvalidInput
from convstore.http.deps import (
    API_PREFIX,
    AuthDep,
    AuthRateLimit,
    CurrentUser,
    NoStore,
    RateLimitsDep,
    SessionUser,
    StoreDep,
    WriteConn,
    client_ip,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES
from convstore.http.routing import ApiRoute
from convstore.kit.validation import parse
from convstore.store import Store
from convstore.users.schemas import Email, Password, UserName, UserRead, UserUpdate
from convstore.users.service import user as user_service

log = logging.getLogger("convstore.auth")
router = APIRouter(prefix="/auth", tags=["auth"], responses=ERROR_RESPONSES, route_class=ApiRoute)

_LOGIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "description": "The email."},
                        "password": {"type": "string"},
                    },
                }
            },
        },
    }
}


class MeUpdate(BaseModel):
    """Changing ``email`` or ``password`` needs ``current_password``."""

    model_config = {"extra": "forbid"}
    name: UserName | None = None
    email: Email | None = None
    password: Password | None = Field(default=None, repr=False)
    current_password: Annotated[str, Field(max_length=128)] | None = Field(default=None, repr=False)


class AccountDeletion(BaseModel):
    model_config = {"extra": "forbid"}
    current_password: Annotated[str, Field(max_length=128)] | None = Field(default=None, repr=False)


class Accepted(BaseModel):
    detail: str


async def _enter_by_token(
    store: Store,
    conn: AsyncConnection,
    owner_of: Callable[[AsyncConnection, str], Awaitable[uuid.UUID | None]],
    raw: str,
) -> uuid.UUID | None:
    """The owner of the token ``raw``; the rest of the transaction acts for them.

    These flows learn who the user is from a token: the transaction first names the token (the
    row-level security policies let it read the one row with that hash), then its owner.
    """
    await store.db.act_as(conn, token_hash=hash_token(raw))
    owner = await owner_of(conn, raw)
    if owner is not None:
        await store.db.act_as(conn, user_id=owner)
    return owner


async def _check_current_password(
    store: Store, auth: Auth, user_id: uuid.UUID, password: str | None
) -> None:
    """Re-authentication: the stored hash is read, then checked outside the transaction."""
    async with store.reading() as conn:
        on_file = await auth.password_on_file(conn, user_id)
    await auth.check_current_password(on_file, password)


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


async def _login_payload(request: Request) -> LoginRequest:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()
        data: Any = {"email": form.get("username"), "password": form.get("password")}
    else:
        try:
            data = await request.json()
        except ValueError as exc:
            reason = f" ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else ""
            raise InvalidInput(
                f"the body must be JSON or an OAuth2 password form{reason}", field="body"
            ) from None
    return parse(LoginRequest, data)


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account",
    dependencies=[AuthRateLimit],
    responses=CONFLICT_RESPONSES,
)
async def register(
    body: RegisterRequest, store: StoreDep, auth: AuthDep, response: Response
) -> UserRead:
    """Create an account with an email and a password (8–128 characters, not a common one)."""
    hashed = await auth.new_password(body.password)
    async with store.writing() as conn:
        user = await auth.register(conn, body, hashed)
    response.headers["Location"] = f"{API_PREFIX}/auth/me"
    return user


@router.post(
    "/login",
    summary="Sign in",
    openapi_extra=_LOGIN_BODY,
    dependencies=[AuthRateLimit, NoStore],
)
async def login(
    request: Request, store: StoreDep, auth: AuthDep, limits: RateLimitsDep
) -> TokenPair:
    """Exchange an email and password (JSON, or the OAuth2 form) for a token pair."""
    data = await _login_payload(request)
    ip = client_ip(request)
    await limits.check_login(data.email, ip)
    try:
        pair = await _login(store, auth, data, _user_agent(request))
    except InvalidCredentials:
        await limits.login_failed(data.email)
        raise
    await limits.login_succeeded(data.email, ip)
    return pair


async def _login(store: Store, auth: Auth, data: LoginRequest, user_agent: str | None) -> TokenPair:
    """Two transactions: the password is checked between them, outside any transaction; only
    the session insert (and a rehash when the hashing parameters changed) writes."""
    async with store.reading() as conn:
        row = await auth.login_candidate(conn, data.email)
    user_id, rehashed = await auth.check_login(row, data.password)
    async with store.writing(user_id) as conn:
        return await auth.open_session(conn, user_id, rehashed, user_agent)


@router.post("/refresh", summary="Rotate the refresh token", dependencies=[AuthRateLimit, NoStore])
async def refresh(body: RefreshRequest, store: StoreDep, auth: AuthDep) -> TokenPair:
    """Trade a refresh token for a new pair; the old one stops working (reuse ends the session)."""
    async with store.writing() as conn:
        if await _enter_by_token(store, conn, auth.refresh_owner, body.refresh_token) is None:
            raise bad_refresh()
        pair = await auth.rotate(conn, body.refresh_token)
    if pair is None:  # a reuse: the family's revocation has committed; now refuse
        raise bad_refresh()
    return pair


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def logout(
    request: Request,
    user: SessionUser,
    conn: WriteConn,
    auth: AuthDep,
    body: Annotated[LogoutRequest | None, Body()] = None,
    everywhere: bool = False,
) -> None:
    """End this session (its refresh tokens and access tokens), or every session."""
    raw = body.refresh_token if body else None
    await auth.logout(conn, user.id, request.state.session_id, raw, everywhere)


@router.get("/me", summary="The signed-in user")
async def get_me(user: CurrentUser) -> UserRead:
    """The account behind the access token."""
    return user


@router.patch("/me", summary="Update the signed-in user", responses=CONFLICT_RESPONSES)
async def update_me(body: MeUpdate, user: SessionUser, store: StoreDep, auth: AuthDep) -> UserRead:
    """Change the name; changing the email or password also needs `current_password`.

    A new password ends every session (sign in again).
    """
    if body.email is not None or body.password is not None:
        await _check_current_password(store, auth, user.id, body.current_password)
    hashed = await auth.new_password(body.password) if body.password is not None else None
    changes = body.model_dump(exclude_unset=True, exclude={"current_password", "password"})
    update = UserUpdate.model_validate(changes)
    async with store.writing(user.id) as conn:
        updated = await user_service.update(conn, user.id, update)
        if hashed is not None:
            await auth.set_password(conn, user.id, hashed)
    return updated


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, summary="Delete the account")
async def delete_me(
    user: SessionUser,
    store: StoreDep,
    auth: AuthDep,
    body: Annotated[AccountDeletion | None, Body()] = None,
) -> None:
    """Delete the account and everything it owns (needs `current_password`)."""
    await _check_current_password(store, auth, user.id, body.current_password if body else None)
    async with store.writing(user.id) as conn:
        await user_service.delete(conn, user.id)


@router.post("/password/change", summary="Change the password", dependencies=[NoStore])
async def change_password(
    request: Request, body: PasswordChangeRequest, user: SessionUser, store: StoreDep, auth: AuthDep
) -> TokenPair:
    """Set a new password: every session ends, and this client gets a new one."""
    await _check_current_password(store, auth, user.id, body.current_password)
    hashed = await auth.new_password(body.new_password, "new_password")
    async with store.writing(user.id) as conn:
        await auth.set_password(conn, user.id, hashed)
        return await auth.start_session(conn, user.id, _user_agent(request))


@router.post(
    "/password-reset/request",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ask for a password reset",
    dependencies=[AuthRateLimit],
)
async def request_password_reset(
    body: PasswordResetRequest, store: StoreDep, auth: AuthDep, background: BackgroundTasks
) -> Accepted:
    """Send a reset token to the address if it has an account; the answer is always the same.

    The answer leaves before the address is even looked up: the lookup, the token and its
    delivery run after the response (see :func:`_request_reset_later`), so neither its
    content nor its timing can tell a known address from an unknown one.
    """
    background.add_task(_request_reset_later, store, auth, body.email)
    return Accepted(detail="if the address has an account, a reset message is on its way")


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with a reset token",
    dependencies=[AuthRateLimit],
)
async def confirm_password_reset(
    body: PasswordResetConfirm, store: StoreDep, auth: AuthDep
) -> None:
    """Use a reset token (once, before it expires); every session of the account ends."""
    hashed = await auth.new_password(body.new_password, "new_password")
    async with store.writing() as conn:
        if await _enter_by_token(store, conn, auth.reset_owner, body.token) is None:
            raise invalid_reset()
        await auth.confirm_reset(conn, body.token, hashed)


@router.post(
    "/external",
    summary="Sign in with an external identity",
    dependencies=[AuthRateLimit, NoStore],
    responses=CONFLICT_RESPONSES,
)
async def external_login(
    request: Request, body: ExternalLoginRequest, store: StoreDep, auth: AuthDep
) -> TokenPair:
    """Exchange a JWT of the configured external issuer for a convstore session."""
    claims = await auth.external_login_claims(body.id_token)
    async with store.writing() as conn:
        user = await auth.provision(conn, claims)
        await store.db.act_as(conn, user_id=user.id)
        return await auth.start_session(conn, user.id, _user_agent(request))


async def _request_reset_later(store: Store, auth: Auth, email: str) -> None:
    """:func:`_request_reset`, run after the answer has been sent; a failure is logged.

    Why deferred rather than made equal: a known address costs a token insert, a commit
    that must reach the disk, and a delivery (an email, in production: the slowest part by
    far); an unknown one costs a lookup. Padding the unknown path with the same work would
    need a write that means nothing and a delivery that goes nowhere, and would still only
    be as equal as two different statements can be. With the work after the response,
    every request gets the same answer after the same work (validation and the rate limit),
    by construction. The work does not hold the connection either: the server reads the
    next request meanwhile.
    """
    try:
        await _request_reset(store, auth, email)
    except Exception:
        log.exception("a password reset request could not be completed")


async def _request_reset(store: Store, auth: Auth, email: str) -> None:
    """Send a reset token when the account exists (delivered once the token has committed)."""
    async with store.writing() as conn:
        row = await auth.reset_target(conn, email)
        if row is None:
            return
        await store.db.act_as(conn, user_id=row["id"])
        raw, expires = await auth.issue_reset(conn, row["id"])
    await auth.send_reset(row["email"], raw, expires)
