"""CDS Hooks replay cache in the service database: every worker process sees every used `jti`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cds_jti",
        sa.Column("issuer", sa.String(512), primary_key=True),
        sa.Column("jti", sa.String(512), primary_key=True),
        sa.Column("forget_after", sa.Float(), nullable=False),
    )
    op.create_index("ix_cds_jti_forget_after", "cds_jti", ["forget_after"])


def downgrade() -> None:
    op.drop_index("ix_cds_jti_forget_after", table_name="cds_jti")
    op.drop_table("cds_jti")
