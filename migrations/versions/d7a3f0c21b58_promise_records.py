"""promise records: every timed statement (tickets, callbacks, agents), who owes it, on which
channel, renewals and the desk's flag

Revision ID: d7a3f0c21b58
Revises: 5b1e2c7d9a40
Create Date: 2026-12-02 03:10:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'd7a3f0c21b58'
down_revision: Union[str, Sequence[str], None] = '5b1e2c7d9a40'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.alter_column('conversation', existing_type=sa.String(length=40), nullable=True)
        batch_op.add_column(sa.Column('ticket_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('language', sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column('queue', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('owed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('renewed_from', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('renewals', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('window_start', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_promises_ticket', 'tickets', ['ticket_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key('fk_promises_renewed_from', 'promises', ['renewed_from'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index('ix_promises_status_deadline', ['status', 'deadline'], unique=False)
        batch_op.create_index('ix_promises_ticket_id', ['ticket_id'], unique=False)
    op.create_table('proactive_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('ref', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'ref', name='uq_proactive_kind_ref')
    )
    with op.batch_alter_table('proactive_messages', schema=None) as batch_op:
        batch_op.create_index('ix_proactive_messages_customer_id', ['customer_id'], unique=False)
    # a replaced wait was told to the customer before its deadline: renewed, in the new vocabulary
    op.execute("UPDATE promises SET status = 'renewed' WHERE status = 'superseded'")


def downgrade() -> None:
    op.drop_table('proactive_messages')
    op.execute("UPDATE promises SET status = 'superseded' WHERE status = 'renewed'")
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.drop_index('ix_promises_ticket_id')
        batch_op.drop_index('ix_promises_status_deadline')
        batch_op.drop_constraint('fk_promises_renewed_from', type_='foreignkey')
        batch_op.drop_constraint('fk_promises_ticket', type_='foreignkey')
        for column in ('reminded_at', 'window_start', 'answered_at', 'flagged_at', 'reason', 'renewals', 'renewed_from', 'owed_by', 'queue',
                       'language', 'channel', 'ticket_id'):
            batch_op.drop_column(column)
        batch_op.alter_column('conversation', existing_type=sa.String(length=40), nullable=False)
