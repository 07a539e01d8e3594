"""surveys and feedback: CES, NPS and CSAT per survey, who served, anonymous answers

Revision ID: e4b8c1d2f6a9
Revises: d7a3f0c21b58
Create Date: 2026-12-02 14:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'e4b8c1d2f6a9'
down_revision: Union[str, Sequence[str], None] = 'd7a3f0c21b58'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('conversation', sa.String(length=40), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('queue', sa.String(length=32), nullable=True),
    sa.Column('topic', sa.String(length=40), nullable=True),
    sa.Column('served_by', sa.String(length=8), nullable=False),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.Column('trigger', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('asked_nps', sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.create_index('ix_surveys_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_surveys_conversation', ['conversation'], unique=False)
        batch_op.create_index('ix_surveys_customer_sent', ['customer_id', 'sent_at'], unique=False)
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.alter_column('customer_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('score', new_column_name='csat', existing_type=sa.Integer())
        batch_op.add_column(sa.Column('survey_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('ces', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('nps', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('queue', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('topic', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('served_by', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('agent', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('anonymous', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('week', sa.String(length=8), nullable=True))
        batch_op.create_foreign_key('fk_feedback_survey', 'surveys', ['survey_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_feedback_survey_id', ['survey_id'], unique=False)
        batch_op.create_index('ix_feedback_week', ['week'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_week')
        batch_op.drop_index('ix_feedback_survey_id')
        batch_op.drop_constraint('fk_feedback_survey', type_='foreignkey')
        for column in ('week', 'anonymous', 'agent', 'served_by', 'topic', 'queue', 'channel', 'nps', 'ces', 'survey_id'):
            batch_op.drop_column(column)
        batch_op.alter_column('csat', new_column_name='score', existing_type=sa.Integer())
    op.execute("DELETE FROM feedback WHERE customer_id IS NULL")
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.alter_column('customer_id', existing_type=sa.Integer(), nullable=False)
    op.drop_table('surveys')
