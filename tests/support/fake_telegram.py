"""A stand-in for the Telegram Bot API server, and builders of real Update JSON.

`FakeTelegram` is a real HTTP server (aiohttp, 127.0.0.1, a free port) in its own thread with
its own event loop, so the code under test talks to it over sockets exactly as it would to
api.telegram.org: point TELEGRAM_API_URL (Settings.telegram_api_url) at `start()`'s value.

It answers the Bot API methods python-telegram-bot calls (POST /bot<token>/<method>) like
Telegram does, including Telegram's own checks that matter to an adapter: a message text of
1..4096 characters, a caption up to 1024, callback data of 1..64 bytes (else 400 Bad Request),
a wrong token (401), a chat that blocked the bot (403), injected failures (`fail_next`).

Every call, answered or refused, is recorded as (method, params) in `.calls`; the refused ones
also as (method, params, status) in `.failures`. Form values are strings as sent, except the
ids (chat_id, user_id, message_id: int) and the JSON-valued parameters (reply_markup, entities,
... : decoded).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

from aiohttp import web

DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
BOT_USER = {
    "id": 123456789, "is_bot": True, "first_name": "Klantenservice", "username": "klantenservice_test_bot",
    "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False,
}
_JSON_PARAMS = {
    "reply_markup", "entities", "caption_entities", "reply_parameters", "link_preview_options",
    "allowed_updates", "media", "commands", "scope",
}
_INT_PARAMS = {"chat_id", "user_id", "message_id", "from_chat_id", "offset", "limit", "timeout"}
_SENDING = {"sendMessage", "sendPhoto", "sendDocument", "sendAudio", "sendVoice", "sendVideo",
            "sendSticker", "sendAnimation", "sendMediaGroup", "sendChatAction", "copyMessage",
            "forwardMessage", "editMessageText", "editMessageReplyMarkup"}


def _utf16_len(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


class FakeTelegram:
    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[tuple[str, dict[str, Any], int]] = []
        self._lock = threading.Lock()
        self._fail: list[int] = []
        self._blocked: set[int] = set()
        self._message_ids = itertools.count(1000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.base_url = ""

    # -- control ------------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; returns the base URL (the value for TELEGRAM_API_URL)."""
        self._thread = threading.Thread(target=self._serve, name="fake-telegram", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake Telegram did not start")
        if self._error:
            raise RuntimeError("fake Telegram did not start") from self._error
        return self.base_url

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        future.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None

    def fail_next(self, n: int, status: int = 502) -> None:
        """Refuse the next `n` calls (any method) with HTTP `status`."""
        with self._lock:
            self._fail.extend([status] * n)

    def block_user(self, chat_id: int | str) -> None:
        """From now on, sending to this chat gets 403 "bot was blocked by the user"."""
        with self._lock:
            self._blocked.add(int(chat_id))

    def clear(self) -> None:
        """Forget recorded calls, pending failures and blocked users."""
        with self._lock:
            self.calls.clear()
            self.failures.clear()
            self._fail.clear()
            self._blocked.clear()

    def calls_of(self, method: str, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """The params of every recorded call of `method` (to `chat_id`), answered or refused."""
        with self._lock:
            calls = list(self.calls)
        return [p for m, p in calls if m == method and (chat_id is None or str(p.get("chat_id")) == str(chat_id))]

    async def wait_for(self, method: str, chat_id: int | str | None = None, count: int = 1,
                       timeout: float = 30) -> list[dict[str, Any]]:
        """Wait until `count` calls of `method` (to `chat_id`) were recorded; returns all so far."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls_of(method, chat_id)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [m for m, _ in list(self.calls)]
                raise AssertionError(f"{count} x {method} (chat {chat_id}) not seen within {timeout}s; calls: {seen}")
            await asyncio.sleep(0.05)

    # -- the server ---------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            app = web.Application(client_max_size=60 * 1024 * 1024)
            app.router.add_route("*", "/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            host, port = self._runner.addresses[0][:2]
            self.base_url = f"http://{host}:{port}"
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
                return params
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = {"filename": value.filename, "size": len(value.file.read())}
                else:
                    params[key] = value
        for key, value in list(params.items()):
            if not isinstance(value, str):
                continue
            if key in _INT_PARAMS:
                try:
                    params[key] = int(value)
                except ValueError:
                    pass
            elif key in _JSON_PARAMS:
                try:
                    params[key] = json.loads(value)
                except ValueError:
                    pass
        return params

    @staticmethod
    def _error_response(status: int, description: str, **extra: Any) -> web.Response:
        body = {"ok": False, "error_code": status, "description": description, **extra}
        return web.json_response(body, status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        parts = path.split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self._error_response(404, "Not Found")
        token, method = parts[0][3:], parts[1]
        params = await self._params(request)
        with self._lock:
            self.calls.append((method, params))
        if token != self.token:
            return self._refuse(method, params, 401, "Unauthorized")
        with self._lock:
            status = self._fail.pop(0) if self._fail else None
            blocked = method in _SENDING and _as_int(params.get("chat_id")) in self._blocked
        if status is not None:
            descriptions = {429: "Too Many Requests: retry after 1", 502: "Bad Gateway",
                            500: "Internal Server Error", 400: "Bad Request"}
            extra = {"parameters": {"retry_after": 1}} if status == 429 else {}
            return self._refuse(method, params, status, descriptions.get(status, "Error"), **extra)
        if blocked:
            return self._refuse(method, params, 403, "Forbidden: bot was blocked by the user")
        answer = getattr(self, "_m_" + method, None)
        if answer is None:
            return self._refuse(method, params, 404, "Not Found")
        problem = self._check(method, params)
        if problem:
            return self._refuse(method, params, 400, f"Bad Request: {problem}")
        return web.json_response({"ok": True, "result": answer(params)})

    def _refuse(self, method: str, params: dict[str, Any], status: int, description: str,
                **extra: Any) -> web.Response:
        with self._lock:
            self.failures.append((method, params, status))
        return self._error_response(status, description, **extra)

    @staticmethod
    def _check(method: str, params: dict[str, Any]) -> str | None:
        """Telegram's own checks that an adapter must respect."""
        if method in _SENDING and method != "sendMediaGroup" and _as_int(params.get("chat_id")) is None:
            return "chat_id is empty"
        if method == "sendMessage":
            text = params.get("text") or ""
            if not text.strip():
                return "message text is empty"
            if _utf16_len(text) > 4096:
                return "message is too long"
        if method == "sendPhoto" and _utf16_len(params.get("caption") or "") > 1024:
            return "message caption is too long"
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode("utf-8")) <= 64:
                        return "BUTTON_DATA_INVALID"
                    if not button.get("text"):
                        return "text buttons are unallowed in the inline keyboard"
        return None

    # -- Bot API methods ----------------------------------------------------------------------

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = _as_int(params.get("chat_id"))
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Klant"},
            "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")},
            **content,
        }
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # Telegram echoes inline keyboards only
        return message

    def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(BOT_USER)

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, text=params["text"])

    def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        photo = [
            {"file_id": f"AgACAgQAAxkDAAI{n}", "file_unique_id": f"AQAD{n}", "width": w, "height": w, "file_size": w * 40}
            for n, w in ((1, 90), (2, 320), (3, 800))
        ]
        content: dict[str, Any] = {"photo": photo}
        if params.get("caption"):
            content["caption"] = params["caption"]
        return self._message(params, **content)

    def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        return True

    def _m_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    def _m_logOut(self, params: dict[str, Any]) -> bool:
        return True


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- builders of the Update JSON Telegram POSTs to a webhook ----------------------------------

