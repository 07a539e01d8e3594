"""The web chat for any site: the chat page, and the one script tag that embeds it.

    <script src="https://bot.example/widget/embed.js" async></script>

`GET /widget/embed.js` (channels/static/embed.js, with the launcher's texts from
bot/texts/messages.py filled in) adds a launcher button to the page, in a shadow root of its own
element (no CSS leaks in or out), with a badge counting the bot's and agents' messages that
arrive while the chat is closed; a click opens the chat page (`/?embed=1`) in a frame over the
page. The frame tells the page about new messages and the close button with `postMessage` (to the
page's origin only; the script only listens to the gateway's origin). Optional attributes on the
tag: `data-lang="en"` (else the page's `<html lang>`, else the browser's language).

`GET /` is the chat page. Who may put it in a frame is WEBCHAT_ORIGINS (channels/socketio_guard.py
`OriginPolicy`, the same list that may connect to the socket.io endpoint): its
`Content-Security-Policy: frame-ancestors` names them; without the setting only the gateway's own
pages may frame it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aiohttp import web

from bot.gateway.keys import SETTINGS
from bot.shared import language
from bot.texts import messages
from channels.socketio_guard import OriginPolicy

EMBED_PATH = "/widget/embed.js"
EMBED_CACHE = "public, max-age=600"    # a site's visitors get a new version within ten minutes
PAGE_CACHE = "no-cache"
CONFIG_MARK = "/*KB_CONFIG*/null"      # where embed.js gets its texts
LABELS = ("widget_open", "widget_close", "widget_unread_one", "widget_unread_many", "widget_frame_title")


def embed_script(static_dir: Path) -> bytes:
    """channels/static/embed.js with the launcher's texts in Dutch and English."""
    source = (static_dir / "embed.js").read_text(encoding="utf-8")
    config = {lang: {key: messages.text(key, lang, count="{count}") for key in LABELS}
              for lang in language.SUPPORTED}
    if CONFIG_MARK not in source:
        raise SystemExit(f"{static_dir / 'embed.js'} has no {CONFIG_MARK} for its texts")
    # "</" never closes anything in a script file, but keep the JSON inert anyway
    return source.replace(CONFIG_MARK, json.dumps({"texts": config}, ensure_ascii=False).replace("</", "<\\/")
                          ).encode("utf-8")


def add_routes(app: web.Application) -> None:
    settings = app[SETTINGS]
    origins = OriginPolicy.from_settings(settings)
    page = settings.static_dir / "index.html"
    body = embed_script(settings.static_dir)
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'

    async def chat_page(request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(page)
        response.headers["Content-Security-Policy"] = origins.frame_ancestors()
        response.headers["Cache-Control"] = PAGE_CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        return response

    async def embed(request: web.Request) -> web.Response:
        headers = {"Cache-Control": EMBED_CACHE, "ETag": etag, "X-Content-Type-Options": "nosniff",
                   "Cross-Origin-Resource-Policy": "cross-origin"}
        if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="text/javascript", charset="utf-8", headers=headers)

    app.router.add_get("/", chat_page)
    app.router.add_get(EMBED_PATH, embed)
