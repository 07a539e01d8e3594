"""The gateway: an aiohttp application that owns channels, conversations and delivery."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from bot.shared import language
from bot.pipeline.conversations import ConversationStore
from bot.shared.db import create_engine
from bot.delivery import dev_outbox
from bot.people import HandoffConfig, Handoffs
from bot.policy import clock as clocks
from bot.policy.identity import IdentityPolicy
from bot.pipeline.inbox import Inbox
from bot.records.repository import Records
from bot.records.retention import RetentionJob
from bot.delivery import outbox
from bot.pipeline import rasa_client
from bot.pipeline.rasa_client import RasaClient
from bot.pipeline.service import ConversationService
from bot.shared.settings import Settings
from bot.gateway.socketio_redis import JsonRedisManager
from bot.desk import routes as desk
from bot.gateway.keys import CLOCK, HANDOFFS, RASA, RECORDS, REDIS, RETENTION, SERVICE, SETTINGS, TELEGRAM, TWILIO
from channels import telegram, twilio
from channels.base import BackgroundTasks
from channels.socketio_guard import WebChatServer, install_log_filter
from bot.delivery.outbound import Outbound
from bot.delivery.queue import Delivery, retry_for_from_env
from bot.pipeline.transcript import Transcript
from channels.webchat import WebChat, WebChatSender

log = logging.getLogger(__name__)


# On SIGTERM the gateway is gone within 10 s: open requests (web chat sockets included) get
# SHUTDOWN_TIMEOUT, then the messages in flight and the replies being delivered DRAIN_SECONDS.
SHUTDOWN_TIMEOUT = 1.5
DRAIN_SECONDS = 6.5


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clocks.from_env()  # the one clock of this process (BOT_FIXED_NOW fixes it in tests)

    install_log_filter()  # a malformed socket.io packet: one log line per connection, no traceback
    sio = WebChatServer(
        async_mode="aiohttp",
        cors_allowed_origins="*",
        max_http_buffer_size=64 * 1024,
        # JSON on the pub/sub channel, never pickle (bot/gateway/socketio_redis.py)
        client_manager=JsonRedisManager(settings.redis_url, channel=f"{settings.key_prefix}:socketio"),
    )
    sio.attach(app)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        redis = Redis.from_url(
            settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5
        )
        await redis.ping()
        http = aiohttp.ClientSession()
        engine = create_engine()
        records = Records(engine)
        rasa_http = rasa_client.session()  # its own pool: turns queue there, not against the timeout
        rasa = RasaClient(rasa_http, settings.rasa_url, settings.rasa_token, settings.rasa_timeout,
                          action_health_url=settings.action_health_url, probe_session=http)
        store = ConversationStore(redis, settings.key_prefix)
        clock = app[CLOCK]
        handoffs = Handoffs(redis, settings.key_prefix, HandoffConfig.load(), clock=clock)
        app[HANDOFFS] = handoffs

        async def changed(conversation: str) -> None:  # the desk shows a failed delivery at once
            await handoffs.publish({"type": "message", "conversation": conversation})

        senders: dict = {}  # channel -> sender, filled by the channel adapters below
        outbound = Outbound(store, records, Transcript(store, records),
                            Delivery(senders, records, retry_for=retry_for_from_env(), on_change=changed), senders)
        service = ConversationService(store, rasa, records, handoffs, outbound,
                                      identity=IdentityPolicy.load(), max_bytes=settings.max_message_bytes,
                                      clock=clock)
        tasks = BackgroundTasks()
        webchat = WebChat(sio, service, settings.webchat_identity_secret, trusted_proxies=settings.trusted_proxies)
        outbound.register(WebChatSender(sio))
        senders.update(twilio.setup(app, service, settings, http, tasks, redis) or {})
        telegram_sender = telegram.setup(app, service, settings, http, tasks, redis)
        if telegram_sender is not None:
            outbound.register(telegram_sender)

        async def language_of(channel: str, address: str, payload: dict) -> str:
            key = await store.identity(channel, address)
            lang = (await store.get(key)).get("language") if key else None
            return lang if lang in language.SUPPORTED else payload.get("language_hint") or language.DEFAULT_LANGUAGE

        # every inbound message is stored before its webhook is answered, and handled from there
        inbox = Inbox(engine, redis, settings.key_prefix, language_of)
        webchat.use(inbox)
        for adapter_key in (TWILIO, TELEGRAM):
            if adapter_key in app:
                app[adapter_key].use(inbox)
        log.info("channels on: %s", ", ".join(senders))
        await asyncio.to_thread(language.warm_up)
        app[REDIS], app[RASA], app[SERVICE], app[RECORDS] = redis, rasa, service, records
        stop = asyncio.Event()
        delivery = asyncio.create_task(outbox.run(records, outbound, stop))
        app[RETENTION] = RetentionJob(engine, redis, settings.key_prefix)  # daily purge (APScheduler)
        app[RETENTION].start()
        inbound = asyncio.create_task(inbox.run(stop))
        yield
        app[RETENTION].stop()
        # SIGTERM: the sites are closed and open requests had SHUTDOWN_TIMEOUT; what is in flight
        # (stored messages being handled, turns, replies being delivered) gets until the grace
        # period ends, then is cancelled (a stored message's lease runs out and another process,
        # or this one after a restart, takes it up: the tracker check keeps it from running twice).
        grace_ends = asyncio.get_running_loop().time() + DRAIN_SECONDS
        stop.set()
        await delivery
        try:
            await asyncio.wait_for(inbound, max(0.5, grace_ends - asyncio.get_running_loop().time()))
        except asyncio.TimeoutError:
            log.warning("inbox: messages still running at shutdown are taken up again after a restart")
        left = await tasks.drain(grace_ends - asyncio.get_running_loop().time())
        left += await outbound.delivery.drain(grace_ends - asyncio.get_running_loop().time())
        log.info("gateway stopped (%s)", f"{left} unfinished" if left else "nothing left in flight")
        if telegram_sender is not None:
            await telegram_sender.close()
        await http.close()
        await rasa_http.close()
        await redis.close(close_connection_pool=True)
        await engine.dispose()

    app.cleanup_ctx.append(resources)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(settings.static_dir / "index.html")

    async def health(request: web.Request) -> web.Response:
        ok_redis = await request.app[REDIS].ping()
        ok_rasa = await request.app[RASA].ready()
        status = 200 if ok_redis and ok_rasa else 503
        return web.json_response({"redis": bool(ok_redis), "rasa": ok_rasa}, status=status)

    twilio.add_routes(app)
    telegram.add_routes(app)
    desk.setup(app)
    app.router.add_get("/", index)
    app.router.add_get("/healthz", health)
    app.router.add_static("/static/", settings.static_dir)
    if settings.dev_outbox:  # only with DEV_OUTBOX=1, and behind a desk login
        dev_outbox.add_routes(app)
    return app
