"""The gateway's only way to Rasa: its token-protected REST channel on localhost.

Under load the gateway queues, Rasa does not: the session given here has a pool of
`POOL_SIZE` connections (RASA_POOL_SIZE), so at most that many requests are at Rasa at once and
the others wait their turn for a connection, in order, without a time limit. The timeout
(RASA_TIMEOUT, 30 s) starts when a request has its connection: it bounds how long Rasa takes to
answer (no bytes for that long), never the wait in the queue. A busy bot answers late, never
drops a message for being busy (the web chat tells the customer the answer is coming).
"""

from __future__ import annotations

import asyncio
import logging
import time
import os
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class RasaUnavailable(Exception):
    """Rasa could not be reached or answered with an error."""


class RasaRefused(RasaUnavailable):
    """Rasa refused the request (a wrong token, a malformed body): retrying will not help."""


class RasaMaybeReached(RasaUnavailable):
    """The request may have reached Rasa (a timeout, a dropped connection, a 5xx): sending it
    again could run the turn twice. Look at the tracker first (`replies_for`)."""


POOL_SIZE = 32        # requests at Rasa at once; more only queue inside Rasa's single event loop
CONNECT_TIMEOUT = 5.0


def pool_size_from_env() -> int:
    raw = os.environ.get("RASA_POOL_SIZE", "")
    try:
        size = int(raw) if raw else POOL_SIZE
    except ValueError as exc:
        raise SystemExit(f"RASA_POOL_SIZE must be a whole number, got {raw!r}") from exc
    if size < 1:
        raise SystemExit("RASA_POOL_SIZE must be at least 1")
    return size


