"""``/api/v1/auth``: register, login (JSON or the OAuth2 password form), refresh, logout, the
current user, password change and reset, and external-identity login."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Request, Response, status
from pydantic import BaseModel, Field

from convstore.auth.passwords import check_password_policy
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
from convstore.errors import InvalidCredentials, InvalidInput
from convstore.http.deps import (
    API_PREFIX,
    AuthDep,
    AuthRateLimit,
    CurrentUser,
    NoStore,
    RateLimitsDep,
    StoreDep,
    WriteConn,
    client_ip,
)
from convstore.http.errors import CONFLICT_RESPONSES, ERROR_RESPONSES
from convstore.http.routing import ApiRoute
from convstore.kit.validation import parse
from convstore.users.schemas import Email, Password, UserName, UserRead, UserUpdate
from convstore.users.service import user as user_service

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
    user = await auth.register(store, body)
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
        pair = await auth.login(store, data.email, data.password, _user_agent(request))
    except InvalidCredentials:
        await limits.login_failed(data.email)
        raise
    await limits.login_succeeded(data.email, ip)
    return pair


@router.post("/refresh", summary="Rotate the refresh token", dependencies=[AuthRateLimit, NoStore])
async def refresh(body: RefreshRequest, store: StoreDep, auth: AuthDep) -> TokenPair:
    """Trade a refresh token for a new pair; the old one stops working (reuse ends the session)."""
    return await auth.refresh(store, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def logout(
    request: Request,
    user: CurrentUser,
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
async def update_me(body: MeUpdate, user: CurrentUser, store: StoreDep, auth: AuthDep) -> UserRead:
    """Change the name; changing the email or password also needs `current_password`.

    A new password ends every session (sign in again).
    """
    if body.email is not None or body.password is not None:
        await auth.check_current_password(store, user.id, body.current_password)
    if body.password is not None:
        check_password_policy(body.password)
    changes = body.model_dump(exclude_unset=True, exclude={"current_password", "password"})
    update = UserUpdate.model_validate(changes)
    hashed = await auth.passwords.hash(body.password) if body.password else None
    async with store.writing(user.id) as conn:
        updated = await user_service.update(conn, user.id, update)
        if hashed is not None:
            await auth.set_password(conn, user.id, hashed)
    return updated


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, summary="Delete the account")
async def delete_me(
    user: CurrentUser,
    store: StoreDep,
    auth: AuthDep,
    body: Annotated[AccountDeletion | None, Body()] = None,
) -> None:
    """Delete the account and everything it owns (needs `current_password`)."""
    await auth.check_current_password(store, user.id, body.current_password if body else None)
    async with store.writing(user.id) as conn:
        await user_service.delete(conn, user.id)


@router.post("/password/change", summary="Change the password", dependencies=[NoStore])
async def change_password(
    request: Request, body: PasswordChangeRequest, user: CurrentUser, store: StoreDep, auth: AuthDep
) -> TokenPair:
    """Set a new password: every session ends, and this client gets a new one."""
    return await auth.change_password(
        store, user.id, body.current_password, body.new_password, _user_agent(request)
    )


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
    delivery run after the response (see ``Auth.request_reset_later``), so neither its
    content nor its timing can tell a known address from an unknown one.
    """
    background.add_task(auth.request_reset_later, store, body.email)
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
    await auth.confirm_reset(store, body.token, body.new_password)


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
    return await auth.external_login(store, body.id_token, _user_agent(request))
