"""FastAPI dependencies: the store, the request's transaction, the acting user, paging.

Each request is one transaction: ``WriteConn`` commits when the handler returns and rolls back
when it raises, before the response is sent (``scope="function"``). Both connections belong to
the signed-in user: on PostgreSQL the transaction names them for row-level security.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request, Response, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from convstore.apikeys.service import api_key as api_key_service
from convstore.apikeys.service import hash_key, looks_like_key
from convstore.auth.service import Auth, Principal
from convstore.config import Settings
from convstore.errors import InvalidCredentials, PermissionDenied
from convstore.http.idempotency import Idempotency, idempotency_key
from convstore.http.ratelimit import RateLimits
from convstore.kit import context
from convstore.kit.pagination import MAX_CURSOR_CHARS, MAX_PAGE_SIZE
from convstore.store import Store
from convstore.users.schemas import UserRead

API_PREFIX = "/api/v1"
bearer = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/login", auto_error=False)


# HTTPConnection, not Request: these also serve WebSocket routes. Plain functions, for callers
# outside FastAPI (the MCP app); the dependencies below are their ``async`` twins, because
# FastAPI runs a plain-function dependency on a worker thread (a thread hop per dependency
# per request).
def get_store(conn: HTTPConnection) -> Store:
    store: Store = conn.app.state.store
    return store


def get_auth(conn: HTTPConnection) -> Auth:
    auth: Auth = conn.app.state.auth
    return auth


def get_limits(conn: HTTPConnection) -> RateLimits:
    limits: RateLimits = conn.app.state.rate_limits
    return limits


async def store_dep(conn: HTTPConnection) -> Store:
    return get_store(conn)


async def auth_dep(conn: HTTPConnection) -> Auth:
    return get_auth(conn)


async def limits_dep(conn: HTTPConnection) -> RateLimits:
    return get_limits(conn)


async def get_settings_dep(conn: HTTPConnection) -> Settings:
    return get_store(conn).settings


StoreDep = Annotated[Store, Depends(store_dep)]
AuthDep = Annotated[Auth, Depends(auth_dep)]
RateLimitsDep = Annotated[RateLimits, Depends(limits_dep)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def authenticate(store: Store, auth: Auth, token: str) -> Principal:
    """The caller behind a bearer token, ours or the configured external issuer's: what every
    entry point (a request, a socket frame, an MCP call) checks first.

    Reads in a read transaction; only the first sight of an external user writes (a second
    transaction: reads are the rule and take no write lock). An API key (``csk_…``) is looked
    up on every call, so a revoked or expired key, or one whose account is disabled or gone,
    is refused on its next request.
    """
    if looks_like_key(token):
        return await _key_principal(store, token)
    claims = await auth.external_claims(token)
    if claims is None:
        access = auth.access.verify(token)
        async with store.reading(access.user_id) as conn:
            principal = await auth.session_principal(conn, access)
    else:
        async with store.reading() as conn:
            found = await auth.external_principal(conn, claims)
        if found is None:
            async with store.writing() as conn:
                found = Principal(await auth.provision(conn, claims), None)
        principal = found
    context.bind_user(principal.user.id)  # the request's log lines name the user
    return principal


async def _key_principal(store: Store, raw: str) -> Principal:
    """The caller behind an API key; records its use at most once a minute.

    The lookup names the key's hash (row-level security opens that one row). On PostgreSQL it
    runs in a transaction, which an autocommit read could not carry the setting through; on
    SQLite, where nothing needs naming, a plain read. The use is recorded, when due, in a
    write transaction of the owner's: a conditional ``UPDATE``, so concurrent requests write
    it once.
    """
    unit = store.writing if store.db.dialect == "postgresql" else store.reading
    async with unit() as conn:
        await store.db.act_as(conn, token_hash=hash_key(raw))
        found = await api_key_service.owner(conn, raw)
    if found is None:
        raise InvalidCredentials("invalid, revoked or expired API key")
    if found.touch_due:
        async with store.writing(found.user.id) as conn:
            await api_key_service.touch(conn, found.user.id, found.key_id)
    return Principal(found.user, None, found.key_id)


async def current_user(request: Request, token: Annotated[str | None, Depends(bearer)]) -> UserRead:
    """The user behind the bearer token (401 otherwise), counted against their rate limit.

    Every authenticated request solves this and one connection dependency: they read the
    app's state themselves rather than through three more dependencies each.
    """
    if not token:
        raise InvalidCredentials("not authenticated")
    principal = await authenticate(get_store(request), get_auth(request), token)
    return await admit(request, principal)


async def admit(request: Request, principal: Principal) -> UserRead:
    """Let an authenticated caller in: counted against their rate limit, and who they are
    (their session or API key) kept in the request's state."""
    limits = get_limits(request)
    await limits.hit(limits.user, "user", str(principal.user.id))
    request.state.session_id = principal.session_id
    request.state.api_key_id = principal.api_key_id
    return principal.user