def session(pool_size: int | None = None) -> aiohttp.ClientSession:
    """The gateway's HTTP session to Rasa: its own pool, so no other traffic (Twilio, Telegram)
    takes Rasa's connections and Rasa's queue never holds up a delivery."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=pool_size or pool_size_from_env()))


def request_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """`seconds` for Rasa to answer once the request is sent; the wait for a pooled connection
    is not limited (total and connect include it in aiohttp, so they are off)."""
    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=CONNECT_TIMEOUT, sock_read=seconds)


class RasaClient:
    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, token: str, timeout: float = 30.0,
        attempts: int = 3, action_health_url: str = "", probe_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._session = session
        self._probe = probe_session or session  # /status for health checks: not behind the turns
        self._base = base_url
        self._url = f"{base_url}/webhooks/gateway/webhook"
        self._status_url = f"{base_url}/status"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._token = token
        self._timeout = request_timeout(timeout)
        self._attempts = attempts
        self._action_health_url = action_health_url
        self._actions_ok_until = 0.0

    async def send(self, sender: str, text: str, metadata: dict[str, Any],
                   message_id: str | None = None) -> list[dict[str, Any]]:
        """Send one customer message; returns the bot's messages for this turn.

        Sent again only when it certainly did not reach Rasa (the connection was refused);
        otherwise `RasaMaybeReached`."""
        body: dict[str, Any] = {"sender": sender, "message": text, "metadata": metadata}
        if message_id:
            body["message_id"] = message_id
        last_error: Exception | None = None
        for attempt in range(self._attempts):
            try:
                async with self._session.post(
                    self._url, json=body, headers=self._headers, timeout=self._timeout
                ) as resp:
                    if resp.status >= 500:
                        raise RasaMaybeReached(f"Rasa answered {resp.status}")
                    if resp.status != 200:
                        # Not worth retrying: a wrong token or a request Rasa refuses.
                        raise RasaRefused(f"Rasa refused the message: {resp.status}")
                    return await resp.json()
            except RasaUnavailable:
                raise
            except aiohttp.ClientConnectorError as exc:  # never reached Rasa: safe to send again
                last_error = exc
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                raise RasaMaybeReached(f"{type(exc).__name__} {exc}".strip()) from exc
            log.warning("rasa attempt %d for %s failed: %r", attempt + 1, sender, last_error)
            if attempt + 1 < self._attempts:
                await asyncio.sleep(0.5 * (attempt + 1))
        raise RasaUnavailable(str(last_error))

    async def replies_for(self, sender: str, message_id: str) -> list[dict[str, Any]] | None:
        """The bot's messages of the turn of `message_id` when Rasa already has that turn in the
        conversation's tracker (rendered as the REST channel does); None when it does not."""
        try:
            async with self._session.get(f"{self._base}/conversations/{sender}/tracker",
                                         params={"token": self._token}, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"tracker of {sender}: {resp.status}")
                tracker = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(str(exc)) from exc
        events = tracker.get("events") or []
        start = None
        for i, event in enumerate(events):
            if event.get("event") == "user" and event.get("message_id") == message_id:
                start = i
        if start is None:
            return None
        replies = []
        for event in events[start + 1:]:
            if event.get("event") == "user":
                break
            if event.get("event") != "bot":
                continue
            data = event.get("data") or {}
            item: dict[str, Any] = {"recipient_id": sender}
            if event.get("text"):
                item["text"] = event["text"]
            for name in ("buttons", "image", "custom", "attachment", "quick_replies", "elements"):
                if data.get(name):
                    item[name] = data[name]
            replies.append(item)
        return replies

    async def actions_ready(self) -> bool:
        """The action server answers its /health (kept for 2 s); True when no URL is configured."""
        if not self._action_health_url or time.monotonic() < self._actions_ok_until:
            return True
        try:
            async with self._probe.get(self._action_health_url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                ok = resp.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            ok = False
        if ok:
            self._actions_ok_until = time.monotonic() + 2
        return ok

    async def carry_slots(self, source: str, target: str, names: tuple[str, ...],
                          state: tuple[str, ...] = ()) -> None:
        """Copy the named slots of one conversation onto another's, and its question in progress
        exactly (`state` slots and the active form, empty ones included, so an old unfinished
        question of the target does not come back)."""
        base = self._url.rsplit("/webhooks/", 1)[0]
        params = {"token": self._token}
        try:
            async with self._session.get(f"{base}/conversations/{source}/tracker", params=params,
                                         timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"tracker of {source}: {resp.status}")
                tracker = await resp.json()
            slots = tracker.get("slots") or {}
            events = [{"event": "slot", "name": n, "value": slots[n]} for n in names if slots.get(n) is not None]
            events += [{"event": "slot", "name": n, "value": slots.get(n)} for n in state]
            events.append({"event": "active_loop", "name": (tracker.get("active_loop") or {}).get("name")})
            if not events:
                return
            async with self._session.post(f"{base}/conversations/{target}/tracker/events", params=params,
                                          json=events, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"tracker of {target}: {resp.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(str(exc)) from exc

    async def set_slots(self, conversation: str, values: dict[str, Any]) -> None:
        base = self._url.rsplit("/webhooks/", 1)[0]
        events = [{"event": "slot", "name": k, "value": v} for k, v in values.items()]
        try:
            async with self._session.post(f"{base}/conversations/{conversation}/tracker/events",
                                          params={"token": self._token}, json=events, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"tracker of {conversation}: {resp.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(str(exc)) from exc

    async def parse(self, text: str) -> dict[str, Any]:
        """Rasa's NLU reading of a text, without touching any conversation (POST /model/parse)."""
        base = self._url.rsplit("/webhooks/", 1)[0]
        try:
            async with self._session.post(f"{base}/model/parse", params={"token": self._token},
                                          json={"text": text}, timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise RasaUnavailable(f"parse: {resp.status}")
                return await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise RasaUnavailable(str(exc)) from exc

    async def ready(self) -> bool:
        try:
            async with self._probe.get(
                self._status_url, params={"token": self._token},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                if resp.status != 200:
                    return False
                return bool((await resp.json()).get("model_id"))
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False
