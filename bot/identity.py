"""Identity validation for web chat: the business's own site signs the logged-in user's id.

The site computes `user_hash = HMAC-SHA256(WEBCHAT_IDENTITY_SECRET, user_id)` (hex) on its
server and passes `{user_id, user_hash}` as the widget's customData; a visitor cannot forge it.
Both come from the browser: anything that is not a plausible id and a hex digest (a number, a
list, non-ASCII, a lone surrogate, control characters) is simply not a valid login.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from bot.safe_input import clean_token

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
