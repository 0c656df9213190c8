"""``convstore users``: the operator's account commands. Each one is its own transaction
through the user services; nothing here writes SQL.

A password is never taken from the command line (it would show in ``ps`` and the shell's
history): ``create`` prompts for it, or reads ``CONVSTORE_NEW_USER_PASSWORD``, or one line of
standard input with ``--password-stdin``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, TypeVar, cast

import typer

from convstore.commands import common
from convstore.kit.pagination import MAX_PAGE_SIZE
from convstore.kit.validation import parse
from convstore.store import Store
from convstore.store import open as open_store
from convstore.users.schemas import UserFilter, UserRead, UserRole
from convstore.users.service import user as user_service

T = TypeVar("T")

PASSWORD_ENV = "CONVSTORE_NEW_USER_PASSWORD"

app = typer.Typer(
    help="Accounts: create, list, show, disable, enable, delete, set-role.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Who = Annotated[str, typer.Argument(metavar="USER", help="The user's email or id.")]


@asynccontextmanager
async def _store(database_url: str | None) -> AsyncIterator[Store]:
    settings = common.settings_for(database_url)
    async with open_store(settings.database_url, settings=settings) as store:
        yield store


def _in_store(database_url: str | None, action: Callable[[Store], Awaitable[T]]) -> T:
    async def go() -> T:
        async with _store(database_url) as store:
            return await action(store)

    return common.run(go, database_url)


async def _find(store: Store, who: str) -> UserRead:
    async with store.reading() as conn:
        try:
            return await user_service.get(conn, uuid.UUID(who))
        except ValueError:
            return await user_service.get_by_email(conn, who)


def _line(account: UserRead) -> str:
    state = "active" if account.is_active else "disabled"
    return f"{account.id}  {account.email}  {account.role}  {state}"


def _show(account: UserRead) -> None:
    common.console.print(_line(account), markup=False, highlight=False)


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif (from_env := os.environ.get(PASSWORD_ENV)) is not None:
        password = from_env
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise common.fail(
            f"give the password at the prompt, in {PASSWORD_ENV} or with --password-stdin"
        )
    if not password:
        raise common.fail("the password is empty")
    return password


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The account's email.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    role: Annotated[str, typer.Option(help="user or admin.")] = "user",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    database_url: common.DatabaseUrl = None,
) -> None:
    """Create an account with a password (prompted, or from CONVSTORE_NEW_USER_PASSWORD)."""
    password = _new_password(password_stdin)

    async def go(store: Store) -> UserRead:
        # Store.users validates the input and hashes the password outside the transaction.
        return await store.users.create(email=email, password=password, name=name, role=role)

    _show(_in_store(database_url, go))


@app.command("list")
def list_users(
    limit: Annotated[int, typer.Option(min=1, max=MAX_PAGE_SIZE, help="Users per page.")] = 50,
    after: Annotated[
        str | None, typer.Option(help="Continue after this user id (the last one printed).")
    ] = None,
    email_prefix: Annotated[
        str | None, typer.Option("--email-prefix", help="Only emails starting with this.")
    ] = None,
    active: Annotated[
        bool | None,
        typer.Option("--active/--disabled", help="Only active, or only disabled, accounts."),
    ] = None,
    database_url: common.DatabaseUrl = None,
) -> None:
    """List the accounts, oldest first, one page at a time."""
    try:
        start = uuid.UUID(after) if after else None
    except ValueError:
        raise common.fail("--after is not a user id") from None

    async def go(store: Store) -> list[UserRead]:
        # Inside the command's run: a refused filter is one line naming it.
        filters = parse(UserFilter, {"email_prefix": email_prefix, "is_active": active})
        async with store.reading() as conn:
            return await user_service.list(conn, limit=limit + 1, after=start, filters=filters)

    page = _in_store(database_url, go)
    for account in page[:limit]:
        _show(account)
    if len(page) > limit:
        typer.echo(f"more: --after {page[limit - 1].id}", err=True)


@app.command("show")
def show(who: Who, database_url: common.DatabaseUrl = None) -> None:
    """Show one account."""
    account = _in_store(database_url, lambda store: _find(store, who))
    common.console.print(
        f"id: {account.id}\nemail: {account.email}\nname: {account.name or ''}\n"
        f"role: {account.role}\nactive: {'yes' if account.is_active else 'no'}\n"
        f"created: {account.created_at.isoformat(timespec='seconds')}",
        markup=False,
        highlight=False,
    )


def _set_active(who: str, active: bool, database_url: str | None) -> None:
    async def go(store: Store) -> UserRead:
        account = await _find(store, who)
        async with store.writing(account.id) as conn:
            return await user_service.set_active(conn, account.id, active)

    _show(_in_store(database_url, go))


@app.command("disable")
def disable(who: Who, database_url: common.DatabaseUrl = None) -> None:
    """Disable an account: its sessions end at their next request, sign-in is refused."""
    _set_active(who, False, database_url)


@app.command("enable")
def enable(who: Who, database_url: common.DatabaseUrl = None) -> None:
    """Enable a disabled account (its old sessions stay ended)."""
    _set_active(who, True, database_url)


@app.command("set-role")
def set_role(
    who: Who,
    role: Annotated[str, typer.Argument(metavar="ROLE", help="user or admin.")],
    database_url: common.DatabaseUrl = None,
) -> None:
    """Make an account a user or an admin."""

    async def go(store: Store) -> UserRead:
        account = await _find(store, who)
        # Any other word reaches the users' validation, which names the field and the roles.
        return await store.users.update(account.id, role=cast(UserRole, role))

    _show(_in_store(database_url, go))


@app.command("delete")
def delete(
    who: Who,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database_url: common.DatabaseUrl = None,
) -> None:
    """Delete an account and everything it owns (as DELETE /api/v1/auth/me does)."""
    account = _in_store(database_url, lambda store: _find(store, who))
    if not yes:
        if not sys.stdin.isatty():
            raise common.fail("deleting needs --yes when not at a terminal")
        typer.confirm(f"Delete {account.email} and everything it owns?", abort=True)

    async def go(store: Store) -> None:
        async with store.writing(account.id) as conn:
            await user_service.delete(conn, account.id)

    _in_store(database_url, go)
    common.console.print(f"deleted {account.email}", markup=False, highlight=False)
