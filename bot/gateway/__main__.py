"""`python -m bot.gateway`: the gateway on HOST:PORT (bot/gateway/app.py builds it)."""

import logging

from aiohttp import web

from bot.gateway.app import SHUTDOWN_TIMEOUT, create_app
from bot.shared.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None,
                shutdown_timeout=SHUTDOWN_TIMEOUT)


if __name__ == "__main__":
    main()
