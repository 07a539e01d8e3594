"""Local components locked down, tried against the running stack as someone on the machine would:
a hand-made POST to the action server, a pickle published on the gateway's socket.io channel,
`/dev/outbox` without DEV_OUTBOX. Real Redis, action server, Rasa and gateway (the `stack` fixture).
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import sqlite3
import time

import aiohttp
import redis as redis_sync

from tests.support.chat import texts

ORDER = "118902"  # Daan Jansen (K10002), delivered (docs/demo-data.md)


def _contacts(stack, number: str) -> int:
    with sqlite3.connect(stack.database_url.removeprefix("sqlite:///")) as conn:
        return conn.execute("select count(*) from contact_history h join customers c on c.id = h.customer_id "
                            "where c.customer_number = ? and h.topic = 'order_status'", (number,)).fetchone()[0]


def _customer_id(stack, number: str) -> int:
    with sqlite3.connect(stack.database_url.removeprefix("sqlite:///")) as conn:
        return conn.execute("select id from customers where customer_number = ?", (number,)).fetchone()[0]


def action_call(customer_id: int) -> dict:
    """What an attacker would send: run `action_topic` for a customer of their choosing."""
    import rasa_sdk

    slots = {"customer_id": str(customer_id), "topic": "order_status", "order_number": ORDER, "language": "nl"}
    return {"next_action": "action_topic", "sender_id": "attacker", "version": rasa_sdk.__version__, "domain": {},
            "tracker": {"sender_id": "attacker", "slots": slots, "latest_message": {}, "events": [],
                        "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None}}


async def test_the_action_server_refuses_requests_without_the_shared_secret(stack):
    base = f"http://127.0.0.1:{stack.action_port}"
    body = action_call(_customer_id(stack, "K10002"))
    before = _contacts(stack, "K10002")
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": stack.action_token},
                        {"Authorization": f"Bearer {stack.action_token}x"}):
            async with http.post(f"{base}/webhook", json=body, headers=headers) as r:
                assert r.status == 401, headers
                text = await r.text()
                assert ORDER not in text and "responses" not in text
        async with http.get(f"{base}/actions") as r:  # not even the list of actions
            assert r.status == 401
        assert _contacts(stack, "K10002") == before  # no action ran
        async with http.get(f"{base}/health") as r:  # the launcher's readiness check stays open
            assert r.status == 200

        # Rasa's own header (endpoints.yml) is let in and the action runs
        async with http.post(f"{base}/webhook", json=body,
                             headers={"Authorization": f"Bearer {stack.action_token}"}) as r:
            assert r.status == 200
            result = await r.json()
    assert ORDER in json.dumps(result["responses"])
    assert _contacts(stack, "K10002") == before + 1
    # the secret is not on any command line
    for name in ("actions", "rasa", "gateway"):
        cmdline = open(f"/proc/{stack.processes[name].pid}/cmdline", "rb").read().decode(errors="replace")
        assert stack.action_token not in cmdline, name


async def test_a_chat_turn_still_runs_custom_actions(chat):
    """Rasa sends the secret: the greeting comes from the custom action `action_greet`."""
    c = await chat(language="nl")
    assert "digitale assistent" in texts(await c.say("hoi"))


class _TouchFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.system, (f"touch {self.path}",)


async def test_a_pickle_on_the_socketio_channel_runs_nothing(stack, chat, tmp_path):
    marker = tmp_path / "pwned"
    log = stack.log_dir / "gateway.log"
    start = log.stat().st_size

    def new_log() -> str:
        with open(log, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    channel = f"{stack.key_prefix}:socketio"
    client = redis_sync.Redis.from_url(stack.redis_url)
    try:
        listeners = client.publish(channel, pickle.dumps(_TouchFile(str(marker))))
        assert listeners >= 1  # the gateway listens on this channel
        # also a pickle of a well-formed socket.io message, JSON that is not an object, garbage
        client.publish(channel, pickle.dumps({"method": "emit", "event": "bot_uttered", "data": {"text": "x"},
                                              "namespace": "/", "room": None, "host_id": "someone"}))
        client.publish(channel, b"[1, 2, 3]")
        client.publish(channel, b"\x80\x04not json")
    finally:
        client.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if new_log().count("socket.io pub/sub: dropped") >= 4:
            break
        await asyncio.sleep(0.2)
    assert not marker.exists(), "the gateway unpickled a message from Redis"
    tail = new_log()
    assert tail.count("socket.io pub/sub: dropped") == 4  # one line each
    assert "Traceback" not in tail
    # the gateway still serves chat
    c = await chat(language="nl")
    assert "digitale assistent" in texts(await c.say("hoi"))


async def test_no_dev_outbox_unless_asked_for(stack):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for path in ("/dev/outbox", "/desk/dev/outbox"):
            async with http.get(f"http://127.0.0.1:{stack.gateway_port}{path}", allow_redirects=False) as r:
                assert r.status == 404, path
