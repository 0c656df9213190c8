"""Row-level security on every table with ``user_id`` (PostgreSQL; nothing to do on SQLite).

Each of them gets ENABLE and FORCE ROW LEVEL SECURITY and a ``tenant_isolation`` policy for
every command: a row is visible and writable only while ``user_id`` equals the transaction's
``convstore.user_id`` setting. The comparison fails closed: an unset or empty setting matches
no row. The two token tables also get ``token_lookup``, a read-only policy that opens the one
row whose ``token_hash`` equals ``convstore.token_hash`` (refresh and password reset find their
user from the token). ``users`` stays outside (see docs/schema.md, "Row-level security").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:12:03.514210
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "conversations",
    "messages",
    "tasks",
    "task_events",
    "refresh_tokens",
    "password_reset_tokens",
    "idempotency_keys",
)
TOKEN_TABLES = ("refresh_tokens", "password_reset_tokens")
TENANT = "user_id = NULLIF(current_setting('convstore.user_id', true), '')::uuid"
TOKEN = "token_hash = NULLIF(current_setting('convstore.token_hash', true), '')"


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} FOR ALL "
            f"USING ({TENANT}) WITH CHECK ({TENANT})"
        )
    for table in TOKEN_TABLES:
        op.execute(f"CREATE POLICY token_lookup ON {table} FOR SELECT USING ({TOKEN})")


def downgrade() -> None:
    if not _postgresql():
        return
    for table in TOKEN_TABLES:
        op.execute(f"DROP POLICY IF EXISTS token_lookup ON {table}")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
