"""Clusters, jobs and attestations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("nodes", sa.Integer, nullable=False),
        sa.Column("gpus_per_node", sa.Integer, nullable=False),
        sa.Column("nvlink_domain", sa.Integer, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "name", name="uq_clusters_tenant_name"),
        sa.CheckConstraint("nodes >= 1", name="ck_clusters_nodes"),
        sa.CheckConstraint("gpus_per_node >= 1", name="ck_clusters_gpus_per_node"),
        sa.CheckConstraint("nvlink_domain IS NULL OR nvlink_domain >= 1", name="ck_clusters_nvlink_domain"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("job_id", sa.String(128), nullable=False),
        sa.Column("cluster_name", sa.String(128), nullable=True),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("fingerprint", sa.String(80), nullable=False),
        sa.Column("gpus", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant", "job_id", name="uq_jobs_tenant_job_id"),
        sa.CheckConstraint("state IN ('registered', 'running', 'finished', 'failed')", name="ck_jobs_state"),
        sa.CheckConstraint("gpus >= 1", name="ck_jobs_gpus"),
    )
    op.create_index("ix_jobs_tenant_cluster_state", "jobs", ["tenant", "cluster_name", "state", "gpus"])
    op.create_index("ix_jobs_tenant_state", "jobs", ["tenant", "state"])
    op.create_table(
        "attestations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_pk", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expected", sa.String(80), nullable=False),
        sa.Column("reported", sa.String(80), nullable=False),
        sa.Column("matched", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_attestations_job", "attestations", ["job_pk", "id"])


def downgrade() -> None:
    op.drop_table("attestations")
    op.drop_table("jobs")
    op.drop_table("clusters")
