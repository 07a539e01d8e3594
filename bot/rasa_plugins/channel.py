"""The Rasa input channel the gateway talks to: Rasa's REST channel behind a bearer token.

Loaded by Rasa itself (credentials.yml names it), never by the gateway.

The gateway sends `{"sender", "message", "metadata", "message_id"}`; the message id (the
channel's own id, e.g. "whatsapp:SM...") goes into Rasa's `UserMessage`, so the user event in
the tracker carries it and the gateway can see whether a turn already reached Rasa before it
tries again (bot/pipeline/rasa_client.py `RasaClient.replies_for`). Message texts never go into a log.
"""

from __future__ import annotations

import hmac
import logging
import os
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

log = logging.getLogger(__name__)


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
        bp = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @bp.on_request
        async def require_token(request: Request):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given, f"Bearer {self.token}"):
                return response.json({"error": "unauthorized"}, status=401)
            return None

        @bp.route("/", methods=["GET"])
        async def health(request: Request):
            return response.json({"status": "ok"})

        @bp.route("/webhook", methods=["POST"])
        async def receive(request: Request):
            body = request.json if isinstance(request.json, dict) else {}
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            message_id = body.get("message_id")
            message_id = str(message_id)[:120] if message_id else None
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(
                    text, collector, sender_id, input_channel=self._extract_input_channel(request),
                    message_id=message_id, metadata=self.get_metadata(request),
                ))
            except CancelledError:
                log.error("gateway channel: turn of %s cancelled (message %s)", sender_id, message_id)
            except Exception as exc:
                log.error("gateway channel: turn of %s failed (message %s): %s", sender_id, message_id,
                          type(exc).__name__)
            return response.json(collector.messages)

        return bp
