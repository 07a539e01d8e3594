"""A fake of Twilio's Messages API on loopback, and helpers that build Twilio's webhook requests.

`FakeTwilio` is a real aiohttp server in its own thread with its own event loop, so it answers
while the test's loop (or a blocking call) is busy, and works from sync and async tests alike.
It checks HTTP basic auth and the fields Twilio checks, and answers like Twilio does.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from email.utils import formatdate
from typing import Any, Sequence

from aiohttp import BasicAuth, web
from twilio.request_validator import RequestValidator

BODY_LIMIT = 1600


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
         "status": status},
        status=status,
    )


_DEFAULT_CODES = {429: (20429, "Too Many Requests"), 500: (20500, "Internal Server Error"),
                  503: (20503, "Service Unavailable"), 400: (21211, "Invalid 'To' Phone Number")}


class FakeTwilio:
    """Records what the bot sends; `.messages` are the accepted ones (what customers receive)."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.base_url = ""
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._failures: list[tuple[int, int | None] | None] = []
        self._slow: list[tuple[str | None, float, bool]] = []  # (only to, seconds, then answer 504)
        self.arrived: list[dict[str, Any]] = []  # every POST when it came in, before it is answered
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- what was sent ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every POST to the Messages resource, with the HTTP status the fake answered."""
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The accepted messages (answered 201), oldest first."""
        return [r for r in self.requests if r["status"] == 201]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._slow.clear()
            self.arrived.clear()

    def fail_next(self, n: int, status: int = 503, code: int | None = None, after: int = 0) -> None:
        """Answer the next `n` POSTs with `status` (and Twilio error `code`), as in an outage;
        with `after`, only once that many more POSTs were answered normally."""
        with self._lock:
            self._failures.extend([None] * after + [(status, code)] * n)

    def hang_next(self, n: int, seconds: float = 15.0, to: str | None = None) -> None:
        """The next `n` POSTs (to `to` only, when given) get no answer for `seconds`, then 504:
        a provider that hangs (the client's timeout fires first). Recorded with status 0."""
        with self._lock:
            self._slow.extend([(to, seconds, True)] * n)

    def delay_next(self, n: int, seconds: float, to: str | None = None) -> None:
        """The next `n` POSTs (to `to`) are accepted normally, but only after `seconds`."""
        with self._lock:
            self._slow.extend([(to, seconds, False)] * n)

    async def wait_arrived(self, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        """Every POST that came in so far (answered or not), once there are `count`."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                got = [dict(r) for r in self.arrived]
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} request(s) within {timeout} s, got {len(got)}")
            await asyncio.sleep(0.02)

    async def wait_for(self, to: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        """The accepted messages to `to` (e.g. "+316..." or "whatsapp:+316..."), once there are `count`."""
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.messages if m["To"] == to]
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} message(s) to {to} within {timeout} s, got {len(got)}: "
                                     f"{[m.get('Body') or m.get('ContentVariables') for m in got]}")
            await asyncio.sleep(0.05)

    # -- the server --------------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        form = await request.post()
        record: dict[str, Any] = {
            "account_sid": request.match_info["sid"],
            "auth_user": None,
            **{k: form.get(k) for k in ("To", "From", "Body", "ContentSid", "ContentVariables")},
        }
        with self._lock:
            self.arrived.append({k: record[k] for k in ("To", "Body", "ContentSid")})
            slow = next((item for item in self._slow if item[0] in (None, record["To"])), None)
            if slow is not None:
                self._slow.remove(slow)
        if slow is not None:
            await asyncio.sleep(slow[1])
            if slow[2]:
                record["status"] = 0  # the client gave up long before: nothing was accepted
                with self._lock:
                    self._requests.append(record)
                return _error(504, 20504, "Gateway Timeout")
        response = self._answer(request, record)
        record["status"] = response.status
        with self._lock:
            self._requests.append(record)
        return response

    def _answer(self, request: web.Request, record: dict[str, Any]) -> web.Response:
        try:
            auth = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            auth = None
        record["auth_user"] = auth.login if auth else None

        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            status, code = failure
            default_code, message = _DEFAULT_CODES.get(status, (20000 + status, "Error"))
            return _error(status, code or default_code, message)

        if (auth is None or auth.login != self.account_sid or auth.password != self.auth_token
                or record["account_sid"] != self.account_sid):
            return _error(401, 20003, "Authenticate")

        if not record["To"]:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not record["From"]:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not record["Body"] and not record["ContentSid"]:
            return _error(400, 21602, "Message body is required.")
        if record["Body"] and len(record["Body"]) > BODY_LIMIT:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if record["ContentVariables"]:
            try:
                json.loads(record["ContentVariables"])
            except ValueError:
                return _error(400, 21656, "The ContentVariables Parameter is invalid.")

        sid = "SM" + secrets.token_hex(16)
        record["sid"] = sid
        now = formatdate(usegmt=True)
        return web.json_response({
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": record["Body"] or "",
            "date_created": now, "date_sent": None, "date_updated": now, "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": record["From"], "messaging_service_sid": None,
            "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid,
            "status": "queued", "to": record["To"],
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }, status=201)

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._messages)
        runner = web.AppRunner(app, access_log=None)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        except BaseException as exc:
            self._error = exc
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def start(self) -> str:
        """Start serving on 127.0.0.1 on a free port; returns the base URL (TWILIO_API_URL)."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fake-twilio", daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._error is not None:
            raise RuntimeError(f"fake Twilio did not start: {self._error!r}")
        return self.base_url

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = self._loop = None

    def __enter__(self) -> "FakeTwilio":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- building Twilio's webhook requests ------------------------------------------------------------

def signed_post_args(token: str, url: str, params: dict) -> dict[str, str]:
    """Headers for POSTing `params` (form-encoded) to `url` as Twilio would: a valid X-Twilio-Signature."""
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def inbound_params(
    from_: str,
    body: str,
    to: str,
    sid: str | None = None,
    media: Sequence[str | tuple[str, str]] = (),
    *,
    account_sid: str = "AC" + "0" * 32,
) -> dict[str, str]:
    """The form fields of Twilio's incoming-message webhook, with Twilio's field names.

    `from_`/`to` with a "whatsapp:" prefix make a WhatsApp message; `media` items are URLs or
    (URL, content type) pairs.
    """
    sid = sid or "SM" + secrets.token_hex(16)
    params = {
        "ToCountry": "NL", "ToState": "", "SmsMessageSid": sid, "NumMedia": str(len(media)),
        "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": "NL", "To": to, "ToZip": "",
        "NumSegments": "1", "MessageSid": sid, "AccountSid": account_sid, "From": from_,
        "ApiVersion": "2010-04-01",
    }
    for i, item in enumerate(media):
        url, content_type = (item, "image/jpeg") if isinstance(item, str) else item
        params[f"MediaUrl{i}"] = url
        params[f"MediaContentType{i}"] = content_type
    if from_.startswith("whatsapp:"):
        for key in ("ToCountry", "ToState", "ToCity", "FromZip", "FromState", "FromCity", "FromCountry", "ToZip"):
            del params[key]
        params.update({
            "ProfileName": "Klant", "WaId": from_.removeprefix("whatsapp:+"),
            "MessageType": "image" if media else "text", "ReferralNumMedia": "0",
        })
    return params
