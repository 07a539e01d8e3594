"""E-mail over SMTP (aiosmtplib): one-time codes and proactive messages.

Outbound only. A customer whose records hold an e-mail address and no phone number gets their
identification code here (actions/topics.py `otp_target` chooses the channel, the records'
outbox carries it, bot/delivery/outbox.py hands it to this sender), and so does any proactive
message or answer the gateway sends on "email". Each send is one message: a subject and a plain
text body in the customer's language (the language the text is written in; else the one in
their records; else Dutch), with a line saying that replies are not read.

Inbound e-mail is out of scope: nothing reads a mailbox, so a From: header (which proves nothing
about who wrote) never reaches a conversation. An e-mail address identifies nobody here
(`identifies_sender=False`): typing it in the chat is only a claim.

Settings (bot/shared/settings.py; off without SMTP_HOST and SMTP_FROM): SMTP_HOST, SMTP_PORT
(587, or 465 with SMTP_TLS=1), SMTP_USER and SMTP_PASSWORD (both or neither), SMTP_FROM,
SMTP_STARTTLS (1: the server must offer STARTTLS; 0 only for a relay on this machine), SMTP_TLS
(TLS from the first byte) and SMTP_TIMEOUT (seconds for each step; the whole send is bounded by
four times that). A refusal with a 5xx code (an unknown mailbox, a rejected login) is final;
a connection error, a timeout or a 4xx is tried again later by the caller.

E-mail addresses and texts are personal data: they never go into the logs.
"""

from __future__ import annotations

import asyncio
import logging
import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING, Awaitable, Callable

import aiosmtplib

from bot.shared import language
from bot.texts import messages
from bot.shared.settings import Settings
from channels.base import Capabilities, Channel, ChannelAdapter, ChannelContext, DeliveryError

if TYPE_CHECKING:
    from bot.pipeline.types import BotMessage

log = logging.getLogger(__name__)

CHANNEL = "email"
MAX_LENGTH = 20_000   # characters of one body: a customer message, not a newsletter
# one address, no spaces or control characters (no header can be smuggled in), a dot in the domain
_ADDRESS = re.compile(r"[^@\s\x00-\x1f\x7f<>,;]{1,64}@[^@\s\x00-\x1f\x7f<>,;]{1,189}\.[^@\s\x00-\x1f\x7f<>,;.]{2,63}")

LanguageOf = Callable[[str], Awaitable["str | None"]]


def text(key: str, lang: str) -> str:
    """What an e-mail says around the message (bot/texts/messages.py, keys email_*)."""
    return messages.text(f"email_{key}", "en" if lang == language.ENGLISH else "nl")


def is_address(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 254 and bool(_ADDRESS.fullmatch(value))


def render(messages: list[BotMessage], limit: int = MAX_LENGTH) -> str:
    """Bot messages as one plain text; buttons as a list (nobody answers them by e-mail)."""
    parts = []
    for message in messages:
        lines = [message.text] if message.text else []
        lines += [f"- {b.title}" for b in message.buttons]
        if message.image:
            lines.append(message.image)
        if lines:
            parts.append("\n".join(lines))
    body = "\n\n".join(parts)
    return body if len(body) <= limit else body[: limit - 1].rstrip() + "…"


class EmailSender:
    """Sends bot messages as e-mail over SMTP; every failure is a DeliveryError."""

    name = CHANNEL

    def __init__(self, settings: Settings, language_of: LanguageOf | None = None) -> None:
        self.settings = settings
        self.language_of = language_of  # the customer's language in the records, by address
        domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2]
        self._domain = domain or "localhost"  # Message-ID: never asks DNS for this host's name

    async def _language(self, address: str, body: str) -> str:
        """The language the text is written in when that is clear (the subject and the footer
        match the body); else the customer's in the records; else Dutch."""
        written = language.detect(body)
        if written:
            return written
        if self.language_of is not None:
            try:
                recorded = await self.language_of(address)
            except Exception as exc:  # the records are down: the message still goes out
                log.warning("email: the customer's language is unknown: %s", type(exc).__name__)
                recorded = None
            if recorded in language.SUPPORTED:
                return recorded
        return language.DEFAULT_LANGUAGE

    def compose(self, address: str, body: str, lang: str) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = text("subject", lang)
        message["From"] = self.settings.smtp_from
        message["To"] = address
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
        message.set_content(f"{body}\n\n-- \n{text('footer', lang)}\n")
        message["Content-Language"] = lang  # after set_content, which drops the Content-* headers
        return message

    async def send(self, address: str, messages: list[BotMessage], *, proactive: bool = False) -> None:
        if not is_address(address):
            raise DeliveryError("email: the address is not an e-mail address", final=True)
        body = render(messages)
        if not body:
            return
        message = self.compose(address, body, await self._language(address, body))
        s = self.settings
        timeout = s.smtp_timeout
        try:
            await asyncio.wait_for(aiosmtplib.send(
                message, hostname=s.smtp_host, port=s.smtp_port,
                username=s.smtp_user or None, password=s.smtp_password or None,
                use_tls=s.smtp_tls, start_tls=False if s.smtp_tls else s.smtp_starttls,
                timeout=timeout,
            ), timeout * 4)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            log.warning("email refused for the recipient: %s", codes)
            raise DeliveryError(f"email: recipient refused {codes}", final=all(c >= 500 for c in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:  # sender refused, login failed, data refused
            log.warning("email refused by the SMTP server: %s %s", exc.code, type(exc).__name__)
            raise DeliveryError(f"email: SMTP {exc.code} ({type(exc).__name__})", final=exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
            log.warning("email not sent: %s", type(exc).__name__)
            raise DeliveryError(f"email: {type(exc).__name__}") from exc

    async def close(self) -> None:
        """Nothing stays open: every send has its own connection."""


# -- the adapter (channels/registry.py) -----------------------------------------------------------

EMAIL = Channel(
    CHANNEL, {"nl": "e-mail", "en": "email"},
    Capabilities(identifies_sender=False, max_length=MAX_LENGTH),
    address_field="email",
)


class EmailAdapter(ChannelAdapter):
    """E-mail, outbound only (no routes)."""

    channels = (EMAIL,)
    needs = "SMTP_HOST, SMTP_FROM"

    def __init__(self, sender: EmailSender) -> None:
        self.sender = sender

    @classmethod
    def enabled(cls, settings: Settings) -> bool:
        return settings.email_enabled

    @classmethod
    async def start(cls, context: ChannelContext) -> "EmailAdapter":
        records = context.records

        async def language_of(address: str) -> str | None:
            customer = await records.by_email(address)
            return customer.language if customer else None

        return cls(EmailSender(context.settings, language_of))

    def senders(self) -> dict[str, EmailSender]:
        return {CHANNEL: self.sender}
