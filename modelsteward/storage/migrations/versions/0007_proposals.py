"""one open proposal per switch, one open violation per (rule, use case, model)

``approvals.evidence``: what a pending proposal answers (the violation ids) and each update of it
(a new violation of the same cause updates the proposal instead of opening another).
``guardrail_violations.last_seen_at`` / ``cleared_at``: a violation stays one row while its
condition lasts (updated by each check that finds it) and is closed by the first check that does not.

Revision ID: 0007_proposals
Revises: 0006_usecase
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_proposals'
down_revision = '0006_usecase'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('approvals') as b:
        b.add_column(sa.Column('evidence', sa.JSON(), nullable=True))
    with op.batch_alter_table('guardrail_violations') as b:
        b.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))
        b.add_column(sa.Column('cleared_at', sa.DateTime(), nullable=True))
    op.create_index('ix_guardrail_violations_open', 'guardrail_violations', ['use_case_id', 'policy', 'cleared_at'])


def downgrade() -> None:
    op.drop_index('ix_guardrail_violations_open', table_name='guardrail_violations')
    with op.batch_alter_table('guardrail_violations') as b:
        b.drop_column('cleared_at')
        b.drop_column('last_seen_at')
    with op.batch_alter_table('approvals') as b:
        b.drop_column('evidence')
