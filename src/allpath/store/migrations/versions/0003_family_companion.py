"""Family companion: care-team contacts and call settings, symptom diary, maintenance doses,
calendar and its secret links, account language.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_AT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "care_contacts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.Column("day_phone", sa.String(40), nullable=False),
        sa.Column("after_hours_phone", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
    )
    op.create_index("ix_care_contacts_patient_id", "care_contacts", ["patient_id"])
    op.create_table(
        "call_settings",
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), primary_key=True),
        sa.Column("fever_celsius", sa.Float(), nullable=False),
        sa.Column("extra_items", sa.JSON(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
    )
    op.create_table(
        "diary_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("grades", sa.JSON(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("threshold_c", sa.Float(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
        sa.Column("seen_at", _AT, nullable=True),
        sa.Column("seen_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_diary_patient_at", "diary_entries", ["patient_id", "at"])
    op.create_table(
        "prescriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("medicine", sa.String(32), nullable=False),
        sa.Column("dose_mg", sa.Float(), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("anc_per_ul", sa.Integer(), nullable=False),
        sa.Column("platelets_per_ul", sa.Integer(), nullable=False),
        sa.Column("counts_date", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
    )
    op.create_index("ix_prescriptions_patient_id", "prescriptions", ["patient_id"])
    op.create_table(
        "doses",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("medicine", sa.String(32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("taken", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
        sa.UniqueConstraint("patient_id", "medicine", "day", name="uq_doses_patient_medicine_day"),
    )
    op.create_index("ix_doses_patient_id", "doses", ["patient_id"])
    op.create_table(
        "calendar_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(64), nullable=False, unique=True),
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("starts_at", _AT, nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
    )
    op.create_index("ix_calendar_events_patient_id", "calendar_events", ["patient_id"])
    op.create_table(
        "calendar_links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(32), sa.ForeignKey("patients.id"), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_calendar_links_patient_id", "calendar_links", ["patient_id"])
    op.create_table(
        "user_languages",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("language", sa.String(8), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_languages")
    op.drop_index("ix_calendar_links_patient_id", table_name="calendar_links")
    op.drop_table("calendar_links")
    op.drop_index("ix_calendar_events_patient_id", table_name="calendar_events")
    op.drop_table("calendar_events")
    op.drop_index("ix_doses_patient_id", table_name="doses")
    op.drop_table("doses")
    op.drop_index("ix_prescriptions_patient_id", table_name="prescriptions")
    op.drop_table("prescriptions")
    op.drop_index("ix_diary_patient_at", table_name="diary_entries")
    op.drop_table("diary_entries")
    op.drop_table("call_settings")
    op.drop_index("ix_care_contacts_patient_id", table_name="care_contacts")
    op.drop_table("care_contacts")
