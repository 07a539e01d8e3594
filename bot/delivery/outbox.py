"""Delivers what the records queued for customers (one-time codes, updates) on their channels,
through the one outbound path (bot/delivery/outbound.py: in order per address, retried).

Every gateway process runs this loop; a message is claimed in the database before it is sent,
so with several processes each message still goes out once. A message that could not be
delivered is released and tried again on a later round.
"""

from __future__ import annotations

import asyncio
import logging

from bot.delivery.outbound import Outbound
from bot.delivery.queue import SENT
from bot.pipeline.types import BotMessage
from bot.records.repository import Records

log = logging.getLogger(__name__)


_settling: set[asyncio.Task] = set()  # rows whose delivery is still being tried


async def _settle(records: Records, row, future: asyncio.Future) -> None:
    result = await future
    if result.status != SENT:
        log.warning("outbox %s on %s not delivered: %s", row.id, row.channel, result.reason)
        await records.release_outbox(row.id)


async def deliver_once(records: Records, outbound: Outbound) -> int:
    """Claim what is queued for a channel that is on and hand it to the delivery queue; the
    outcome is settled in the background (a slow channel never holds up the others). Returns
    how many messages were handed on."""
    handed = 0
    for row in await records.pending_outbox(outbound.senders.keys()):
        if not await records.claim_outbox(row.id):
            continue
        future = outbound.submit(row.channel, row.address, [BotMessage(row.body)], proactive=True,
                                 what=f"outbox {row.id}")
        task = asyncio.create_task(_settle(records, row, future))
        _settling.add(task)
        task.add_done_callback(_settling.discard)
        handed += 1
    return handed


async def run(records: Records, outbound: Outbound, stop: asyncio.Event, interval: float = 1.0) -> None:
    while not stop.is_set():
        try:
            await deliver_once(records, outbound)
        except Exception:
            log.exception("outbox round failed")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
