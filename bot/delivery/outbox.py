"""Delivers what the records queued for customers (one-time codes, updates) on their channels.

Every gateway process runs this loop; a message is claimed in the database before it is sent,
so with several processes each message still goes out once. A failed delivery is released and
tried again on the next round.
"""

from __future__ import annotations

import asyncio
import logging

from bot.records.repository import Records
from bot.pipeline.service import BotMessage

log = logging.getLogger(__name__)


async def deliver_once(records: Records, senders: dict) -> int:
    sent = 0
    for row in await records.pending_outbox(senders.keys()):
        if not await records.claim_outbox(row.id):
            continue
        try:
            await senders[row.channel].send(row.address, [BotMessage(row.body)], proactive=True)
            sent += 1
        except Exception as exc:  # DeliveryError, or the channel's service being down
            log.warning("outbox %s on %s not delivered: %s", row.id, row.channel, type(exc).__name__)
            await records.release_outbox(row.id)
    return sent


async def run(records: Records, senders: dict, stop: asyncio.Event, interval: float = 1.0) -> None:
    while not stop.is_set():
        if senders:
            try:
                await deliver_once(records, senders)
            except Exception:
                log.exception("outbox round failed")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