def _user(user_id: int, language_code: str | None = "nl", first_name: str = "Sanne") -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name, "last_name": "de Vries"}
    if language_code:
        user["language_code"] = language_code
    return user


def _private_chat(user_id: int, first_name: str = "Sanne") -> dict[str, Any]:
    return {"id": user_id, "first_name": first_name, "last_name": "de Vries", "type": "private"}


def _message(user_id: int, message_id: int | None, language_code: str | None, **content: Any) -> dict[str, Any]:
    return {
        "message_id": message_id if message_id is not None else 500 + user_id % 1000,
        "from": _user(user_id, language_code),
        "chat": _private_chat(user_id),
        "date": int(time.time()),
        **content,
    }


def _text_content(text: str) -> dict[str, Any]:
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        command = text.split()[0]
        content["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
    return content


def text_update(update_id: int, user_id: int, text: str, language_code: str | None = "nl",
                message_id: int | None = None) -> dict[str, Any]:
    """A private text message (commands such as /start carry their bot_command entity)."""
    return {"update_id": update_id, "message": _message(user_id, message_id, language_code, **_text_content(text))}


def edited_update(update_id: int, user_id: int, text: str, language_code: str | None = "nl",
                  message_id: int | None = None) -> dict[str, Any]:
    """An edit of an earlier message: same message_id, a new update_id and an edit_date."""
    message = _message(user_id, message_id, language_code, **_text_content(text))
    message["edit_date"] = message["date"] + 5
    message["date"] -= 60
    return {"update_id": update_id, "edited_message": message}


def callback_update(update_id: int, user_id: int, data: str, message_text: str = "Waarmee kan ik je helpen?",
                    language_code: str | None = "nl", query_id: str | None = None) -> dict[str, Any]:
    """A press of an inline button under one of the bot's messages."""
    bot_message = {
        "message_id": 900 + user_id % 100,
        "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")},
        "chat": _private_chat(user_id),
        "date": int(time.time()) - 30,
        "text": message_text,
        "reply_markup": {"inline_keyboard": [[{"text": "Knop", "callback_data": data}]]},
    }
    return {
        "update_id": update_id,
        "callback_query": {
            "id": query_id or f"{user_id}{update_id}",
            "from": _user(user_id, language_code),
            "message": bot_message,
            "chat_instance": f"-{user_id * 7 + 13}",
            "data": data,
        },
    }


