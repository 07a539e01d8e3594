"""The one path of every outbound message: replies, agent messages, wait updates, messages the
gateway writes first (continue on another channel), and what the records queued (one-time
codes, updates; bot/delivery/outbox.py).

`Outbound` knows the senders of every channel that is on (web chat included: its sender emits to
the conversation's open browsers), picks the channel (where the customer last wrote; their
preferred channel, with consent, when we told them the answer comes there), and hands the
messages to the delivery queue (bot/delivery/queue.py: in order per address, retried, the
transcript row marked pending / sent / failed). The reply-window rule lives in the sender that
has one: WhatsApp outside its 24-hour window sends the configured template (channels/twilio.py)
or refuses with a final `DeliveryError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence

from bot.delivery.queue import FAILED, PENDING, Delivery, Result
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.transcript import Transcript
from bot.pipeline.types import BotMessage
from channels import registry

if TYPE_CHECKING:
    from bot.records.repository import Records

log = logging.getLogger(__name__)

WEBCHAT = "webchat"


class Unreachable(Exception):
    """No sender or no address for the customer on the channel."""


class NotDelivered(Exception):
    """The channel refused the message for good (within the wait)."""


class Outbound:
    def __init__(self, store: ConversationStore, records: "Records", transcript: Transcript,
                 delivery: Delivery, senders: dict[str, Any]) -> None:
        self.store = store
        self.records = records
        self.transcript = transcript
        self.delivery = delivery
        self.senders = senders  # channel name -> sender (channels.base.Sender); the same dict as delivery's

    def register(self, sender: Any) -> None:
        self.senders[sender.name] = sender

    def can_send(self, channel: str) -> bool:
        return channel in self.senders

    # -- to an address ----------------------------------------------------------------------------
    def submit(self, channel: str, address: str, batch: list[BotMessage], *, rows: Sequence[int | None] = (),
               proactive: bool = False, conversation: str | None = None, what: str = "reply",
               send: Callable[[list[BotMessage]], Awaitable[None]] | None = None) -> asyncio.Future:
        """Queue `batch` for (channel, address) behind what was queued there before (the order is
        fixed by this call); a future with the `Result`."""
        return self.delivery.submit(channel, address, batch, rows=rows, proactive=proactive,
                                    conversation=conversation, what=what, send=send)

    async def send(self, key: str | None, channel: str, address: str, batch: list[BotMessage],
                   rows: Sequence[int | None] = (), *, wait: bool = True, what: str = "message") -> Result:
        """Write first: the result when known within a few seconds, else "pending"."""
        if channel not in self.senders:
            return Result(FAILED, f"{channel} is not on")
        future = self.submit(channel, address, batch, rows=[r for r in rows if r is not None], proactive=True,
                             conversation=key, what=what)
        return await self.delivery.wait(future) if wait else Result(PENDING)

    # -- to a conversation ---------------------------------------------------------------------------
    async def answer_channel(self, key: str, channel: str) -> str:
        """Where a person's answer goes when the customer has left: from the web chat to their
        preferred channel when they consented to messages from us and we can reach them there;
        otherwise where they wrote."""
        if channel != WEBCHAT:
            return channel
        customer_id = await self.store.customer_id(key)
        customer = await self.records.customer(customer_id) if customer_id else None
        preferred = customer.preferred_channel if customer and customer.consent_proactive else None
        if preferred and preferred in self.senders and registry.address_of(customer, preferred):
            return preferred
        return channel

    async def to_conversation(self, key: str, text: str, sender: str, **who: Any) -> str:
        """A person's (or the gateway's) message to the customer, on the channel they last used;
        written to the transcript first. Returns the channel used. `Unreachable` when there is no
        way to reach them there; `NotDelivered` when it failed for good within a few seconds
        (still being retried: the transcript row says "pending" until it went out or failed)."""
        conv = await self.store.get(key)
        channel = conv.get("last_channel") or WEBCHAT
        message = BotMessage(text, agent_name=who.get("agent_name") or "")  # who wrote it, for the web chat
        if channel == WEBCHAT:
            if conv.get("away") == "1":  # we said the answer comes on their preferred channel
                target = await self.answer_channel(key, channel)
                if target != channel:
                    customer = await self.records.customer(int(conv["customer_id"]))
                    row = await self.transcript.log(key, sender, text, target, **who)
                    result = await self.send(key, target, registry.address_of(customer, target), [message], [row],
                                             what="agent message")
                    if result.status != FAILED:
                        self._emit(key, message)  # an open web chat sees it too
                        return target
            row = await self.transcript.log(key, sender, text, channel, **who)
            await self.send(key, WEBCHAT, key, [message], [row], what="agent message")
            return channel
        address = conv.get("last_address")
        if channel not in self.senders or not address:
            raise Unreachable(channel)
        row = await self.transcript.log(key, sender, text, channel, **who)
        result = await self.send(key, channel, address, [message], [row], what="agent message")
        if result.status == FAILED:
            raise NotDelivered(f"{channel}: {result.reason}")
        return channel

    async def resend(self, key: str, message: BotMessage, what: str = "wait message") -> None:
        """Deliver a message that is already in the transcript, where the customer last wrote."""
        conv = await self.store.get(key)
        channel = conv.get("last_channel") or WEBCHAT
        address = key if channel == WEBCHAT else conv.get("last_address")
        if channel in self.senders and address:
            await self.send(key, channel, address, [message], wait=False, what=what)

    def _emit(self, key: str, message: BotMessage) -> None:
        if WEBCHAT in self.senders:
            self.submit(WEBCHAT, key, [message], conversation=key, what="copy for the web chat")
