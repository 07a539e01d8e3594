"""Who a conversation belongs to: provisional until the address or a proof says whose it is.

A customer has one conversation across every channel. An address that proves who it is (a
phone number on SMS or WhatsApp, a Telegram account on record) goes straight into it; a web
chat session only while it is verified for that customer (a one-time code typed in it, or a
login the business's site signed). A claim alone never joins (config/identity.yml).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.pipeline.conversations import ConversationStore
from bot.pipeline.rasa_client import RasaClient
from bot.policy.identity import IdentityPolicy
from channels import registry

if TYPE_CHECKING:
    from bot.records.repository import Records

log = logging.getLogger(__name__)

# Slots that travel with the customer when a provisional conversation joins theirs.
CARRIED_SLOTS = ("customer_id", "customer_name", "order_number", "language", "verified_until")
QUESTION_SLOTS = ("topic", "requested_slot", "amount", "instalments", "details", "preference", "retention_offer")


class Identities:
    def __init__(self, store: ConversationStore, records: "Records", rasa: RasaClient,
                 policy: IdentityPolicy) -> None:
        self.store = store
        self.records = records
        self.rasa = rasa
        self.policy = policy

    async def conversation_for(self, channel: str, address: str) -> str:
        """The customer's one conversation when the address proves who it is, else a provisional one."""
        known = await self.store.identity(channel, address)
        if known and channel == "webchat" and not await self._web_session_holds(address, known):
            # the session's proof lapsed: it gets a fresh conversation, never the customer's
            await self.store.unbind(channel, address)
            log.info("web session of %s no longer verified: a new conversation", known)
            known = None
        if known:
            return known
        customer = await self.records.by_identity(channel, address) if registry.identifies_sender(channel) else None
        if customer is not None:
            key = await self.store.customer_conversation(customer.id) or await self.store.key_for(channel, address)
            key = await self.store.claim_customer(customer.id, key)  # two channels at once: one wins
            await self.store.bind(channel, address, key)
            await self.store.update(key, customer_id=str(customer.id), level="verified", verified_by=channel)
            return key
        return await self.store.key_for(channel, address)

    async def _web_session_holds(self, session_id: str, key: str) -> bool:
        """A web chat session may stay in a customer's conversation only while it is verified for
        that customer (a code typed in it, or a signed login)."""
        customer_id = (await self.store.get(key)).get("customer_id")
        return not customer_id or await self.store.web_verified(session_id) == customer_id

    async def level(self, key: str) -> dict[str, str]:
        """anonymous | claimed | verified, and how it was verified (for the desk)."""
        conv = await self.store.get(key)
        level = conv.get("level") or ("verified" if conv.get("customer_id") else "anonymous")
        return {"level": level, "by": conv.get("verified_by", "") if level == "verified" else ""}

    async def claimed(self, key: str) -> None:
        """Someone claims an identity in the conversation (not yet proved)."""
        if not (await self.store.get(key)).get("customer_id"):
            await self.store.update(key, level="claimed")

    async def link(self, key: str, customer_id: int, channel: str, address: str, by: str = "code") -> str:
        """The conversation `key` proved to be `customer_id`'s: join it to theirs. Only ever called
        once the customer is verified (config/identity.yml): a claim never joins."""
        if channel == "webchat":
            await self.store.web_verify(address, customer_id, self.policy.web_session_seconds)
        canonical = await self.store.claim_customer(customer_id, key)
        await self.store.update(canonical, customer_id=str(customer_id), level="verified", verified_by=by)
        if canonical == key:
            return key
        # the customer's latest language is the one they use here, not the one of their last chat
        spoken = (await self.store.get(key)).get("language")
        if spoken:
            await self.store.update(canonical, language=spoken)
        await self.store.bind(channel, address, canonical)
        await self.records.move_transcript(key, canonical, customer_id)
        await self.rasa.carry_slots(key, canonical, CARRIED_SLOTS, QUESTION_SLOTS)
        log.info("conversation %s joined %s (customer %s)", key, canonical, customer_id)
        return canonical

    async def verified_login(self, channel: str, address: str, login_id: str) -> str | None:
        """A web chat visitor whose login the business's site signed: join the customer's
        conversation and tell Rasa who it is. None when the login belongs to no customer."""
        customer = await self.records.by_identity(channel, login_id)
        if customer is None:
            return None
        key = await self.conversation_for(channel, address)
        if (await self.store.get(key)).get("customer_id") == str(customer.id):
            await self.store.web_verify(address, customer.id, self.policy.web_session_seconds)
            return key
        key = await self.link(key, customer.id, channel, address, by="login")
        await self.rasa.set_slots(key, {"customer_id": str(customer.id), "customer_name": customer.greeting_name})
        return key
