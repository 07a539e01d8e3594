"""A developer's view of messages waiting for delivery (one-time codes, updates).

Until real channels deliver them (WhatsApp, SMS, Telegram), this page plays the customer's
phone in a local demo. Off unless DEV_OUTBOX=1 is set explicitly (`make run` warns when it is),
and even then only for a logged-in desk agent: `/dev/outbox` sends the browser to
`/desk/dev/outbox` (under /desk, where the desk's session cookie goes), which without a desk
session redirects to the login page like every desk page. Without the page, a local admin
reads the codes with `python -m bot.records outbox --last N`.
"""

from __future__ import annotations

import html

from aiohttp import web

from bot.gateway.keys import RECORDS

PAGE = "/desk/dev/outbox"


async def outbox_redirect(request: web.Request) -> web.Response:
    return web.Response(status=303, headers={"Location": PAGE, "Cache-Control": "no-store"})


async def outbox_page(request: web.Request) -> web.Response:
    from bot.desk import routes as desk  # imported here: the desk imports this module

    if await desk._current(request) is None:
        return desk._redirect("/desk/login")
    rows = await request.app[RECORDS].outbox(limit=30)
    items = "".join(
        f"<tr><td>{html.escape(r.created_at.strftime('%H:%M:%S'))}</td><td>{html.escape(r.channel)}</td>"
        f"<td>{html.escape(r.address)}</td><td>{html.escape(r.body)}</td></tr>"
        for r in rows
    )
    body = (
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
        "<title>Outbox (demo)</title><style>body{font-family:sans-serif;margin:2em}"
        "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}</style>"
        "<h1>Outbox: berichten naar klanten / messages to customers (demo)</h1>"
        "<p>Wat de klant op WhatsApp, sms of e-mail zou krijgen. / What the customer would receive.</p>"
        f"<table><tr><th>tijd/time (UTC)</th><th>kanaal/channel</th><th>adres/address</th><th>bericht/message</th></tr>{items}</table>"
    )
    return desk._page(body)


def add_routes(app: web.Application) -> None:
    """Only when DEV_OUTBOX=1 (Settings.dev_outbox); the page itself needs a desk login."""
    app.router.add_get("/dev/outbox", outbox_redirect)
    app.router.add_get(PAGE, outbox_page)
