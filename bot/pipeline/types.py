"""The messages that travel between channel adapters and the conversation pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Button:
    title: str
    payload: str


@dataclass
class BotMessage:
    text: str = ""
    buttons: list[Button] = field(default_factory=list)
    image: str | None = None
    is_error: bool = False
    agent_name: str = ""  # a person's message: who wrote it (channels may show it; the web chat does)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text}
        if self.buttons:
            data["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.image:
            data["image"] = self.image
        return data


@dataclass
class Inbound:
    channel: str          # webchat, sms, whatsapp, telegram
    address: str          # session id, E.164 phone number, Telegram user id
    text: Any
    language_hint: str | None = None
    message_id: str | None = None      # the channel's id: retries with the same id are ignored
    media: list[str] = field(default_factory=list)  # URLs of images, voice notes, ...
    contact_phone: str | None = None   # a phone number the sender proved is theirs (Telegram contact)
    link_code: str | None = None       # a one-time link code (Telegram `/start <code>`)
    client: str | None = None          # where it came from (a web visitor's IP address), for rate limits
    shown: str | None = None           # what the customer saw themselves send when `text` is a button's
                                       # payload: its title, for the transcript (the payload goes to Rasa)


@dataclass
class Outcome:
    conversation: str
    language: str
    replies: list[BotMessage]
    duplicate: bool = False
    topic_done: bool = False  # the action server answered a question about the customer's case
