"""Two gateway processes share everything through Redis and the database: a customer chats on
gateway A while the agent works in the desk of gateway B. The queue event reaches B's live
stream, B's claim and reply reach the customer's socket on A, what the customer writes on A shows
in B's transcript, and B's hand back gives the conversation to the bot again on A."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest

from bot.launch.run import PROJECT_ROOT, _wait_http, free_port
from tests.support.chat import texts
from tests.support.desk_api import PASSWORD, Browser, create_agent

pytestmark = pytest.mark.stack  # a second gateway beside the stack


@pytest.fixture(scope="module")
def gateway_b(stack):
    port = free_port()
    log = open(stack.log_dir / "gateway-b.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "bot.gateway"], cwd=PROJECT_ROOT,
                            env={**stack.env(), "GATEWAY_PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", 120, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


async def listen(desk: Browser, events: list[str]) -> asyncio.Task:
    """The desk's live stream, each SSE event name appended to `events`."""
    ready = asyncio.Event()

    async def read() -> None:
        async with desk.http.get("/desk/events", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            ready.set()
            async for line in stream.content:
                if line.startswith(b"event: "):
                    events.append(line[7:].decode().strip())

    task = asyncio.create_task(read())
    await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(0.5)
    return task


async def eventually(check, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.2)


async def test_a_customer_on_gateway_a_is_served_from_the_desk_of_gateway_b(chat, stack, people, gateway_b):
    desk = Browser(gateway_b)
    events: list[str] = []
    stream = None
    try:
        username = create_agent(stack, "agent")
        assert (await desk.login(username, PASSWORD)).status == 303
        stream = await listen(desk, events)

        customer = await chat()  # on gateway A (the stack's own)
        told = texts(await customer.say("ik wil een medewerker spreken"))
        assert "niets te herhalen" in told
        conv = await people._redis.get(f"{stack.key_prefix}:identity:webchat:{customer.session_id}")

        async def queued_on_b():
            status, queue = await desk.get("/desk/api/queue")
            return status == 200 and [i for i in queue["waiting"] if i["conversation"] == conv]
        assert await eventually(queued_on_b)
        assert "queue" in events  # B's live stream heard of A's handoff (Redis pub/sub)

        status, _ = await desk.act(conv, "claim")
        assert status == 200
        assert "van de klantenservice" in texts(await customer.replies())  # "Je praat nu met ..."

        status, _ = await desk.act(conv, "reply", {"text": "Hallo, ik help je vanaf de andere server."})
        assert status == 200
        assert "Hallo, ik help je vanaf de andere server." in texts(await customer.replies())

        held = await customer.send("fijn, het gaat om mijn factuur")
        assert await customer.turn(held) == []  # held for the agent, not answered by the bot

        async def in_transcript_on_b():
            status, view = await desk.get(f"/desk/api/conversations/{conv}")
            return status == 200 and any(m.get("text") == "fijn, het gaat om mijn factuur"
                                         for m in view["transcript"])
        assert await eventually(in_transcript_on_b)

        status, _ = await desk.act(conv, "handback")
        assert status == 200
        assert await people.state(conv) == "bot"
        assert "9:00" in texts(await customer.say("hoe laat zijn jullie open"))
    finally:
        if stream is not None:
            stream.cancel()
        await desk.close()
