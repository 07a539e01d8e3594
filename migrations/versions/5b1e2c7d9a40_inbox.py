"""inbox: inbound messages stored before the webhook is answered

Revision ID: 5b1e2c7d9a40
Revises: c384c7efdf14
Create Date: 2026-12-01 12:50:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = '5b1e2c7d9a40'
down_revision: Union[str, Sequence[str], None] = 'c384c7efdf14'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('message_id', sa.String(length=80), nullable=False),
    sa.Column('address', sa.String(length=80), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('received_at', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=40), nullable=True),
    sa.Column('lease_until', sa.Float(), nullable=True),
    sa.Column('interim_at', sa.Float(), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('done_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel', 'message_id', name='uq_inbox_channel_message')
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_stream', ['channel', 'address', 'status'], unique=False)
        batch_op.create_index('ix_inbox_status_lease', ['status', 'lease_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_status_lease')
        batch_op.drop_index('ix_inbox_stream')
    op.drop_table('inbox')
