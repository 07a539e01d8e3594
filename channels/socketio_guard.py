"""The web chat's socket.io server, hardened against malformed packets.

python-socketio and python-engineio log a packet they cannot decode or dispatch as a traceback,
one per packet ("message async handler error", "Unknown receive error", aiohttp's "Error handling
request"), and some never reach a log at all but end as "Task exception was never retrieved".
A visitor can send thousands. Here:

- `WebChatServer` checks every socket.io packet before python-socketio dispatches it: it must
  decode, be an event whose first element is the event name (text of at most 64 characters),
  and carry at most `MAX_ATTACHMENTS` binary attachments. Anything else is dropped and logged
  as one line, once per connection.
- `MalformedPacketLog` (a logging filter on the engineio, socketio and aiohttp loggers) turns an
  error that engine.io raised while reading a connection's packets (an empty frame, an unknown
  packet type, a frame that is not a number) into one line per connection, without the packet
  and without a traceback. Other errors pass unchanged.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from types import TracebackType
from typing import Any

import socketio
from engineio.async_socket import AsyncSocket

log = logging.getLogger("channels.webchat")

MAX_EVENT_NAME = 64
MAX_ATTACHMENTS = 10
_REMEMBERED = 10_000  # connections whose malformed packets were already logged


class _Once:
    """The connections already logged (bounded: the oldest are forgotten first)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return True

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)


_logged = _Once()


def _report(connection: str, what: str) -> None:
    if _logged.first(connection):
        log.warning("web chat connection %s: malformed packet (%s) dropped; further ones on this "
                    "connection are not logged", connection, what)


class MalformedPacket(ValueError):
    pass


class WebChatServer(socketio.AsyncServer):
    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            await super()._handle_eio_message(eio_sid, data)
            pending = self._binary_packet.get(eio_sid)  # a packet announcing its attachments
            if pending is not None and pending.attachment_count > MAX_ATTACHMENTS:
                raise MalformedPacket("too many attachments")
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
            # ValueError covers JSON errors and MalformedPacket; the others come from packets
            # python-socketio decodes but cannot take apart.
            self._binary_packet.pop(eio_sid, None)
            _report(eio_sid, str(exc) if isinstance(exc, MalformedPacket) else type(exc).__name__)

    async def _handle_event(self, eio_sid: str, namespace: Any, id: Any, data: Any) -> None:
        if not (isinstance(data, list) and data and isinstance(data[0], str) and 0 < len(data[0]) <= MAX_EVENT_NAME):
            raise MalformedPacket("event without a name")
        await super()._handle_event(eio_sid, namespace, id, data)

    async def _handle_eio_disconnect(self, eio_sid: str) -> None:
        self._binary_packet.pop(eio_sid, None)
        _logged.forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid)


def _engineio_connection(tb: TracebackType | None) -> str | None:
    """The engine.io connection whose packet handling raised, from the traceback's frames."""
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, AsyncSocket):
            return str(owner.sid)
        tb = tb.tb_next
    return None


class MalformedPacketLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        exc, tb = record.exc_info[1], record.exc_info[2]
        connection = _engineio_connection(tb)
        if connection is None or isinstance(exc, (MemoryError, SystemExit, KeyboardInterrupt)):
            return True
        if not _logged.first(connection):
            return False
        record.name, record.levelno, record.levelname = log.name, logging.WARNING, "WARNING"
        record.msg = ("web chat connection %s: malformed engine.io packet (%s) dropped; further ones on "
                      "this connection are not logged")
        record.args = (connection, type(exc).__name__)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


_filter = MalformedPacketLog()


def install_log_filter() -> None:
    """Add the filter to the loggers engine.io and aiohttp report packet errors on (idempotent)."""
    for name in ("engineio.server", "socketio.server", "aiohttp.server", "asyncio"):
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
