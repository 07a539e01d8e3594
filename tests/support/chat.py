"""A web chat visitor, and identifying in the chat as the real customer would.

The gateway acknowledges each `user_uttered` with the message id it stored it under, and after
the last reply of that message's turn emits `turn_done {message_id}` to the session's sockets
(channels/webchat.py). `ChatClient.say` waits for exactly that, never a fixed time.

A `bot_uttered` is kept as our own widget reads it: its text with plain line breaks (the gateway
sends hard Markdown breaks, "  \n", for rasa-webchat; the text as sent stays in `wire_text`);
the copies of notices (`metadata.notice`, for rasa-webchat) go to `notices`, not to the turn's
replies (the notice itself arrives as `error_message`: `error()`); messages replayed after a
reconnect (`metadata.replayed`) go to `replayed`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import socketio

from tests.support.stack import stack_sql
from tests.support.wait import until

CODE_PROMPT = {"nl": "Om je gegevens te beschermen bevestig je eerst met een code",
               "en": "To protect your details, please confirm with a code first"}


class ChatClient:
    """A web chat visitor: a socket.io client speaking the rasa-webchat protocol."""

    def __init__(self, url: str, session_id: str | None = None, language: str | None = None,
                 custom: dict | None = None):
        self.url = url
        self.session_id = session_id
        self.language = language
        self.custom = custom or {}
        self.sio = socketio.AsyncClient(reconnection=False)
        # what arrived, in order: ("bot", bot_uttered payload) and ("done", message id of a turn)
        self.events: asyncio.Queue = asyncio.Queue()
        self.errors: asyncio.Queue = asyncio.Queue()
        self.history: asyncio.Queue = asyncio.Queue()
        self._confirmed: asyncio.Queue = asyncio.Queue()
        self.notices: asyncio.Queue = asyncio.Queue()
        self.replayed: asyncio.Queue = asyncio.Queue()
        self.typing: list[dict] = []      # the typing_on payloads, in order
        self.timeline: list[str] = []     # the names of bot_uttered, typing_on/off and turn_done, in order
        self.sio.on("bot_uttered", self._bot)
        self.sio.on("typing_on", lambda data: (self.typing.append(data), self.timeline.append("typing_on")))
        self.sio.on("typing_off", lambda data: self.timeline.append("typing_off"))
        self.sio.on("turn_done", self._done)
        self.sio.on("error_message", lambda data: self.errors.put_nowait(data))
        self.sio.on("history", lambda data: self.history.put_nowait(data))
        self.sio.on("session_confirm", lambda data: self._confirmed.put_nowait(data))

    def _done(self, data: Any) -> None:
        self.timeline.append("turn_done")
        self.events.put_nowait(("done", data.get("message_id") if isinstance(data, dict) else None))

    def _bot(self, data: Any) -> None:
        self.timeline.append("bot_uttered")
        meta = data.get("metadata") if isinstance(data, dict) and isinstance(data.get("metadata"), dict) else {}
        if isinstance(data, dict) and isinstance(data.get("text"), str):
            data = {**data, "text": data["text"].replace("  \n", "\n"), "wire_text": data["text"]}
        if meta.get("notice"):
            self.notices.put_nowait(data)
        elif meta.get("replayed"):
            self.replayed.put_nowait(data)
        else:
            self.events.put_nowait(("bot", data))

    async def connect(self) -> "ChatClient":
        await self.sio.connect(self.url, transports=["websocket"], wait_timeout=10)
        await self.sio.emit("session_request", {"session_id": self.session_id})
        confirmed = await asyncio.wait_for(self._confirmed.get(), 10)
        self.session_id = confirmed["session_id"] if isinstance(confirmed, dict) else confirmed
        return self

    async def emit(self, data: Any) -> str | None:
        """Send a `user_uttered` with this payload; the id the gateway stored it under (None when
        it stored nothing: a malformed payload, or storing failed)."""
        ack = await self.sio.call("user_uttered", data, timeout=15)
        return ack.get("message_id") if isinstance(ack, dict) else None

    async def send(self, text: Any) -> str | None:
        """Send a message as the widget does; its message id (see `emit`)."""
        custom = {**({"language": self.language} if self.language else {}), **self.custom}
        return await self.emit({"message": text, "session_id": self.session_id, "customData": custom})

    async def say(self, text: Any, timeout: float = 30) -> list[dict]:
        """Send a message; return the bot's messages of its turn (all of them: the gateway said
        the turn is done)."""
        message_id = await self.send(text)
        assert message_id, "the gateway did not store the message"
        return await self.turn(message_id, timeout)

    async def turn(self, message_id: str, timeout: float = 30) -> list[dict]:
        """The bot's messages that arrived until the turn of `message_id` was done (possibly none)."""
        assert message_id, "no message id: the gateway stored nothing, so no turn ends"
        out: list[dict] = []
        async with asyncio.timeout(timeout):
            while True:
                kind, data = await self.events.get()
                if kind == "bot":
                    out.append(data)
                elif data == message_id:
                    return out

    async def replies(self, timeout: float = 30, settle: float = 0.6) -> list[dict]:
        """Messages that answer no message sent with `say`/`send` (a person's from the desk, or a
        turn of a raw `sio.emit`): the first within `timeout`, then more until a turn is done or
        none came for `settle` s (a person's messages have no end-of-turn signal)."""
        out: list[dict] = []
        async with asyncio.timeout(timeout):
            while not out:
                kind, data = await self.events.get()
                if kind == "bot":
                    out.append(data)
        while True:
            try:
                kind, data = await asyncio.wait_for(self.events.get(), settle)
            except asyncio.TimeoutError:
                return out
            if kind == "done":
                return out
            out.append(data)

    def received_now(self) -> list[dict]:
        """The bot's messages that arrived and were not read yet (end-of-turn signals dropped)."""
        out = []
        while not self.events.empty():
            kind, data = self.events.get_nowait()
            if kind == "bot":
                out.append(data)
        return out

    async def error(self, timeout: float = 10) -> dict:
        return await asyncio.wait_for(self.errors.get(), timeout)

    async def close(self) -> None:
        await self.sio.disconnect()


