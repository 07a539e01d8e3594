"""The Rasa input channel the gateway talks to: Rasa's REST channel behind a bearer token.

Loaded by Rasa itself (credentials.yml names it), never by the gateway.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request


class GatewayInput(RestInput):
    @classmethod
    def name(cls) -> Text:
        return "gateway"

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("RASA_TOKEN must be set for the gateway channel")
        self.token = token

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GatewayInput":
        return cls(os.environ.get("RASA_TOKEN", ""))

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        bp = super().blueprint(on_new_message)

        @bp.on_request
        async def require_token(request: Request):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given, f"Bearer {self.token}"):
                return response.json({"error": "unauthorized"}, status=401)
            return None

        return bp
