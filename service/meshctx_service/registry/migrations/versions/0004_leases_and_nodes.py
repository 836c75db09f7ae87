"""Leases (a job not heard from in time is lost) and the nodes active jobs hold.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATES_BEFORE = "state IN ('registered', 'running', 'finished', 'failed')"
_STATES = "state IN ('registered', 'running', 'finished', 'failed', 'lost')"


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("lease_due", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("nodes", sa.JSON, nullable=True))
        batch.add_column(sa.Column("lease_seconds", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_constraint("ck_jobs_state", type_="check")
        batch.create_check_constraint("ck_jobs_state", _STATES)
    op.create_index("ix_jobs_lease", "jobs", ["tenant", "cluster_name", "lease_expires_at"])
    op.create_table(
        "job_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("cluster_name", sa.String(128), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("job_pk", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.UniqueConstraint("tenant", "cluster_name", "host", name="uq_job_nodes_host"),
    )
    op.create_index("ix_job_nodes_job", "job_nodes", ["job_pk"])


def downgrade() -> None:
    op.drop_table("job_nodes")
    op.drop_index("ix_jobs_lease", "jobs")
    op.execute("UPDATE jobs SET state = 'failed' WHERE state = 'lost'")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_state", type_="check")
        batch.create_check_constraint("ck_jobs_state", _STATES_BEFORE)
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_seconds")
        batch.drop_column("nodes")
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("lease_due")
