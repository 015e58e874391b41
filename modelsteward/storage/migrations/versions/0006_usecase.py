"""per-use-case model status and the model status event trail

Revision ID: 0006_usecase
Revises: 0005_control_loop
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_usecase'
down_revision = '0005_control_loop'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('model_use_case_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('use_case_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_model_use_case_status_model_id_models'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['use_case_id'], ['use_cases.id'],
                            name=op.f('fk_model_use_case_status_use_case_id_use_cases'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_use_case_status')),
    sa.UniqueConstraint('model_id', 'use_case_id', name='model_use_case')
    )
    op.create_table('model_status_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=300), nullable=False),
    sa.Column('use_case_id', sa.Integer(), nullable=True),
    sa.Column('use_case', sa.String(length=100), nullable=True),
    sa.Column('event', sa.String(length=40), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('global_status', sa.String(length=20), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_status_events'))
    )
    op.create_index('ix_model_status_events_model', 'model_status_events', ['model_id', 'id'])
    # a model live on a use case gets its status there from its role (primary > canary > shadow)
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT a.model_id, d.use_case_id, a.role FROM allocations a JOIN deployments d ON d.id = a.deployment_id"
    )).all()
    rank = {"primary": ("current", 0), "canary": ("canary", 1), "shadow": ("shadow", 2)}
    best: dict = {}
    for model_id, uc_id, role in rows:
        st, r = rank.get(role, ("shadow", 2))
        key = (model_id, uc_id)
        if key not in best or r < best[key][1]:
            best[key] = (st, r)
    now = sa.func.current_timestamp()
    table = sa.table('model_use_case_status', sa.column('model_id'), sa.column('use_case_id'),
                     sa.column('status'), sa.column('updated_at'))
    for (model_id, uc_id), (st, _) in best.items():
        bind.execute(table.insert().values(model_id=model_id, use_case_id=uc_id, status=st, updated_at=now))


def downgrade() -> None:
    op.drop_index('ix_model_status_events_model', table_name='model_status_events')
    op.drop_table('model_status_events')
    op.drop_table('model_use_case_status')
