"""approved hosts: where model calls may go besides the providers' configured endpoints (egress)

Revision ID: 0008_egress_hosts
Revises: 0007_proposals
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_egress_hosts'
down_revision = '0007_proposals'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approved_hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('origin', sa.String(length=300), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('approval_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approved_hosts')),
    sa.UniqueConstraint('origin', name=op.f('uq_approved_hosts_origin'))
    )


def downgrade() -> None:
    op.drop_table('approved_hosts')