def texts(messages: list[dict]) -> str:
    return "\n".join(m.get("text", "") for m in messages)


def _codes(stack, customer_number: str) -> list[tuple[int, str]]:
    rows = stack_sql(stack, "select o.id, o.body from outbox o join customers c on c.id = o.customer_id "
                            "where c.customer_number = ? and o.kind = 'one_time_code' order by o.id", customer_number)
    return [(row_id, re.search(r"\b(\d{4})\b", body).group(1)) for row_id, body in rows]


def latest_code(stack, customer_number: str) -> str | None:
    """The last one-time code the shop sent this customer (what arrives on their phone)."""
    codes = _codes(stack, customer_number)
    return codes[-1][1] if codes else None


async def verify_in_chat(c: ChatClient, stack, claim: str, customer_number: str, lang: str = "nl") -> list[dict]:
    """Identify in the chat as the real customer would: say who you are, get the one-time code on
    the phone (the records' outbox), type it back. Returns the bot's answer to the code."""
    sent_before = len(_codes(stack, customer_number))
    asked = texts(await c.say(claim))
    assert CODE_PROMPT[lang] in asked, asked
    codes = _codes(stack, customer_number)
    assert len(codes) == sent_before + 1, "exactly one new code was sent"

    # wait until the outbox delivered it (SMS/WhatsApp reach the fake Twilio), so a test counting
    # the customer's phone messages afterwards does not count the code as a reply
    def delivered() -> bool:
        [(sent, channel)] = stack_sql(stack, "select sent_at, channel from outbox where id = ?", codes[-1][0])
        return bool(sent) or channel not in ("sms", "whatsapp", "telegram", "email")

    await until(delivered, timeout=10, interval=0.1, what="the code's delivery")
    return await c.say(codes[-1][1])


async def conversation_of(stack, session_id: str) -> str:
    """The conversation a web chat session belongs to (the gateway's identity key in Redis)."""
    from redis.asyncio import Redis

    redis = Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        return await redis.get(f"{stack.key_prefix}:identity:webchat:{session_id}")
    finally:
        await redis.close(close_connection_pool=True)
