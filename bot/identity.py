"""Identity validation for web chat: the business's own site signs the logged-in user's id.

The site computes `user_hash = HMAC-SHA256(WEBCHAT_IDENTITY_SECRET, user_id)` (hex) on its
server and passes `{user_id, user_hash}` as the widget's customData; a visitor cannot forge it.
"""

from __future__ import annotations

import hashlib
import hmac


def sign_web_login(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_web_login(secret: str, user_id: str, user_hash: str) -> bool:
    return bool(secret) and hmac.compare_digest(sign_web_login(secret, user_id), user_hash.lower())
