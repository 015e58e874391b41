"""agent decisions and the realised-gain ledger

Revision ID: 0003_decisions
Revises: 0002_agent_run_starter
Create Date: 2026-12-01 08:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_decisions'
down_revision = '0002_agent_run_starter'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_run_id', sa.Integer(), nullable=True),
    sa.Column('use_case_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('taken', sa.Boolean(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=True),
    sa.Column('rule', sa.String(length=100), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('numbers', sa.JSON(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('fingerprint', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['use_case_id'], ['use_cases.id'], name=op.f('fk_agent_decisions_use_case_id_use_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_decisions'))
    )
    with op.batch_alter_table('agent_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_decisions_agent_run_id'), ['agent_run_id'], unique=False)
    op.create_table('realised_gains',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('use_case_id', sa.Integer(), nullable=False),
    sa.Column('rollout_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('previous_model_id', sa.String(length=300), nullable=True),
    sa.Column('promoted_at', sa.DateTime(), nullable=False),
    sa.Column('window_hours', sa.Float(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('stated', sa.JSON(), nullable=False),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.Column('contradicts', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['use_case_id'], ['use_cases.id'], name=op.f('fk_realised_gains_use_case_id_use_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_realised_gains')),
    sa.UniqueConstraint('use_case_id', 'rollout_id', name='uc_rollout')
    )


def downgrade() -> None:
    op.drop_table('realised_gains')
    with op.batch_alter_table('agent_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_decisions_agent_run_id'))
    op.drop_table('agent_decisions')
