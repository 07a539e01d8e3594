"""Alembic environment: migrates DATABASE_URL (or the URL given by bot.records.migrate)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bot.shared.db import create_engine, database_url
from bot.records.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return database_url(config.attributes.get("database_url") or None)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"}, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
