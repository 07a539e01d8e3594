"""The gateway: an aiohttp application that owns channels, conversations and delivery.

`create_app` adds the routes (every channel's from channels/registry.py, the desk's, the page and
the health check) and one cleanup context per resource, in the order they depend on each other:
the shared HTTP client, Redis, the records database, the Rasa client, the conversation service (with the people's queue and the outbound path),
the inbox, the channels (channels/registry.py: each enabled adapter started, its senders
registered on the one outbound path), the delivery queue, the webhook work handed on, the inbox loop, the outbox loop and
the retention job. aiohttp
opens them in that order and closes them in reverse; when one fails at start-up (Redis cannot be
reached, a setting is wrong), the ones opened before it are closed again and the start fails with
that error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.delivery import dev_outbox, outbox
from bot.delivery.queue import Delivery, retry_for_from_env
from bot.desk import routes as desk
from bot.gateway.keys import (
    CHANNELS, CLOCK, ENGINE, HANDOFFS, HTTP, INBOX, OUTBOUND, PROMISES, RASA, RECORDS, REDIS, RETENTION, SERVICE,
    SETTINGS,
)
from bot.feedback.survey import Surveys
from bot.promises.scheduler import PromiseScheduler
from bot.promises.proactive import ProactiveCare
from bot.promises.watch import PromiseWatch
from bot.delivery.outbound import Outbound
from bot.people import HandoffConfig, Handoffs
from bot.pipeline.transcript import Transcript
from bot.policy import clock as clocks
from bot.pipeline import rasa_client
from bot.pipeline.conversations import ConversationStore
from bot.pipeline.inbox import Inbox
from bot.pipeline.rasa_client import RasaClient
from bot.pipeline.service import ConversationService
from bot.policy.identity import IdentityPolicy
from bot.records.repository import Records
from bot.records.retention import RetentionJob
from bot.shared import language
from bot.shared.db import create_engine
from bot.shared.settings import RedisAddress, Settings
from channels import registry, widget
from channels.base import BackgroundTasks, ChannelAdapter, ChannelContext

log = logging.getLogger(__name__)


# On SIGTERM the gateway is gone within 10 s: open requests (web chat sockets included) get
# SHUTDOWN_TIMEOUT, then the messages in flight and the replies being delivered DRAIN_SECONDS.
SHUTDOWN_TIMEOUT = 1.5
DRAIN_SECONDS = 6.5
# The shared HTTP client carries deliveries (Twilio) and the action server's health probe, not
# the turns (Rasa has its own pool, RASA_POOL_SIZE). Every delivery follows a turn, a person's
# message or a queued code, so twice Rasa's pool leaves room for one delivery and one probe per
# turn in flight. The default timeout bounds any call that does not set its own.
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=5)


def http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=HTTP_TIMEOUT, connector=aiohttp.TCPConnector(limit=2 * rasa_client.pool_size_from_env()))


class Shutdown:
    """One grace period for everything in flight: it starts when the first context closes."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._ends: float | None = None

    def begin(self) -> None:
        if self._ends is None:
            self._ends = asyncio.get_running_loop().time() + DRAIN_SECONDS
        self.stop.set()

    def left(self) -> float:
        self.begin()
        return max(0.0, self._ends - asyncio.get_running_loop().time())


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clocks.from_env()  # the one clock of this process (BOT_FIXED_NOW fixes it in tests)
    shutdown = Shutdown()
    tasks = BackgroundTasks(limit=settings.webhook_concurrency)  # webhook work, bounded

    # -- one cleanup context per resource, in the order they need each other --------------------

    async def http(app: web.Application) -> AsyncIterator[None]:
        app[HTTP] = http_session()
        yield
        await app[HTTP].close()

    async def redis(app: web.Application) -> AsyncIterator[None]:
        client = Redis.from_url(settings.redis_url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                client_name=f"{settings.key_prefix}:gateway")  # CLIENT LIST shows whose it is
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.close(close_connection_pool=True)
            where = RedisAddress.parse(settings.redis_url)  # without the password
            raise SystemExit(f"gateway: Redis at {where.host}:{where.port}/{where.db} cannot be reached "
                             f"({type(exc).__name__}: {exc})") from exc
        app[REDIS] = client
        yield
        await client.close(close_connection_pool=True)

    async def records(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine()
        app[ENGINE], app[RECORDS] = engine, Records(engine)
        yield
        await engine.dispose()

    async def rasa(app: web.Application) -> AsyncIterator[None]:
        session = rasa_client.session()  # its own pool: turns queue there, not against the timeout
        app[RASA] = RasaClient(session, settings.rasa_url, settings.rasa_token, settings.rasa_timeout,
                               action_health_url=settings.action_health_url, probe_session=app[HTTP])
        yield
        await session.close()

    async def service(app: web.Application) -> AsyncIterator[None]:
        # built whole in their constructors: the store, the people's queue, the one outbound path
        # (its senders come from the channels below), the conversation service
        store = ConversationStore(app[REDIS], settings.key_prefix)
        handoffs = Handoffs(app[REDIS], settings.key_prefix, HandoffConfig.load(), clock=app[CLOCK])

        async def changed(conversation: str) -> None:  # the desk shows a failed delivery at once
            await handoffs.publish({"type": "message", "conversation": conversation})

        senders: dict = {}
        delivery = Delivery(senders, app[RECORDS], retry_for=retry_for_from_env(), on_change=changed)
        app[OUTBOUND] = Outbound(store, app[RECORDS], Transcript(store, app[RECORDS]), delivery, senders)
        surveys = Surveys(app[REDIS], settings.key_prefix, store, app[RECORDS], app[OUTBOUND], handoffs, app[CLOCK])
        app[SERVICE] = ConversationService(store, app[RASA], app[RECORDS], handoffs, app[OUTBOUND],
                                           identity=IdentityPolicy.load(), max_bytes=settings.max_message_bytes,
                                           clock=app[CLOCK], surveys=surveys)
        app[HANDOFFS] = handoffs
        await asyncio.to_thread(language.warm_up)
        yield

    async def inbox(app: web.Application) -> AsyncIterator[None]:
        store = app[SERVICE].store  # the inbox asks it for a sender's language

        async def language_of(channel: str, address: str, payload: dict) -> str:
            key = await store.identity(channel, address)
            lang = (await store.get(key)).get("language") if key else None
            return lang if lang in language.SUPPORTED else payload.get("language_hint") or language.DEFAULT_LANGUAGE

        # every inbound message is stored before its webhook is answered, and handled from there
        app[INBOX] = Inbox(app[ENGINE], app[REDIS], settings.key_prefix, language_of)
        yield

    async def channels(app: web.Application) -> AsyncIterator[None]:
        context = ChannelContext(app=app, settings=settings, service=app[SERVICE], http=app[HTTP],
                                 redis=app[REDIS], records=app[RECORDS], tasks=tasks)
        started: list[ChannelAdapter] = []
        app[CHANNELS] = started
        try:
            for adapter in registry.ADAPTERS:
                names = ", ".join(c.name for c in adapter.channels)
                if not adapter.enabled(settings):
                    log.info("channel %s: off (its settings are missing)", names)
                    continue
                running = await adapter.start(context)
                started.append(running)
                running.use(app[INBOX])
                for sender in running.senders().values():
                    app[OUTBOUND].register(sender)
            log.info("channels on: %s", ", ".join(app[OUTBOUND].senders))
            yield
        finally:
            for running in reversed(started):
                try:
                    await running.close()
                except Exception:  # one channel failing to close must not keep the others open
                    log.exception("closing channel %s failed", type(running).__name__)

    async def delivery(app: web.Application) -> AsyncIterator[None]:
        yield  # after the channels: what is still being delivered drains before they close
        left = await app[OUTBOUND].delivery.drain(shutdown.left())
        log.info("gateway stopped (%s)", f"{left} unfinished" if left else "nothing left in flight")

    async def handed_on(app: web.Application) -> AsyncIterator[None]:
        yield
        # webhook work handed on after the answer (only where a webhook has no inbox): before the
        # delivery queue drains, since it may still queue replies there
        left = await tasks.drain(shutdown.left())
        if left:
            log.info("gateway: %d webhook task(s) cancelled at shutdown", left)

    async def inbox_loop(app: web.Application) -> AsyncIterator[None]:
        running = asyncio.create_task(app[INBOX].run(shutdown.stop))
        yield
        # SIGTERM: the sites are closed and open requests had SHUTDOWN_TIMEOUT; what is in flight
        # (stored messages being handled, turns, replies being delivered) gets until the grace
        # period ends, then is cancelled (a stored message's lease runs out and another process,
        # or this one after a restart, takes it up: the tracker check keeps it from running twice).
        shutdown.begin()
        try:
            await asyncio.wait_for(running, max(0.5, shutdown.left()))
        except asyncio.TimeoutError:
            log.warning("inbox: messages still running at shutdown are taken up again after a restart")

    async def outbox_loop(app: web.Application) -> AsyncIterator[None]:
        running = asyncio.create_task(outbox.run(app[RECORDS], app[OUTBOUND], shutdown.stop))
        yield
        shutdown.begin()
        await running

    async def promises(app: web.Application) -> AsyncIterator[None]:
        # the promises' scheduler (bot/promises/scheduler.py): in every gateway, one job runs once
        watch = PromiseWatch(app[RECORDS], app[OUTBOUND], app[HANDOFFS], app[CLOCK])
        care = ProactiveCare(app[RECORDS], app[OUTBOUND], app[CLOCK])
        app[PROMISES] = PromiseScheduler(settings.redis_url, settings.key_prefix, watch, care=care,
                                         surveys=app[SERVICE].surveys)
        app[PROMISES].start()
        yield
        await app[PROMISES].stop(max(0.5, shutdown.left()))

    async def retention(app: web.Application) -> AsyncIterator[None]:
        app[RETENTION] = RetentionJob(app[ENGINE], app[REDIS], settings.key_prefix)  # daily purge (APScheduler)
        app[RETENTION].start()
        yield
        shutdown.begin()
        app[RETENTION].stop()

    app.cleanup_ctx.extend([http, redis, records, rasa, service, inbox, channels, delivery, handed_on,
                            inbox_loop, outbox_loop, promises, retention])

    # -- routes (they cannot be added once the app has started) ----------------------------------

    async def health(request: web.Request) -> web.Response:
        ok_redis = await request.app[REDIS].ping()
        ok_rasa = await request.app[RASA].ready()
        status = 200 if ok_redis and ok_rasa else 503
        return web.json_response({"redis": bool(ok_redis), "rasa": ok_rasa}, status=status)

    for adapter in registry.ADAPTERS:  # a channel that is off answers 503 on its webhook
        adapter.add_routes(app)
    desk.setup(app)
    widget.add_routes(app)  # the chat page (framed only by WEBCHAT_ORIGINS) and /widget/embed.js
    app.router.add_get("/healthz", health)
    app.router.add_static("/static/", settings.static_dir)
    if settings.dev_outbox:  # only with DEV_OUTBOX=1, and behind a desk login
        dev_outbox.add_routes(app)
    return app
