"""Apply the schema migrations (alembic) to DATABASE_URL or a given URL."""

from __future__ import annotations

import sys

from alembic import command
from alembic.config import Config

from bot.shared.settings import PROJECT_ROOT


def upgrade(url: str | None = None) -> None:
    """Bring the database to the newest schema. Call from sync code (alembic runs its own loop)."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url:
        cfg.attributes["database_url"] = url
    command.upgrade(cfg, "head")


if __name__ == "__main__":
    upgrade(sys.argv[1] if len(sys.argv) > 1 else None)
