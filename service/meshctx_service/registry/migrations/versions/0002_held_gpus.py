"""Clusters count their active jobs and the GPUs those hold (admission reads one row, not every job).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ACTIVE_ON_CLUSTER = (
    "FROM jobs WHERE jobs.tenant = clusters.tenant AND jobs.cluster_name = clusters.name "
    "AND jobs.state IN ('registered', 'running')"
)


def upgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(sa.Column("active_jobs", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("held_gpus", sa.Integer, nullable=False, server_default="0"))
    # Backfill from the jobs already stored; from here on every write keeps both counts.
    op.execute(
        f"UPDATE clusters SET active_jobs = (SELECT COUNT(*) {_ACTIVE_ON_CLUSTER}), "
        f"held_gpus = (SELECT COALESCE(SUM(jobs.gpus), 0) {_ACTIVE_ON_CLUSTER})"
    )


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("held_gpus")
        batch.drop_column("active_jobs")
