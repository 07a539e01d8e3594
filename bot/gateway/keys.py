"""Every aiohttp app key of the gateway, in one place: the app factory (bot/gateway/app.py) sets
them, the desk, the channel adapters and the tests read them. Only type names are imported (for
type checkers), so any module can import this one without an import circle."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp
    import socketio
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine

    from bot.delivery.outbound import Outbound
    from bot.people import Handoffs
    from bot.pipeline.inbox import Inbox
    from bot.policy.clock import Clock
    from bot.pipeline.rasa_client import RasaClient
    from bot.pipeline.service import ConversationService
    from bot.policy.mandate import MandateTable
    from bot.promises.scheduler import PromiseScheduler
    from bot.records.repository import Records
    from bot.records.retention import RetentionJob
    from bot.shared.settings import Settings
    from channels.base import ChannelAdapter
    from channels.telegram import TelegramWebhook
    from channels.webchat import WebChat
    from channels.twilio import TwilioWebhook

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
REDIS: web.AppKey["Redis"] = web.AppKey("redis")
SERVICE: web.AppKey["ConversationService"] = web.AppKey("service")
RASA: web.AppKey["RasaClient"] = web.AppKey("rasa")
RECORDS: web.AppKey["Records"] = web.AppKey("records")
HANDOFFS: web.AppKey["Handoffs"] = web.AppKey("handoffs")
RETENTION: web.AppKey["RetentionJob"] = web.AppKey("retention")
PROMISES: web.AppKey["PromiseScheduler"] = web.AppKey("promises")
HTTP: web.AppKey["aiohttp.ClientSession"] = web.AppKey("http")  # shared: deliveries, probes (not Rasa's turns)
ENGINE: web.AppKey["AsyncEngine"] = web.AppKey("engine")
INBOX: web.AppKey["Inbox"] = web.AppKey("inbox")
OUTBOUND: web.AppKey["Outbound"] = web.AppKey("outbound")  # every message we send (bot/delivery/outbound.py)
# the channels (channels/registry.py): the adapters started, and the web chat's socket.io server
CHANNELS: web.AppKey["list[ChannelAdapter]"] = web.AppKey("channels")
SOCKETIO: web.AppKey["socketio.AsyncServer"] = web.AppKey("socketio")
WEB_CHAT: web.AppKey["WebChat"] = web.AppKey("web_chat")  # set once the web chat started
TWILIO: web.AppKey["TwilioWebhook"] = web.AppKey("twilio")
TELEGRAM: web.AppKey["TelegramWebhook"] = web.AppKey("telegram")
CLOCK: web.AppKey["Clock"] = web.AppKey("clock")  # bot/policy/clock.py; tests set a FixedClock
# the desk
DESK_HEARTBEAT: web.AppKey[float] = web.AppKey("desk_heartbeat")  # seconds between SSE pings (tests lower it)
DESK_MANDATES: web.AppKey["MandateTable"] = web.AppKey("desk_mandates")
DESK_STOP: web.AppKey[asyncio.Event] = web.AppKey("desk_stop")  # set on shutdown: event streams end
