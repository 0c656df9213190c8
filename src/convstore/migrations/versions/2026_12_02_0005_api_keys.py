"""API keys: per-user secrets with which programs sign in (only their SHA-256 is stored).

On PostgreSQL the table gets row-level security exactly as the other user-owned tables
(``tenant_isolation``), and ``token_lookup``: the one row whose ``key_hash`` equals
``convstore.token_hash`` can be read, which is how a presented key finds its user.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 20:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import convstore.kit.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT = "user_id = NULLIF(current_setting('convstore.user_id', true), '')::uuid"
KEY = "key_hash = NULLIF(current_setting('convstore.token_hash', true), '')"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", convstore.kit.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expires_at", convstore.kit.types.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("last_used_at", convstore.kit.types.DateTimeUTC(timezone=True), nullable=True),
        sa.CheckConstraint(
            "length(trim(name)) BETWEEN 1 AND 100", name=op.f("ck_api_keys_name_length")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_keys_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(
        op.f("ix_api_keys_user_id_created_at_id"),
        "api_keys",
        ["user_id", "created_at", "id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE api_keys FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON api_keys FOR ALL "
            f"USING ({TENANT}) WITH CHECK ({TENANT})"
        )
        op.execute(f"CREATE POLICY token_lookup ON api_keys FOR SELECT USING ({KEY})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS token_lookup ON api_keys")
        op.execute("DROP POLICY IF EXISTS tenant_isolation ON api_keys")
    op.drop_index(op.f("ix_api_keys_user_id_created_at_id"), table_name="api_keys")
    op.drop_table("api_keys")
