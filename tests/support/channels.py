"""WhatsApp, SMS and Telegram webhooks into a running gateway; what the customer receives comes
from the fake Twilio and Telegram on loopback."""

from __future__ import annotations

import uuid

import aiohttp

from tests.support.fake_twilio import inbound_params, signed_post_args

SANNE_PHONE = "+31612345601"  # K10001 Sanne de Vries (docs/demo-data.md)


def sid() -> str:
    """A new Twilio MessageSid."""
    return "SM" + uuid.uuid4().hex


async def twilio_post(stack, params: dict, *, token: str | None = None, headers: dict | None = None):
    url = f"http://127.0.0.1:{stack.gateway_port}/webhooks/twilio"
    signed = signed_post_args(token or stack.env()["TWILIO_AUTH_TOKEN"], url, params)
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=params, headers={**signed, **(headers or {})},
                             timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return resp.status, await resp.text()


async def whatsapp(stack, fake_twilio, phone: str, body: str, count: int = 1) -> str:
    """Write on WhatsApp; the next `count` messages the customer receives, joined."""
    before = len([m for m in fake_twilio.messages if m["To"] == f"whatsapp:{phone}"])
    status, _ = await twilio_post(stack, inbound_params(f"whatsapp:{phone}", body, to=f"whatsapp:{stack.env()['TWILIO_WHATSAPP_NUMBER']}", sid=sid()))
    assert status == 200
    got = await fake_twilio.wait_for(f"whatsapp:{phone}", count=before + count, timeout=60)
    return "\n".join(m.get("Body") or "" for m in got[before:])


async def telegram_post(stack, update: dict, secret: str | None = None):
    url = f"http://127.0.0.1:{stack.gateway_port}/webhooks/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret or stack.env()["TELEGRAM_WEBHOOK_SECRET"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as resp:
            return resp.status


async def telegram_says(stack, fake_telegram, user_id: int, update: dict, count: int = 1) -> str:
    """Send a Telegram update; the next `count` messages the bot sends the user, joined."""
    before = len(fake_telegram.calls_of("sendMessage", chat_id=user_id))
    assert await telegram_post(stack, update) == 200
    got = await fake_telegram.wait_for("sendMessage", chat_id=user_id, count=before + count, timeout=60)
    return "\n".join(str(c.get("text", "")) for c in got[before:])
