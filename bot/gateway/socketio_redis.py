"""python-socketio's Redis client manager, speaking JSON only.

python-socketio 5.11's AsyncRedisManager publishes every cross-process message (emit, room
changes, disconnects) as a pickle on its pub/sub channel and unpickles whatever arrives there:
anyone who can publish to Redis could make every gateway run code of their choice. This manager
publishes JSON and accepts only JSON objects with a known `method`; anything else is dropped
with one log line (no traceback, no content). Nothing read from Redis is ever unpickled.

Every gateway process must use it (a stock manager's pickles are dropped here, and ours are
not understood by a stock one).
"""

from __future__ import annotations

import json
import logging

import socketio

log = logging.getLogger(__name__)

METHODS = frozenset({"emit", "callback", "disconnect", "enter_room", "leave_room", "close_room"})
MAX_MESSAGE = 1024 * 1024  # bytes; the gateway caps socket.io payloads far lower


def decode(data: object) -> dict | None:
    """The pub/sub message as a dict, or None when it is not a JSON object with a known method."""
    if isinstance(data, (bytes, bytearray)):
        if len(data) > MAX_MESSAGE:
            return None
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(data, str):
        return None
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested absurdly deep
        return None
    if not isinstance(message, dict) or message.get("method") not in METHODS:
        return None
    return message


class JsonRedisManager(socketio.AsyncRedisManager):
    name = "jsonredis"

    async def _publish(self, data):
        try:
            payload = json.dumps(data, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            # not JSON (bytes, say): other processes do not get it; this one already handled it
            log.error("socket.io pub/sub: not publishing a %s message that is not JSON (%s)",
                      data.get("method") if isinstance(data, dict) else type(data).__name__, type(exc).__name__)
            return None
        return await self._publish_raw(payload)

    async def _publish_raw(self, payload: str):
        """AsyncRedisManager._publish without the pickle: one reconnect, then give up (logged)."""
        from redis.exceptions import RedisError

        retry = True
        while True:
            try:
                if not retry:
                    self._redis_connect()
                return await self.redis.publish(self.channel, payload)
            except RedisError:
                if retry:
                    self._get_logger().error("Cannot publish to redis... retrying")
                    retry = False
                else:
                    self._get_logger().error("Cannot publish to redis... giving up")
                    return None

    async def _listen(self):
        """Yield only decoded dicts: the base class's listener then never unpickles anything."""
        channel = self.channel.encode("utf-8")
        await self.pubsub.subscribe(self.channel)
        async for message in self._redis_listen_with_retries():
            if message.get("channel") != channel or message.get("type") != "message" or "data" not in message:
                continue
            decoded = decode(message["data"])
            if decoded is None:
                raw = message["data"]
                log.warning("socket.io pub/sub: dropped a message that is not a JSON socket.io message "
                            "(%d bytes)", len(raw) if isinstance(raw, (bytes, bytearray, str)) else 0)
                continue
            yield decoded
        await self.pubsub.unsubscribe(self.channel)
