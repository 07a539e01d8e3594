"""Every channel the system knows, in one list (`ADAPTERS`), and what others may ask about one.

The gateway (bot/gateway/app.py) loops over `ADAPTERS` to add their routes, start the enabled
ones and collect their senders. The pipeline, the action server and the records ask here which
channels there are, whether a channel's address proves who writes, whether its buttons are
numbered, how it is called in Dutch and English and where a customer is reached on it.

A new channel: its file in channels/ (a `ChannelAdapter`, channels/base.py), and one line below.
"""

from __future__ import annotations

from typing import Any

from channels.base import Channel, ChannelAdapter
from channels.email import EmailAdapter
from channels.telegram import TelegramAdapter
from channels.twilio import TwilioAdapter
from channels.webchat import WebChatAdapter

ADAPTERS: tuple[type[ChannelAdapter], ...] = (
    WebChatAdapter,
    TwilioAdapter,     # sms, whatsapp
    TelegramAdapter,
    EmailAdapter,
)

_CHANNELS: dict[str, Channel] = {c.name: c for adapter in ADAPTERS for c in adapter.channels}


def channels() -> tuple[Channel, ...]:
    return tuple(_CHANNELS.values())


def names() -> tuple[str, ...]:
    return tuple(_CHANNELS)


def channel(name: str | None) -> Channel | None:
    return _CHANNELS.get(name) if isinstance(name, str) else None


def identifies_sender(name: str | None) -> bool:
    """The channel's address proves who writes (a phone number, a Telegram account)."""
    found = channel(name)
    return bool(found and found.capabilities.identifies_sender)


def numbered_buttons(name: str | None) -> bool:
    """Buttons are a numbered list on this channel, and "2" picks the second."""
    found = channel(name)
    return bool(found and found.capabilities.numbered_buttons)


def identifying() -> tuple[str, ...]:
    return tuple(c.name for c in _CHANNELS.values() if c.capabilities.identifies_sender)


def address_of(customer: Any, name: str) -> str | None:
    """Where to reach `customer` on channel `name`; None when the channel cannot or is unknown."""
    found = channel(name)
    return found.address_of(customer) if found else None


def label(name: str, lang: str) -> str:
    """The channel's name as a customer or agent reads it; `name` itself when unknown."""
    found = channel(name)
    return found.label(lang) if found else name


def display_names() -> dict[str, dict[str, str]]:
    """{channel: {"nl": ..., "en": ...}} (for bot/texts/fmt.py `label`)."""
    return {c.name: dict(c.display) for c in _CHANNELS.values()}


def identified_by(field: str) -> tuple[str, ...]:
    """The channels on which the customer record's `field` identifies them ("phone": sms, whatsapp)."""
    return tuple(c.name for c in _CHANNELS.values() if c.identified_by == field)


def identity_fields() -> dict[str, str]:
    """{channel: the record field that identifies the customer on it}, for the channels that have one."""
    return {c.name: c.identified_by for c in _CHANNELS.values() if c.identified_by}
