"""Identity validation for web chat: the business's own site signs the logged-in user's id.

The site computes `user_hash = HMAC-SHA256(WEBCHAT_IDENTITY_SECRET, user_id)` (hex) on its
server and passes `{user_id, user_hash}` as the widget's customData; a visitor cannot forge it.
Both come from the browser: anything that is not a plausible id and a hex digest (a number, a
list, non-ASCII, a lone surrogate, control characters) is simply not a valid login.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.shared.safe_input import clean_token
from bot.shared.settings import PROJECT_ROOT

MAX_USER_ID = 256  # characters


def sign_web_login(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_web_login(secret: str, user_id: Any, user_hash: Any) -> bool:
    if not (secret and clean_token(user_id, MAX_USER_ID) and isinstance(user_hash, str)):
        return False
    if len(user_hash) != 64 or not user_hash.isascii():
        return False
    expected = sign_web_login(secret, user_id).encode("ascii")
    return hmac.compare_digest(expected, user_hash.lower().encode("ascii"))


# -- identity levels ------------------------------------------------------------------------------
LEVELS = ("anonymous", "claimed", "verified")
CLAIMED_FIELDS = ("status", "carrier", "expected")


class IdentityConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Limit:
    attempts: int
    seconds: int


@dataclass(frozen=True)
class IdentityPolicy:
    """config/identity.yml: what each identity level may see, and the limits on proving one."""

    order_postcode: tuple[str, ...] = ("status", "carrier")
    code_seconds: int = 30 * 60
    web_session_seconds: int = 12 * 3600
    per_conversation: Limit = Limit(5, 3600)
    per_client: Limit = Limit(20, 15 * 60)
    codes_per_customer: Limit = Limit(3, 15 * 60)
    wrong_codes: int = 3

    @classmethod
    def load(cls, path: str | Path | None = None) -> "IdentityPolicy":
        from bot.policy.hours import read_yaml

        path = Path(path or os.environ.get("IDENTITY_FILE") or PROJECT_ROOT / "config" / "identity.yml")
        data = read_yaml(path, IdentityConfigError)
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "identity.yml") -> "IdentityPolicy":
        def fail(place: str, why: str) -> IdentityConfigError:
            return IdentityConfigError(f"{where}: {place}: {why}")

        def section(value: Any, place: str, keys: set[str]) -> dict[str, Any]:
            if value is None:
                return {}
            if not isinstance(value, dict):
                raise fail(place, "must be a mapping")
            unknown = set(value) - keys
            if unknown:
                raise fail(place, f"unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(keys))})")
            return value

        def whole(value: Any, place: str, low: int = 1) -> int:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise fail(place, f"must be a whole number of at least {low}")
            return value

        def limit(value: Any, place: str, count_key: str, default: Limit) -> Limit:
            if value is None:
                return default
            value = section(value, place, {count_key, "minutes"})
            if count_key not in value or "minutes" not in value:
                raise fail(place, f"needs {count_key} and minutes")
            return Limit(whole(value[count_key], f"{place}.{count_key}"), 60 * whole(value["minutes"], f"{place}.minutes"))

        top = section(data, "top level", {"claimed", "verified", "limits"})
        claimed = section(top.get("claimed"), "claimed", {"order_postcode"})
        fields = claimed.get("order_postcode", list(cls.order_postcode))
        if not isinstance(fields, list) or any(f not in CLAIMED_FIELDS for f in fields):
            raise fail("claimed.order_postcode", f"must be a list of {', '.join(CLAIMED_FIELDS)}")
        verified = section(top.get("verified"), "verified", {"code_minutes", "web_session_hours"})
        limits = section(top.get("limits"), "limits",
                         {"per_conversation", "per_client", "codes_per_customer", "wrong_codes"})
        return cls(
            order_postcode=tuple(fields),
            code_seconds=60 * whole(verified.get("code_minutes", 30), "verified.code_minutes"),
            web_session_seconds=3600 * whole(verified.get("web_session_hours", 12), "verified.web_session_hours"),
            per_conversation=limit(limits.get("per_conversation"), "limits.per_conversation", "attempts",
                                   cls.per_conversation),
            per_client=limit(limits.get("per_client"), "limits.per_client", "attempts", cls.per_client),
            codes_per_customer=limit(limits.get("codes_per_customer"), "limits.codes_per_customer", "count",
                                     cls.codes_per_customer),
            wrong_codes=whole(limits.get("wrong_codes", 3), "limits.wrong_codes"),
        )


def client_ref(value: str) -> str:
    """A client address (IP address, phone number, Telegram id) as a short one-way reference, so
    rate-limit keys and logs hold no personal data."""
    return hashlib.sha256(b"kb-client:" + value.encode("utf-8", "replace")).hexdigest()[:20]
