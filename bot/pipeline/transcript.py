"""The conversation's transcript: one row per message in the records database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.delivery import queue as delivery
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.inbox import current_turn

if TYPE_CHECKING:
    from bot.records.repository import Records


class Transcript:
    def __init__(self, store: ConversationStore, records: "Records") -> None:
        self.store = store
        self.records = records

    async def log(self, key: str, sender: str, text: str, channel: str, **data: Any) -> int | None:
        """One transcript row; its id, noted for bot/delivery/queue.py. None when a retried turn
        finds the customer's message already there."""
        data = {k: v for k, v in data.items() if v}
        turn = current_turn()
        if sender == "customer" and data.get("message_id") and turn is not None and turn.retry:
            # a retried turn: the customer's message may be in the transcript already
            if any(e.get("message_id") == data["message_id"] and e.get("sender") == "customer"
                   for e in await self.history(key, 50)):
                return None
        customer_id = await self.store.customer_id(key)
        row = await self.records.add_transcript(key, customer_id, sender, channel, text, data)
        delivery.note(row, sender, channel, text)
        return row

    async def history(self, key: str, limit: int = 200) -> list[dict[str, Any]]:
        return await self.records.transcript(key, limit)
