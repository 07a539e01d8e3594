"""A developer's view of messages waiting for delivery (one-time codes, updates).

Until real channels deliver them (WhatsApp, SMS, Telegram), this page plays the customer's
phone in a local demo. Served only when DEV_OUTBOX=1 (make run sets it for the demo shop).
"""

from __future__ import annotations

import html

from aiohttp import web

from bot.records.repository import Records

RECORDS = web.AppKey("records", Records)


async def outbox_page(request: web.Request) -> web.Response:
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
    return web.Response(text=body, content_type="text/html")
