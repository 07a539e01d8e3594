"""The gateway's client to Rasa under load: the wait for a pooled connection does not count
against the turn's timeout, so a burst larger than the pool is answered late but completely,
each message sent to Rasa once. Rasa is stood in for by a loopback HTTP server that answers its
REST channel slowly (the point is the client's queueing, not Rasa's dialogue)."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.pipeline import rasa_client
from bot.pipeline.rasa_client import RasaClient


async def test_a_burst_bigger_than_the_pool_is_answered_completely_each_message_once():
    seen: list[str] = []
    at_once = peak = 0

    async def webhook(request: web.Request) -> web.Response:
        nonlocal at_once, peak
        body = await request.json()
        seen.append(body["message"])
        at_once += 1
        peak = max(peak, at_once)
        await asyncio.sleep(0.4)  # every turn takes 0.4 s at "Rasa"
        at_once -= 1
        return web.json_response([{"recipient_id": body["sender"], "text": f"antwoord op {body['message']}"}])

    app = web.Application()
    app.router.add_post("/webhooks/gateway/webhook", webhook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    http = rasa_client.session(pool_size=4)
    try:
        # 1 s per request, 40 requests, 4 at a time: the last waits ~4 s for a connection
        client = RasaClient(http, str(server.make_url("")).rstrip("/"), "token", timeout=1.0, attempts=1)
        started = time.monotonic()
        got = await asyncio.gather(*(client.send(f"c{i}", f"bericht {i}", {}) for i in range(40)))
        took = time.monotonic() - started
    finally:
        await http.close()
        await server.close()
    assert [g[0]["text"] for g in got] == [f"antwoord op bericht {i}" for i in range(40)]
    assert sorted(seen) == sorted(f"bericht {i}" for i in range(40))  # nothing sent twice
    assert peak == 4 and took > 3.5  # they queued in the gateway, and still none timed out