def contact_update(update_id: int, user_id: int, phone: str, contact_user_id: int | None = None,
                   language_code: str | None = "nl") -> dict[str, Any]:
    """A shared contact; by default the sender's own (what the request_contact button sends).

    Telegram sends the phone number without "+" for the sender's own number.
    """
    contact = {"phone_number": phone, "first_name": "Sanne", "last_name": "de Vries",
               "user_id": user_id if contact_user_id is None else contact_user_id}
    return {"update_id": update_id, "message": _message(user_id, None, language_code, contact=contact)}


def photo_update(update_id: int, user_id: int, caption: str | None = None,
                 language_code: str | None = "nl", file_id: str = "AgACAgQAAxkBAAIBZ2photo") -> dict[str, Any]:
    """A photo (Telegram sends it in three sizes; the last is the largest)."""
    sizes = [
        {"file_id": f"{file_id}-s", "file_unique_id": "AQADs", "file_size": 1200, "width": 90, "height": 68},
        {"file_id": f"{file_id}-m", "file_unique_id": "AQADm", "file_size": 15000, "width": 320, "height": 240},
        {"file_id": file_id, "file_unique_id": "AQADl", "file_size": 70000, "width": 1280, "height": 960},
    ]
    content: dict[str, Any] = {"photo": sizes}
    if caption:
        content["caption"] = caption
    return {"update_id": update_id, "message": _message(user_id, None, language_code, **content)}


def voice_update(update_id: int, user_id: int, language_code: str | None = "nl",
                 file_id: str = "AwACAgQAAxkBAAIBvoice") -> dict[str, Any]:
    voice = {"file_id": file_id, "file_unique_id": "AgADvoice", "duration": 4,
             "mime_type": "audio/ogg", "file_size": 9000}
    return {"update_id": update_id, "message": _message(user_id, None, language_code, voice=voice)}


def location_update(update_id: int, user_id: int, language_code: str | None = "nl") -> dict[str, Any]:
    return {"update_id": update_id,
            "message": _message(user_id, None, language_code, location={"latitude": 52.37, "longitude": 4.89})}


def group_text_update(update_id: int, user_id: int, chat_id: int, text: str) -> dict[str, Any]:
    """A message in a group the bot was added to."""
    message = _message(user_id, None, "nl", text=text)
    message["chat"] = {"id": chat_id, "title": "Familie", "type": "group", "all_members_are_administrators": True}
    return {"update_id": update_id, "message": message}


def my_chat_member_update(update_id: int, user_id: int, status: str = "kicked") -> dict[str, Any]:
    """The customer blocked ("kicked") or unblocked ("member") the bot."""
    now = int(time.time())
    bot = {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")}
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": _private_chat(user_id),
            "from": _user(user_id),
            "date": now,
            "old_chat_member": {"user": bot, "status": "member"},
            "new_chat_member": {"user": bot, "status": status, **({"until_date": 0} if status == "kicked" else {})},
        },
    }


def channel_post_update(update_id: int, chat_id: int = -1001234567890, text: str = "Nieuws") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "channel_post": {
            "message_id": 77,
            "sender_chat": {"id": chat_id, "title": "Nieuws", "type": "channel"},
            "chat": {"id": chat_id, "title": "Nieuws", "type": "channel"},
            "date": int(time.time()),
            "text": text,
        },
    }
