"""agent_runs.started_by: the person (or ``schedule``) who started an agent run

Revision ID: 0002_agent_run_starter
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_agent_run_starter'
down_revision = '0001_initial'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agent_runs') as batch:
        batch.add_column(sa.Column('started_by', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agent_runs') as batch:
        batch.drop_column('started_by')