CurrentUser = Annotated[UserRead, Depends(current_user)]


async def session_user(request: Request, user: CurrentUser) -> UserRead:
    """The signed-in user, when they signed in with an access token, not an API key (403):
    for what a leaked key must not be able to do, such as minting more keys."""
    if request.state.api_key_id is not None:
        raise PermissionDenied("this needs a signed-in session; an API key cannot do it")
    return user


SessionUser = Annotated[UserRead, Depends(session_user)]


async def admin_user(request: Request, user: CurrentUser) -> UserRead:
    """The signed-in user, when they are an ``admin``.

    Anyone else gets the very 404 an unknown path gets (Starlette's own, through the same
    handler): the admin routes are not there for them, and no user id can be probed through
    them. An admin must sign in with an access token: an API key gets 403, so a leaked key
    cannot disable accounts.
    """
    if user.role != "admin":
        raise StarletteHTTPException(status.HTTP_404_NOT_FOUND)
    if request.state.api_key_id is not None:
        raise PermissionDenied("this needs a signed-in session; an API key cannot do it")
    return user


AdminUser = Annotated[UserRead, Depends(admin_user)]


async def read_conn(request: Request, user: CurrentUser) -> AsyncIterator[AsyncConnection]:
    """The request's read transaction, for the signed-in user (row-level security sees only
    their rows on PostgreSQL): authentication always comes first."""
    async with get_store(request).reading(user.id) as conn:
        yield conn


async def write_conn(request: Request, user: CurrentUser) -> AsyncIterator[AsyncConnection]:
    """The request's write transaction, for the signed-in user."""
    async with get_store(request).writing(user.id) as conn:
        yield conn


async def append_conn(
    request: Request,
    user: CurrentUser,
    key: Annotated[str | None, Depends(idempotency_key)],
) -> AsyncIterator[AsyncConnection]:
    """The connection of an append, which the repository makes atomic by itself
    (:meth:`Store.writing_statement`: one round trip on PostgreSQL, one hop to SQLite's
    thread); a request with an Idempotency-Key gets a write transaction, which the key's
    claim and recorded response share with the append."""
    store = get_store(request)
    unit = store.writing if key is not None else store.writing_statement
    async with unit(user.id) as conn:
        yield conn


ReadConn = Annotated[AsyncConnection, Depends(read_conn, scope="function")]
WriteConn = Annotated[AsyncConnection, Depends(write_conn, scope="function")]
AppendConn = Annotated[AsyncConnection, Depends(append_conn, scope="function")]


def client_ip(request: Request) -> str:
    """The peer address (behind a proxy: run uvicorn with --proxy-headers and trusted IPs)."""
    return request.client.host if request.client else "unknown"


async def auth_rate_limit(request: Request, limits: RateLimitsDep) -> None:
    """Unauthenticated auth routes are limited per client IP."""
    await limits.hit(limits.auth_ip, "auth-ip", client_ip(request))


AuthRateLimit = Depends(auth_rate_limit)


async def no_store(response: Response) -> None:
    """A response carrying tokens is never cached, by the browser or a proxy (RFC 6749 §5.1;
    ``Pragma`` for HTTP/1.0 caches)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


NoStore = Depends(no_store)


async def idempotency(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str | None, Depends(idempotency_key)],
) -> Idempotency:
    return Idempotency(request, key, settings.idempotency_ttl_seconds)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size (1–100).")]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_CHARS, description="`next_cursor` of the previous page."),
]
