"""Starts the Rasa action server (rasa_sdk) behind a shared secret, bound to 127.0.0.1.

`python -m bot.launch.action_server --actions actions -p 5055` is `rasa run actions` with one
difference: every request but `GET /health` must carry `Authorization: Bearer <secret>`, the
secret being ACTION_SERVER_TOKEN (from the environment only, never on a command line). Rasa
sends it: endpoints.yml gives the action endpoint that header (`${ACTION_SERVER_TOKEN}`).
Without it, or with another value, the answer is 401 and no action runs: anyone else on the
machine could otherwise read invoices or grant refunds with a hand-made POST to /webhook.
"""

from __future__ import annotations

import hmac
import logging
import os

from sanic import Sanic, response
from sanic.request import Request

log = logging.getLogger(__name__)

TOKEN_ENV = "ACTION_SERVER_TOKEN"
OPEN_PATHS = frozenset({"/health"})  # the launcher's readiness check; says nothing else


def authorised(header: str | None, token: str) -> bool:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((header or "").encode("utf-8", "replace"), expected)


def protect(app: Sanic, token: str) -> Sanic:
    """Refuse (401) every request without the shared secret, before any handler runs."""
    if not token:
        raise ValueError("an empty action server token would let everybody in")

    @app.middleware("request")
    async def require_token(request: Request):
        if request.path in OPEN_PATHS and request.method in ("GET", "HEAD"):
            return None
        if authorised(request.headers.get("Authorization"), token):
            return None
        log.warning("action server: refused %s %s without the shared secret", request.method, request.path)
        return response.json({"error": "unauthorised"}, status=401, headers={"WWW-Authenticate": "Bearer"})

    return app


def create_app(actions: str, token: str) -> Sanic:
    from rasa_sdk.endpoint import create_app as sdk_app

    # no CORS: browsers have no business here
    return protect(sdk_app(actions, cors_origins=""), token)


def main(argv: list[str] | None = None) -> None:
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.endpoint import create_argument_parser
    from rasa_sdk.plugin import plugin_manager

    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"{TOKEN_ENV} is not set: the action server must not run without its secret")
    args = create_argument_parser().parse_args(argv)
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file, args.loglevel,
                                 args.logging_config_file)
    utils.update_sanic_log_level()
    app = create_app(args.actions, token)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    host = "127.0.0.1"
    log.info("action server on http://%s:%s (shared secret required)", host, args.port)
    app.run(host, args.port, workers=utils.number_of_sanic_workers())


if __name__ == "__main__":
    main()
