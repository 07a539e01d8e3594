"""An SMTP server on loopback (aiosmtpd) that records every message a customer would receive.

`FakeSMTP().start()` runs it in a thread of its own; `wait_for(address)` waits until messages to
that address arrived. A login can be required (`credentials`) and recipients refused
(`refuse`), to test the sender's answers to both.
"""

from __future__ import annotations

import asyncio
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from bot.launch.run import free_port


class FakeSMTP:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.host = "127.0.0.1"
        self.port = free_port()
        self.refused: set[str] = set()
        self._messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # -- what arrived -----------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
        self.refused.clear()

    async def wait_for(self, to: str, count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
        """The messages delivered to `to`, once there are `count`."""
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.messages if to in m["rcpt_tos"]]
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} e-mail(s) to {to} within {timeout} s, got {len(got)}")
            await asyncio.sleep(0.05)

    # -- the server -------------------------------------------------------------------------------

    async def handle_RCPT(self, server, session, envelope, address: str, rcpt_options) -> str:
        if address in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message: EmailMessage = message_from_bytes(envelope.original_content or envelope.content,
                                                   policy=policy.default)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "subject": message["Subject"],
            "from": message["From"],
            "to": message["To"],
            "headers": dict(message.items()),
            # as a mail program shows it: lines end in \n (on the wire in \r\n)
            "body": message.get_content().replace("\r\n", "\n") if not message.is_multipart() else None,
            "content_type": message.get_content_type(),
            "charset": message.get_content_charset(),
        }
        with self._lock:
            self._messages.append(record)
        return "250 Message accepted for delivery"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and self.credentials is not None
              and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)  # handled=False: 535 on failure

    def start(self) -> "FakeSMTP":
        extra: dict[str, Any] = {}
        if self.credentials is not None:
            extra = dict(authenticator=self._authenticate, auth_required=True, auth_require_tls=False)
        self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10, **extra)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def env(self, sender: str = "De Webwinkel <klantenservice@webwinkel.example>") -> dict[str, str]:
        """The gateway's settings for this server (plain SMTP on loopback: no STARTTLS)."""
        return {"SMTP_HOST": self.host, "SMTP_PORT": str(self.port), "SMTP_FROM": sender,
                "SMTP_STARTTLS": "0", "SMTP_TIMEOUT": "5"}
