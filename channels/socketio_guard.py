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

import engineio
import socketio
from engineio.async_socket import AsyncSocket

from bot.shared.forwarded import is_https

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


def _origin_of(url: str) -> str | None:
    from urllib.parse import urlparse

    parsed = urlparse(url or "")
    return f"{parsed.scheme}://{parsed.netloc.lower()}" if parsed.scheme and parsed.netloc else None


class OriginPolicy:
    """The sites allowed to use the web chat: WEBCHAT_ORIGINS and the gateway's own origin."""

    def __init__(self, origins: tuple = (), public_base_url: str = "", trusted_proxies: tuple = ()) -> None:
        self.any = tuple(origins) == ("*",)
        self.origins = frozenset(() if self.any else origins)
        self.public = _origin_of(public_base_url)
        self.trusted_proxies = trusted_proxies

    @classmethod
    def from_settings(cls, settings: Any) -> "OriginPolicy":
        return cls(settings.webchat_origins, settings.public_base_url, settings.trusted_proxies)

    def own(self, request: Any) -> set[str]:
        """The gateway's own origins for this request: where it was reached, and PUBLIC_BASE_URL."""
        found = {self.public} if self.public else set()
        if request is not None and request.host:
            scheme = "https" if is_https(request, self.trusted_proxies) else "http"
            found.add(f"{scheme}://{request.host.lower()}")
        return found

    def allows(self, origin: str | None, request: Any = None) -> bool:
        if not origin or self.any:
            return True
        origin = origin.rstrip("/").lower()
        return origin in self.origins or origin in self.own(request)

    def frame_ancestors(self) -> str:
        """The chat page's CSP directive: who may put it in a frame."""
        if self.any:
            return "frame-ancestors *"
        return " ".join(["frame-ancestors 'self'", *sorted(self.origins)])


class GuardedEngineIO(engineio.AsyncServer):
    """engine.io with the origin check of `OriginPolicy` (its own check knows only one list, or
    the request's host)."""

    origin_policy: OriginPolicy = OriginPolicy()

    def _cors_allowed_origins(self, environ: dict) -> list[str] | None:
        if self.origin_policy.any:
            return None
        origin = environ.get("HTTP_ORIGIN")
        request = environ.get("aiohttp.request")
        if origin and self.origin_policy.allows(origin, request):
            return [origin]
        return sorted(self.origin_policy.own(request) | self.origin_policy.origins)


class WebChatServer(socketio.AsyncServer):
    def __init__(self, *args: Any, origin_policy: OriginPolicy | None = None, **kwargs: Any) -> None:
        # engine.io checks the Origin of every browser request (cors_allowed_origins None: on),
        # and answers without Access-Control-Allow-Credentials: the chat uses no cookies
        kwargs.setdefault("cors_allowed_origins", None)
        kwargs.setdefault("cors_credentials", False)
        super().__init__(*args, **kwargs)
        self.eio.origin_policy = origin_policy or OriginPolicy()

    def _engineio_server_class(self) -> type:
        return GuardedEngineIO

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
