"""Configuration, read from the environment only (secrets included)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from bot.shared.forwarded import parse_networks

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _int(name: str, default: int, environ: Mapping[str, str] = os.environ) -> int:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


def _origins(raw: str) -> tuple[str, ...]:
    """WEBCHAT_ORIGINS: comma-separated origins (`https://shop.example`, `http://localhost:3000`),
    or `*` alone for any site (tests only). Each is a scheme and a host (and a port), nothing more."""
    parts = tuple(p.strip().rstrip("/") for p in raw.split(",") if p.strip())
    if parts == ("*",):
        return parts
    out = []
    for part in parts:
        parsed = urlparse(part)
        try:
            port_ok = parsed.port is None or 0 < parsed.port < 65536
        except ValueError:
            port_ok = False
        if (parsed.scheme not in ("http", "https") or not parsed.hostname or not port_ok or parsed.path
                or parsed.query or parsed.fragment or parsed.username or parsed.password or part == "*"):
            raise SystemExit(f"WEBCHAT_ORIGINS: {part!r} is not an origin such as https://shop.example "
                             "(or `*` alone, for tests)")
        out.append(f"{parsed.scheme}://{parsed.netloc.lower()}")
    return tuple(dict.fromkeys(out))


def _flag(name: str, default: bool, environ: Mapping[str, str] = os.environ) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be 1 or 0, got {raw!r}")


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    db: int
    password: str

    @classmethod
    def parse(cls, url: str) -> "RedisAddress":
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss"):
            raise SystemExit(f"REDIS_URL must start with redis://, got {url!r}")
        db = (parsed.path or "/0").lstrip("/") or "0"
        return cls(parsed.hostname or "127.0.0.1", parsed.port or 6379, int(db), parsed.password or "")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class Settings:
    redis_url: str
    key_prefix: str = "kb"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    rasa_timeout: float = 30.0
    host: str = "127.0.0.1"
    port: int = 8080
    dev_outbox: bool = False
    trusted_proxies: tuple = ()  # networks whose X-Forwarded-For/-Proto are believed (bot.shared.forwarded)
    max_message_bytes: int = 4096
    static_dir: Path = PROJECT_ROOT / "channels" / "static"
    public_base_url: str = ""
    webchat_identity_secret: str = ""
    # sites that may embed the web chat (socket.io origin guard and the chat page's frame-ancestors,
    # channels/socketio_guard.py); () = the gateway's own origin only, ("*",) = any site (tests only)
    webchat_origins: tuple = ()
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_sms_number: str = ""
    twilio_whatsapp_number: str = ""
    twilio_whatsapp_template_sid: str = ""
    twilio_api_url: str = "https://api.twilio.com"
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_bot_username: str = ""  # for t.me links (one-time link codes); without it, the code alone
    telegram_api_url: str = "https://api.telegram.org"
    action_endpoint_url: str = ""  # Rasa's action endpoint; its /health is checked before a turn
    webhook_concurrency: int = 64  # webhook requests handled at once (channels/base.py BackgroundTasks)
    # e-mail (channels/email.py): off without SMTP_HOST and SMTP_FROM
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""            # "De Webwinkel <klantenservice@example.nl>" or an address alone
    smtp_starttls: bool = True     # STARTTLS required (port 587); SMTP_TLS=1 for TLS from the start (465)
    smtp_tls: bool = False
    smtp_timeout: float = 10.0     # seconds for each step (connect, each command)

    @property
    def action_health_url(self) -> str:
        url = self.action_endpoint_url.rstrip("/")
        if not url:
            return ""
        return (url[: -len("/webhook")] if url.endswith("/webhook") else url) + "/health"

    @property
    def twilio_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.public_base_url
                    and (self.twilio_sms_number or self.twilio_whatsapp_number))

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token and self.telegram_webhook_secret)

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_from)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """From the environment (`environ`: another mapping, e.g. to tell which channels are on)."""
        environ = os.environ if environ is None else environ
        redis_url = environ.get("REDIS_URL")
        if not redis_url:
            raise SystemExit("REDIS_URL is not set (make run starts an embedded Redis and sets it)")
        token = environ.get("RASA_TOKEN")
        if not token:
            raise SystemExit("RASA_TOKEN is not set")
        prefix = environ.get("KEY_PREFIX", "kb")
        if not prefix.isalnum():
            raise SystemExit("KEY_PREFIX must be letters and digits only")
        return cls(
            redis_url=redis_url,
            key_prefix=prefix,
            rasa_url=environ.get("RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
            rasa_token=token,
            rasa_timeout=float(environ.get("RASA_TIMEOUT", "30")),
            host=environ.get("GATEWAY_HOST", "127.0.0.1"),
            port=_int("GATEWAY_PORT", 8080, environ),
            dev_outbox=environ.get("DEV_OUTBOX", "0") == "1",
            trusted_proxies=parse_networks(environ.get("TRUSTED_PROXIES", "")),
            public_base_url=environ.get("PUBLIC_BASE_URL", "").rstrip("/"),
            webchat_identity_secret=environ.get("WEBCHAT_IDENTITY_SECRET", ""),
            webchat_origins=_origins(environ.get("WEBCHAT_ORIGINS", "")),
            twilio_account_sid=environ.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=environ.get("TWILIO_AUTH_TOKEN", ""),
            twilio_sms_number=environ.get("TWILIO_SMS_NUMBER", ""),
            twilio_whatsapp_number=environ.get("TWILIO_WHATSAPP_NUMBER", "").removeprefix("whatsapp:"),
            twilio_whatsapp_template_sid=environ.get("TWILIO_WHATSAPP_TEMPLATE_SID", ""),
            twilio_api_url=environ.get("TWILIO_API_URL", "https://api.twilio.com").rstrip("/"),
            telegram_bot_token=environ.get("TELEGRAM_BOT_TOKEN", ""),
            telegram_webhook_secret=environ.get("TELEGRAM_WEBHOOK_SECRET", ""),
            telegram_bot_username=environ.get("TELEGRAM_BOT_USERNAME", "").removeprefix("@"),
            telegram_api_url=environ.get("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/"),
            action_endpoint_url=environ.get("ACTION_ENDPOINT_URL", ""),
            webhook_concurrency=max(1, _int("WEBHOOK_CONCURRENCY", 64, environ)),
            smtp_host=environ.get("SMTP_HOST", ""),
            smtp_port=_int("SMTP_PORT", 465 if _flag("SMTP_TLS", False, environ) else 587, environ),
            smtp_user=environ.get("SMTP_USER", ""),
            smtp_password=environ.get("SMTP_PASSWORD", ""),
            smtp_from=environ.get("SMTP_FROM", ""),
            smtp_starttls=_flag("SMTP_STARTTLS", not _flag("SMTP_TLS", False, environ), environ),
            smtp_tls=_flag("SMTP_TLS", False, environ),
            smtp_timeout=float(environ.get("SMTP_TIMEOUT", "10")),
        )
