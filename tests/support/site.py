"""A business's own web site on another origin, embedding the web chat the two ways a business can.

`ThirdPartySite` is a small aiohttp server on 127.0.0.1 at a port of its own (so another origin
than the gateway's), serving:

- `/rasa-webchat.html`: the published rasa-webchat widget (1.0.1, its npm package's bundle,
  vendored in tests/vendor/rasa-webchat/) set up as its README says, with `socketUrl` pointing at
  the gateway;
- `/embed.html`: nothing but the gateway's one script tag (`/widget/embed.js`), on a page whose own
  CSS is hostile (it styles every button and every element), to see that no CSS leaks either way.

The stack's gateway allows this origin (`WEBCHAT_ORIGINS`, tests/conftest.py), and only this one.
A browser on these pages must reach nothing but loopback: `offline(context)` aborts every other
request (rasa-webchat's stylesheet asks for a web font).
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

VENDOR = Path(__file__).resolve().parents[1] / "vendor" / "rasa-webchat"

RASA_WEBCHAT_PAGE = """<!doctype html>
<html lang="nl">
<head><meta charset="utf-8"><title>Webwinkel (rasa-webchat)</title></head>
<body>
  <h1>Onze winkel</h1>
  <script src="/vendor/rasa-webchat.js"></script>
  <script>
    window.WebChat.default({
      socketUrl: %(gateway)s,
      customData: {language: "nl"},
      title: "De Webwinkel",
      params: {storage: "local"}
    }, null);
  </script>
</body>
</html>
"""

EMBED_PAGE = """<!doctype html>
<html lang="%(lang)s">
<head>
  <meta charset="utf-8"><title>Webwinkel (embedded chat)</title>
  <style>
    * { font-family: "Times New Roman", serif !important; }
    button { background: rgb(255, 0, 0) !important; border-radius: 0 !important; }
    .panel, .badge, kb-chat-widget button { display: none !important; }
    iframe { border: 5px solid rgb(0, 128, 0) !important; }
  </style>
</head>
<body>
  <h1>Onze winkel</h1>
  <button id="own-button" type="button">Bestel nu</button>
  <div class="launcher" id="own-launcher">Onze eigen "launcher"</div>
  <script src="%(gateway)s/widget/embed.js" async></script>
</body>
</html>
"""


class ThirdPartySite:
    def __init__(self, gateway: str, port: int) -> None:
        self.gateway = gateway
        self.port = port
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return self.url

    async def start(self) -> "ThirdPartySite":
        app = web.Application()

        async def rasa_webchat(request: web.Request) -> web.Response:
            return web.Response(text=RASA_WEBCHAT_PAGE % {"gateway": json.dumps(self.gateway)},
                                content_type="text/html")

        async def embed(request: web.Request) -> web.Response:
            lang = "en" if request.query.get("lang") == "en" else "nl"
            return web.Response(text=EMBED_PAGE % {"gateway": self.gateway, "lang": lang}, content_type="text/html")

        async def bundle(request: web.Request) -> web.FileResponse:
            return web.FileResponse(VENDOR / "index.js", headers={"Content-Type": "text/javascript"})

        app.router.add_get("/rasa-webchat.html", rasa_webchat)
        app.router.add_get("/embed.html", embed)
        app.router.add_get("/vendor/rasa-webchat.js", bundle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def offline(context) -> None:
    """Let a Playwright browser context reach loopback only (like the tests' Python code)."""

    async def only_loopback(route) -> None:
        host = route.request.url.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
        if host in ("127.0.0.1", "localhost", "[::1]") or route.request.url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            await route.abort()

    await context.route("**/*", only_loopback)
