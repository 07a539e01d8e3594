"""Demo records for "De Webwinkel": customers, orders, invoices, loyalty, tickets, decisions.

    counts = await load_demo(engine)                 # once; a second call changes nothing
    counts = await load_demo(engine, reset=True)     # empty EVERY records table, then load again

Deterministic: the same `today` gives the same data (hand-written personas, products picked
with a seeded random). Every date is relative to `today`, so a late delivery is late whenever
the demo is loaded. The personas and what to demo with them: docs/demo-data.md.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.feedback.survey import week_start  # an anonymous answer keeps only its week
from bot.policy.churn import local_today, refresh
from bot.policy.clock import local_zone
from bot.records.models import (
    Base, ChurnScore, ContactEvent, ContactIdentity, Customer, Decision, Feedback, Invoice, LoyaltyAccount, Order,
    OrderLine, Payment, Promise, Reward, Survey, Ticket,
)

SEED = 6  # with this seed only the customers meant to show churn signals show them (tested)

# --------------------------------------------------------------------------------- catalogue

# sku -> (description, unit price in cents); what De Webwinkel sells
PRODUCTS: dict[str, tuple[str, int]] = {
    "TEL-HOES-01": ("Telefoonhoesje", 1995),
    "KAB-USBC-2M": ("Oplaadkabel USB-C 2 m", 1500),
    "OORD-BT-20": ("Draadloze oordopjes", 7495),
    "LAD-USBC-20W": ("USB-C snellader 20 W", 2495),
    "PWR-10K": ("Powerbank 10.000 mAh", 2995),
    "SCR-GLAS-01": ("Screenprotector van gehard glas", 1295),
    "SPK-BT-MINI": ("Bluetooth-speaker mini", 4995),
    "STOF-ROBOT-C": ("Robotstofzuiger Compact", 24900),
    "LAMP-WAND-N": ("Wandlamp Nordic", 5900),
    "KAARS-SET-3": ("Geurkaarsen, set van 3", 1225),
    "NOTI-A5-L": ("Notitieboek A5 gelinieerd", 750),
    "KOF-MOLEN-E": ("Elektrische koffiemolen", 3995),
    "WKO-17L-RVS": ("Waterkoker 1,7 liter RVS", 3495),
    "AIRF-4L": ("Airfryer 4 liter", 8995),
    "PAN-SET-3": ("Pannenset 3-delig, inductie", 12995),
    "MES-KOKS-20": ("Koksmes 20 cm", 4495),
    "BUR-STOEL-E": ("Ergonomische bureaustoel", 27900),
    "MON-ARM-DUO": ("Monitorarm dubbel", 8995),
    "TOETS-DRL-NL": ("Draadloos toetsenbord, NL-indeling", 3995),
    "MUIS-DRL": ("Draadloze muis", 1995),
    "PAP-A4-500": ("Printpapier A4, 500 vel", 699),
    "LED-E27-4": ("Ledlampen E27, 4 stuks", 1495),
    "STEKK-SLIM": ("Slimme stekker", 1795),
    "DEURBEL-V": ("Videodeurbel", 11995),
    "PLAID-FLE": ("Fleece plaid", 2495),
    "HDK-SET-4": ("Handdoekenset 4-delig", 3495),
    "BORD-SET-6": ("Dinerborden, set van 6", 3995),
    "TV-BEUG-55": ("Tv-muurbeugel 32-55 inch", 4995),
    "RUGZ-LAP-15": ("Laptoprugzak 15,6 inch", 5495),
    "STRIJK-ST": ("Stoomstrijkijzer", 4495),
    "ESPR-APP": ("Espressoapparaat", 32900),
    "KOF-BON-1KG": ("Koffiebonen 1 kg", 1895),
    "SOUNDBAR-31": ("Soundbar 3.1 met subwoofer", 21900),
    "KOEL-MINI-45": ("Minikoelkast 45 liter", 22900),
}

# order sizes: which products, and how many lines
SMALL = ["TEL-HOES-01", "KAB-USBC-2M", "SCR-GLAS-01", "KAARS-SET-3", "NOTI-A5-L", "MUIS-DRL",
         "PAP-A4-500", "LED-E27-4", "STEKK-SLIM", "KOF-BON-1KG"]
MEDIUM = ["LAD-USBC-20W", "PWR-10K", "SPK-BT-MINI", "LAMP-WAND-N", "KOF-MOLEN-E", "WKO-17L-RVS",
          "MES-KOKS-20", "TOETS-DRL-NL", "PLAID-FLE", "HDK-SET-4", "BORD-SET-6", "TV-BEUG-55",
          "RUGZ-LAP-15", "STRIJK-ST", "OORD-BT-20", "AIRF-4L", "PAN-SET-3", "MON-ARM-DUO", "DEURBEL-V"]
LARGE = ["STOF-ROBOT-C", "BUR-STOEL-E", "ESPR-APP", "SOUNDBAR-31", "KOEL-MINI-45"]  # €200+ each

REWARDS = [  # code, name_nl, name_en, points_cost, min_tier: rewards that give a direct advantage
    ("GRATIS-VERZ", "Gratis verzending op je volgende bestelling", "Free shipping on your next order", 150, "bronze"),
    ("KORTING-5", "€5 korting op je volgende bestelling", "€5 off your next order", 250, "bronze"),
    ("CADEAUVERP", "Gratis cadeauverpakking", "Free gift wrapping", 100, "bronze"),
    ("KORTING-10", "€10 korting op je volgende bestelling", "€10 off your next order", 450, "silver"),
    ("RETOUR-HUIS", "Gratis retour: we halen het thuis op", "Free return: we collect it at your home", 200, "silver"),
    ("VROEG-SALE", "Twee dagen eerder toegang tot de uitverkoop", "Early access to the sale, two days ahead",
     300, "silver"),
    ("AVONDLEV", "Gratis avondlevering, een jaar lang", "Free evening delivery for a year", 600, "gold"),
    ("VOORRANG", "Voorrang bij de klantenservice", "Priority at customer service", 500, "gold"),
]


# --------------------------------------------------------------------------------- specs

@dataclass
class O:
    """An order in the demo: `days` = placed that many days before today."""

    days: int
    size: str = "m"                     # s (< €25), m, l (€200+) ; ignored when `lines` is given
    number: str | None = None
    lines: list[tuple[str, int]] | None = None   # (sku, quantity)
    status: str | None = None           # None: from the age (placed / shipped / delivered)
    carrier: str | None = None
    promised: int | None = None         # promised_date = today + promised (negative: in the past)
    delivered: int | None = None        # delivered_at = today - delivered
    invoice: str = "paid"               # paid, open, overdue, partial, late, none
    invoice_number: str | None = None
    due: int | None = None              # due_date = today + due (default: issued + payment term)
    paid_days: int | None = None        # payment date = today - paid_days (late/partial)
    paid_part: int | None = None        # partial: paid cents


@dataclass
class C:
    number: str
    name: str
    email: str
    phone: str
    postcode: str
    channel: str
    language: str = "nl"
    consent: bool = True
    segment: str = "regular"
    telegram: str | None = None
    web: str | None = None
    created: int = 700                  # customer since today - created days
    points: int = 0
    tier: str = "bronze"
    orders: list[O] = field(default_factory=list)
    note: str = ""                      # what to demo (docs/demo-data.md)


def _every(start: int, step: int, count: int, size: str = "m") -> list[O]:
    return [O(start + i * step, size) for i in range(count)]


CUSTOMERS: list[C] = [
    # -- the fixed personas (tests and other code rely on these exact values) --------------
    C("K10001", "Sanne de Vries", "sanne.devries@example.nl", "+31612345601", "1012 AB", "whatsapp",
      segment="gold", created=900, points=1250, tier="gold",
      orders=[O(6, number="104233", lines=[("OORD-BT-20", 1), ("KAB-USBC-2M", 1)], status="shipped",
                carrier="PostNL", promised=-2),
              O(14, number="104100", lines=[("TEL-HOES-01", 1)], status="delivered", carrier="PostNL",
                promised=-10, delivered=10),
              O(45), O(80, "l"), O(120), O(170), O(210, "l"), O(250), O(300), O(340)],
      note="Late order 104233 (PostNL, promised 2 days ago): where is my order, compensation. "
           "Order 104100 (€19.95, delivered 10 days ago): refund within the bot's mandate. Gold, 1250 points."),
    C("K10002", "Daan Jansen", "daan.jansen@example.nl", "+31612345602", "3511 CD", "sms",
      consent=True, created=620, points=320, tier="silver",
      orders=[O(24, number="118902", lines=[("STOF-ROBOT-C", 1)], status="delivered", carrier="DHL",
                promised=-3, delivered=3, invoice="overdue", invoice_number="F2026-00102", due=-10),
              O(95), O(160, "s"), O(260)],
      note="Invoice F2026-00102 (€249.00) overdue by 10 days: payment arrangement (3 instalments "
           "of €83 fits the bot's mandate). Order 118902 delivered 3 days ago."),
    C("K10003", "Emma Clarke", "emma.clarke@example.co.uk", "+447700900123", "2511 EF", "telegram",
      language="en", telegram="700100", created=400, points=540, tier="silver",
      orders=[O(43, number="121212", lines=[("LAMP-WAND-N", 1)], status="delivered", carrier="PostNL",
                promised=-40, delivered=40),
              O(1, number="126354", lines=[("KAARS-SET-3", 2)], status="shipped", carrier="DHL", promised=2),
              O(150, "s")],
      note="English. Refund on 121212 (delivered 40 days ago) is past the bot's 30 days: goes to an agent. "
           "126354 on its way, promised in 2 days. Telegram user 700100."),
    C("K10004", "Pieter Bakker", "pieter.bakker@example.nl", "+31612345604", "9711 GH", "email",
      created=1100, points=180, tier="bronze",
      orders=[O(200, lines=[("AIRF-4L", 1)]), O(228), O(255, invoice="late", paid_days=228, due=-241),
              O(283, "l"), O(310), O(338), O(365)],
      note="Churn risk: ordered monthly until 200 days ago, then nothing; 2 complaints in 120 days "
           "(one open), an invoice paid late."),
    C("K10005", "Olivia Smith", "olivia.smith@example.com", "+353871234567", "1017 CE", "webchat",
      language="en", consent=False, segment="new", web="web-olivia", created=5, points=15,
      orders=[O(5, number="131313", lines=[("NOTI-A5-L", 2)], status="placed", promised=1)],
      note="English, new customer (5 days): first order 131313 not shipped yet, promised tomorrow. "
           "Web login web-olivia."),
    # -- other notable customers ------------------------------------------------------------
    C("K10006", "Lotte Visser", "lotte.visser@example.nl", "+31612345606", "2011 KL", "whatsapp",
      points=410, tier="silver", created=500,
      orders=[O(4, lines=[("PLAID-FLE", 1), ("KAARS-SET-3", 1)], status="delivered", delivered=1),
              O(65, number="140650", carrier="PostNL", promised=-61, delivered=58), O(130), O(200), O(290)],
      note="Got a €10 goodwill voucher from the bot 60 days ago (order 140650 came late): "
           "another voucher is beyond the bot's once-a-year limit."),
    C("K10007", "Femke Mulder", "femke.mulder@example.nl", "+31612345607", "6811 MN", "email",
      points=260, tier="silver", created=800,
      orders=[O(120), O(190), O(215), O(240), O(270), O(300), O(330), O(355)],
      note="Churn: ordered about monthly, only once in the last 180 days (falling frequency)."),
    C("K10008", "Ruben Smit", "ruben.smit@example.nl", "+31612345608", "5611 PR", "sms",
      consent=False, points=300, tier="silver", created=650,
      orders=[O(80, lines=[("TV-BEUG-55", 1)]), O(115), O(150), O(178), O(205), O(240), O(290)],
      note="Churn: complained 75 days ago (closed 70 days ago), since then no order and no contact "
           "(silent after a complaint)."),
    C("K10009", "Anouk Meijer", "anouk.meijer@example.nl", "+31612345609", "3011 AA", "whatsapp",
      segment="gold", points=2100, tier="gold", created=1200,
      orders=_every(9, 21, 17) + [O(60, "l")],
      note="Happy gold customer: orders every three weeks, 2100 points (rewards up to gold)."),
    C("K10010", "Thomas de Boer", "thomas.deboer@example.nl", "+31612345610", "8011 BC", "telegram",
      segment="gold", telegram="700200", points=1480, tier="gold", created=950,
      orders=_every(12, 30, 12) + [O(100, "l"), O(280, "l")],
      note="Happy gold customer on Telegram (user 700200)."),
    C("K10011", "Lisa Bos", "lisa.bos@example.nl", "+31612345611", "7511 DE", "webchat",
      web="web-lisa", points=350, tier="silver", created=700,
      orders=[O(20, "s"), O(55, "s"), O(95, "s"), O(140, "s"), O(190, "l"), O(230, "m"), O(275, "l"),
              O(320, "m")],
      note="Churn: still orders, but much smaller orders than before (falling order size). Web login web-lisa."),
    C("K10012", "Jeroen Vos", "jeroen.vos@example.nl", "+31612345612", "1811 FG", "sms",
      consent=False, points=90, created=600,
      orders=[O(60, "l", invoice="overdue", due=-46), O(100, invoice="partial", due=-86, paid_days=90,
                                                            paid_part=2000), O(170), O(240)],
      note="Two overdue invoices (one partly paid, 46 and 86 days late), complained about a reminder "
           "50 days ago and went quiet: churn risk. An arrangement beyond the bot's €300 goes to an agent."),
    C("K10013", "Kantoorservice Hoekstra B.V.", "inkoop@hoekstra-kantoor.example.nl", "+31201234513",
      "1043 GR", "email", segment="business", points=0, tier="bronze", created=1000,
      orders=[O(10, lines=[("BUR-STOEL-E", 4), ("MON-ARM-DUO", 4)], status="delivered", invoice="open",
                due=20),
              O(40, lines=[("PAP-A4-500", 20), ("TOETS-DRL-NL", 5)], invoice="late", due=-10, paid_days=4),
              O(75, "l", invoice="paid"), O(130, "l"), O(190, "l"), O(250, "l")],
      note="Business customer: €200+ orders, invoices on 30 days; one open (not yet due), one paid late."),
    C("K10014", "Bloemisterij Van Dam", "info@vandam-bloemen.example.nl", "+31612345614", "2611 HJ",
      "whatsapp", segment="business", created=850,
      orders=[O(55, lines=[("BUR-STOEL-E", 2)], invoice="partial", due=-25, paid_days=18, paid_part=27900),
              O(120, "l"), O(210, "m")],
      note="Business: overdue invoice, half paid under a payment arrangement an agent granted 20 days ago."),
    C("K10015", "James O'Connor", "james.oconnor@example.ie", "+353861234515", "1073 KL", "whatsapp",
      language="en", points=220, created=300,
      orders=[O(7, lines=[("SPK-BT-MINI", 1), ("PWR-10K", 1)], status="shipped", carrier="DHL", promised=-3),
              O(70), O(160, "s")],
      note="English (Ireland). Late DHL delivery (promised 3 days ago)."),
    C("K10016", "Charlotte Davies", "charlotte.davies@example.co.uk", "+447700900216", "3512 JK", "email",
      language="en", segment="gold", points=1100, tier="gold", created=900,
      orders=_every(15, 28, 12) + [O(50, "l")],
      note="English, happy gold customer; email."),
    C("K10017", "Aoife Murphy", "aoife.murphy@example.ie", "+353871234517", "1091 AB", "telegram",
      language="en", segment="new", telegram="700300", created=20, points=45,
      orders=[O(18, status="delivered", delivered=15)],
      note="English, new customer (20 days) on Telegram (user 700300), first order delivered."),
    C("K10018", "Harry Wilson", "harry.wilson@example.co.uk", "+447700900318", "2312 CD", "sms",
      language="en", points=160, created=450,
      orders=[O(13, invoice="open", due=1), O(110), O(200, "s")],
      note="English. Waiting for a callback tomorrow 10:00 (open callback ticket); invoice due tomorrow."),
    C("K10019", "Sophie Peters", "sophie.peters@example.nl", "+31612345619", "4811 EF", "webchat",
      web="web-sophie", points=130, created=260,
      orders=[O(3, lines=[("AIRF-4L", 1)], status="shipped", carrier="PostNL", promised=1, invoice="open"),
              O(90, "s"), O(170)],
      note="Paid afterwards ('achteraf betalen'): open invoice, not yet due. Web login web-sophie."),
    C("K10020", "Bram Hendriks", "bram.hendriks@example.nl", "+31612345620", "6221 GH", "email",
      consent=False, points=70, created=900,
      orders=[O(320), O(350), O(420), O(480)],
      note="Dormant: last order 320 days ago."),
    C("K10021", "Eva van Leeuwen", "eva.vanleeuwen@example.nl", "+31612345621", "2311 JK", "whatsapp",
      points=280, tier="silver", created=500,
      orders=[O(42, lines=[("RUGZ-LAP-15", 1)], status="returned", delivered=39), O(15), O(85), O(150),
              O(220)],
      note="Returned 42-day-old order; an agent refunded €54.95 35 days ago."),
    C("K10022", "Milan Dekker", "milan.dekker@example.nl", "+31612345622", "3811 LM", "whatsapp",
      points=240, created=400,
      orders=[O(8, lines=[("DEURBEL-V", 1)], status="shipped", carrier="DPD", promised=-4), O(65), O(140)],
      note="Late DPD order (promised 4 days ago) and an open complaint whose promised answer "
           "(yesterday) was not kept."),
    C("K10023", "Julia Brouwer", "julia.brouwer@example.nl", "+31612345623", "9401 NP", "sms",
      points=190, created=500, orders=_every(11, 35, 9, "s"),
      note="Frequent small orders (< €25)."),
    C("K10024", "Sem de Wit", "sem.dewit@example.nl", "+31612345624", "5211 RS", "webchat",
      segment="new", web="web-sem", created=12, points=0,
      orders=[O(11, status="cancelled", invoice="none"), O(2, "s", status="placed", promised=1)],
      note="New customer: first order cancelled, second order placed 2 days ago."),
    C("K10025", "Noa Dijkstra", "noa.dijkstra@example.nl", "+31612345625", "8911 TU", "whatsapp",
      points=330, tier="silver", created=600,
      orders=[O(25), O(70, invoice="late", due=-56, paid_days=50), O(120), O(175), O(230), O(290)],
      note="Paid one invoice 6 days late."),
    C("K10026", "Lucas Smits", "lucas.smits@example.nl", "+31612345626", "6511 VW", "telegram",
      telegram="700400", points=210, created=350, orders=[O(35), O(90), O(150), O(260)],
      note="Telegram user 700400."),
    C("K10027", "Fleur de Graaf", "fleur.degraaf@example.nl", "+31612345627", "1401 XY", "email",
      segment="gold", points=1650, tier="gold", created=1000,
      orders=[O(16, "l"), O(50, "l"), O(85, "m"), O(125, "l"), O(165, "l"), O(210, "l"), O(260, "m"),
              O(310, "l")],
      note="Gold, large orders (€200+)."),
    C("K10028", "Jesse van der Meer", "jesse.vandermeer@example.nl", "+31612345628", "7411 AB", "sms",
      consent=False, points=120, created=420, orders=[O(33, "s"), O(100), O(190)],
      note="Regular, SMS."),
    C("K10029", "Iris van den Berg", "iris.vandenberg@example.nl", "+31612345629", "3731 CD", "webchat",
      web="web-iris", points=390, tier="silver", created=800,
      orders=[O(22), O(60), O(98), O(135), O(175), O(215), O(255)],
      note="Accepted a 10% retention discount from an agent 100 days ago and kept ordering."),
    C("K10030", "Tim Kok", "tim.kok@example.nl", "+31612345630", "2021 EF", "whatsapp",
      points=150, created=380, orders=[O(28), O(88), O(160, "s")],
      note="Regular, WhatsApp."),
    C("K10031", "Maud Jacobs", "maud.jacobs@example.nl", "+31612345631", "4331 GH", "webchat",
      segment="new", consent=False, web="web-maud", created=9, points=25,
      orders=[O(9, status="delivered", delivered=6)],
      note="New customer, web chat (web-maud)."),
    C("K10032", "Niels de Haan", "niels.dehaan@example.nl", "+31612345632", "1621 JK", "sms",
      points=460, tier="silver", created=900,
      orders=[O(13), O(48), O(96, "l"), O(144), O(200), O(260), O(305, lines=[("ESPR-APP", 1)])],
      note="Complained 300 days ago (espresso machine), resolved, kept ordering: no churn signal."),
    C("K10033", "Roos Vermeulen", "roos.vermeulen@example.nl", "+31612345633", "7311 LM", "email",
      points=200, created=550, orders=[O(38), O(105), O(180), O(250)],
      note="Regular, email."),
    C("K10034", "Café De Zwaan", "koen@cafedezwaan.example.nl", "+31612345634", "8261 NP", "whatsapp",
      segment="business", created=700,
      orders=[O(19, lines=[("KOF-BON-1KG", 12), ("ESPR-APP", 1)], invoice="open", due=11),
              O(49, lines=[("KOF-BON-1KG", 12)]), O(79, lines=[("KOF-BON-1KG", 10)]), O(140, "l")],
      note="Business (contact Koen van Dijk): coffee beans monthly; open invoice on 30 days."),
    C("K10035", "Sara Koster", "sara.koster@example.nl", "+31612345635", "9201 RS", "telegram",
      consent=False, telegram="700500", points=60, created=240, orders=[O(47, "s"), O(130)],
      note="Telegram user 700500."),
]

DEMO_QUEUES = {"complaint": "complaints", "callback": "general", "delivery_problem": "general", "return": "general"}


def _promise_history(session: AsyncSession, today: date) -> None:
    """Four weeks of waits for a person as they were told and how they ended, so the promise
    report (python -m bot.reports promises) has figures on first start. Fixed seed: the same
    rows every time."""
    rng = random.Random(12)
    for days_ago in range(28, 0, -1):
        day = today - timedelta(days=days_ago)
        if day.weekday() >= 5:
            continue
        for _ in range(rng.randint(3, 6)):
            start = datetime.combine(day, time(rng.randint(9, 15), rng.choice((0, 15, 30, 45))),
                                     tzinfo=local_zone()).astimezone(timezone.utc)
            queue = rng.choice(("general", "general", "finance", "complaints"))
            deadline = start + timedelta(minutes=rng.choice((5, 10, 15, 20, 30)))
            roll = rng.random()
            common = dict(kind="handoff_wait", text="demo", channel=rng.choice(("webchat", "whatsapp", "sms")),
                          language=rng.choice(("nl", "nl", "en")), queue=queue, owed_by=f"queue:{queue}",
                          created_at=start)
            if roll < 0.8:
                answered = deadline - timedelta(minutes=rng.randint(0, 4))
                session.add(Promise(deadline=deadline, status="kept", settled_at=answered, answered_at=answered,
                                    **common))
            elif roll < 0.93:
                session.add(Promise(deadline=deadline, status="renewed", reason="no colleague free in time",
                                    settled_at=deadline - timedelta(minutes=2), **common))
            else:
                late = deadline + timedelta(minutes=rng.randint(3, 40))
                session.add(Promise(deadline=deadline, status="broken", reason="answered late",
                                    settled_at=late, answered_at=late, **common))


DEMO_AGENTS = ("marieke", "joost", "lisa")
QUEUE_TOPICS = {"general": ("order_status", "delivery_problem", "return"),
                "finance": ("invoice_question", "payment_arrangement", "request_refund"),
                "complaints": ("complaint",), "retention": ("cancel_contract",)}
BOT_TOPICS = ("order_status", "order_status", "delivery_problem", "return", "loyalty", "faq")
# what a customer wrote with a low or a high score, per language
UNHAPPY = {
    "nl": ["Ik moest drie keer hetzelfde uitleggen.", "Duurde veel te lang voordat iemand reageerde.",
           "Mijn pakket is nog steeds niet binnen en niemand weet waar het is.",
           "De bot begreep mijn vraag niet, ik wilde gewoon een medewerker.",
           "Beloofd teruggebeld te worden, maar er belde niemand.", "Terugbetaling duurt weken, dat is geen service.",
           "Onvriendelijk geholpen aan de telefoon."],
    "en": ["I had to explain the same thing three times.", "It took far too long before anyone answered.",
           "My parcel still hasn't arrived and nobody knows where it is.",
           "The bot did not understand me, I just wanted a person.", "Promised a callback that never came.",
           "The refund is taking weeks."],
}
HAPPY = {
    "nl": ["Snel en vriendelijk geholpen, top!", "Fijn dat ik meteen wist hoe lang het zou duren.",
           "Binnen een paar minuten opgelost.", "Prettig dat ik via WhatsApp verder kon."],
    "en": ["Quick and friendly, thanks!", "Good to know straight away how long it would take.",
           "Sorted in a few minutes."],
}


async def _feedback_history(session: AsyncSession, today: date, customers: dict[str, Customer]) -> None:
    """Four weeks of post-chat surveys and what customers answered (CES, NPS, sometimes CSAT, a
    comment; a fifth anonymously), slowly getting better, so the Reports view (docs/reports.md)
    is alive on first start. Fixed seed: the same rows every time."""
    rng = random.Random(13)
    # not Sanne (K10001): the persona every demo starts with keeps a record without surveys
    people = [customers[spec.number] for spec in CUSTOMERS if spec.number != "K10001"]
    answers: list[tuple[Survey, dict[str, Any]]] = []
    zone = local_zone()
    for days_ago in range(28, 0, -1):
        day = today - timedelta(days=days_ago)
        if day.weekday() == 6:
            continue
        for _ in range(rng.randint(2, 3) if day.weekday() == 5 else rng.randint(4, 8)):
            customer = rng.choice(people)
            by_bot = rng.random() < 0.45
            queue = None if by_bot else rng.choice(("general", "general", "finance", "complaints", "retention"))
            topic = rng.choice(BOT_TOPICS if by_bot else QUEUE_TOPICS[queue])
            channel = customer.preferred_channel if customer.preferred_channel != "email" else "whatsapp"
            sent = datetime.combine(day, time(rng.randint(9, 17), rng.randrange(0, 60, 5)), tzinfo=zone)
            roll = rng.random()
            status = ("answered" if roll < 0.64 else "expired" if roll < 0.78 else "left" if roll < 0.9
                      else "stopped" if roll < 0.95 else "failed")
            if days_ago == 1 and status == "expired":
                status = "sent"  # yesterday's: still open
            survey = Survey(customer_id=customer.id, conversation=f"demo-{days_ago}-{rng.randint(10000, 99999)}",
                            channel=channel, language=customer.language, queue=queue, topic=topic,
                            served_by="bot" if by_bot else "agent", agent=None if by_bot else rng.choice(DEMO_AGENTS),
                            trigger=rng.choice(("resolved", "quiet") if by_bot else ("close", "handback")),
                            status=status, asked_nps=rng.random() < 0.65, sent_at=sent.astimezone(timezone.utc))
            if status in ("expired", "left", "stopped"):
                survey.reminded_at = survey.sent_at + timedelta(hours=4) if status == "expired" else None
                survey.ended_at = survey.sent_at + timedelta(hours=24 if status == "expired" else 1)
            session.add(survey)
            if status != "answered":
                continue
            chance = (0.5 if queue == "complaints" else 0.72 if by_bot else 0.78) + (28 - days_ago) * 0.006
            happy = rng.random() < chance
            ces = rng.choice((5, 6, 6, 7, 7) if happy else (1, 2, 3, 3, 4))
            nps = rng.choice((8, 9, 9, 10, 10, 7) if happy else (0, 2, 4, 5, 6, 6, 7)) if survey.asked_nps else None
            csat = rng.choice((4, 5, 5) if happy else (1, 2, 3)) if rng.random() < 0.35 else None
            texts = (HAPPY if happy else UNHAPPY)[customer.language if customer.language in HAPPY else "nl"]
            comment = rng.choice(texts) if rng.random() < (0.3 if happy else 0.8) else ""
            anonymous = rng.random() < 0.2
            if not happy and not anonymous:
                # a low score that is not anonymous is a churn signal (bot/policy/churn.py): in the demo
                # only Julia Brouwer (K10023) gives those, so the other personas keep their documented signals
                customer = customers["K10023"]
                channel = customer.preferred_channel if customer.preferred_channel != "email" else "whatsapp"
                survey.customer_id, survey.language, survey.channel = customer.id, customer.language, channel
                texts = UNHAPPY[customer.language if customer.language in UNHAPPY else "nl"]
                comment = texts[len(comment) % len(texts)] if comment else ""  # in her language
            answered = survey.sent_at + timedelta(minutes=rng.randint(2, 90))
            survey.ended_at = answered
            answers.append((survey, dict(
                customer_id=None if anonymous else customer.id, conversation=None if anonymous else survey.conversation,
                ces=ces, nps=nps, csat=csat, comment=comment, channel=channel,
                queue=queue, topic=topic, served_by=survey.served_by, agent=None if anonymous else survey.agent,
                anonymous=anonymous, week="{}-W{:02d}".format(*answered.astimezone(zone).isocalendar()[:2]),
                # an anonymous answer keeps only its week (bot/feedback/survey.py): its time is the week's Monday
                created_at=week_start(answered) if anonymous else answered)))
    await session.flush()  # the surveys' ids
    for survey, answer in answers:
        session.add(Feedback(survey_id=None if answer["anonymous"] else survey.id, **answer))


# tickets: customer, kind, status, created (days ago), extra
TICKETS: list[dict[str, Any]] = [
    dict(customer="K10004", kind="complaint", status="closed", created=100, responded=99, closed=90,
         order_days=200, channel="email",
         details="Airfryer na drie maanden kapot; vraagt om reparatie of vervanging.",
         data={"topic": "defect_product"}),
    dict(customer="K10004", kind="complaint", status="open", created=12, responded=11, promised_by=1,
         order_days=200, channel="email",
         details="Gerepareerde airfryer nog steeds niet terug, al weken geen nieuws.",
         data={"topic": "repair_delay"}),
    dict(customer="K10008", kind="complaint", status="closed", created=75, responded=74, closed=70,
         order_days=80, channel="sms",
         details="Tv-muurbeugel beschadigd geleverd; vervangende beugel gestuurd.",
         data={"topic": "damaged_delivery"}),
    dict(customer="K10022", kind="complaint", status="open", created=2, responded=2, promised_by=-1,
         order_days=8, channel="whatsapp",
         details="Videodeurbel niet op de beloofde dag bezorgd, DPD-code geeft geen informatie.",
         data={"topic": "late_delivery"}),
    dict(customer="K10018", kind="callback", status="open", created=1, promised_by=1, promised_hour=10,
         channel="sms", details="Wil teruggebeld worden over de factuur (Engelstalig).",
         data={"topic": "invoice", "phone": "+447700900318", "language": "en"}),
    dict(customer="K10032", kind="complaint", status="closed", created=300, responded=299, closed=290,
         order_days=305, channel="sms", details="Espressoapparaat lekte; vervangen onder garantie.",
         data={"topic": "defect_product"}),
    dict(customer="K10021", kind="return", status="closed", created=38, responded=38, closed=35,
         order_days=42, channel="whatsapp", details="Laptoprugzak te klein, retour ontvangen.",
         data={"topic": "return"}),
    dict(customer="K10006", kind="delivery_problem", status="closed", created=60, responded=60, closed=58,
         order_days=65, channel="whatsapp", details="Bestelling 140650 drie dagen te laat.",
         data={"topic": "late_delivery"}),
    dict(customer="K10012", kind="complaint", status="closed", created=50, responded=48, closed=45,
         channel="sms", details="Vindt de betalingsherinnering onduidelijk.", data={"topic": "invoice"}),
    dict(customer="K10013", kind="request", status="answered", created=6, responded=5, channel="email",
         details="Offerte gevraagd voor 10 bureaustoelen.", data={"topic": "quote"}),
    # reach-out tasks done (bot/promises/proactive.py makes them): the churn watch-list's "what was done"
    dict(customer="K10004", kind="reach_out", status="closed", created=14, responded=13, closed=13,
         details="Vertrekrisico 80: open klacht, herhaalde klachten, al lang niet besteld",
         data={"reasons": ["Vertrekrisico 80: open klacht, herhaalde klachten, al lang niet besteld"],
               "done_by": "marieke", "note": "Gebeld: reparatie versneld, bon van €10 aangeboden."}),
    dict(customer="K10020", kind="reach_out", status="closed", created=9, responded=8, closed=8,
         details="Vertrekrisico 40: bestelt minder vaak", data={"reasons": ["Vertrekrisico 40: bestelt minder vaak"],
                                                               "done_by": "joost", "note": "Gemaild met de nieuwe collectie; geen reactie."}),
]

# decisions already granted: customer, kind, days ago, role, actor, extra
DECISIONS: list[dict[str, Any]] = [
    dict(customer="K10006", kind="goodwill_voucher", days=60, amount=1000, role="bot", actor="bot",
         order_days=65, reason="Bestelling drie dagen te laat bezorgd."),
    dict(customer="K10021", kind="refund", days=35, amount=5495, role="agent", actor="agent:marieke",
         order_days=42, reason="Retour ontvangen in goede staat."),
    dict(customer="K10014", kind="payment_arrangement", days=20, amount=55800, instalments=2, role="agent",
         actor="agent:marieke", order_days=55, reason="Factuur van €558,00 in twee termijnen."),
    dict(customer="K10029", kind="retention_discount", days=100, percent=10, role="agent", actor="agent:joost",
         reason="Overwoog over te stappen naar een andere winkel."),
    dict(customer="K10009", kind="goodwill_voucher", days=420, amount=750, role="bot", actor="bot",
         reason="Verkeerde kleur geleverd (meer dan een jaar geleden)."),
]

# contact history: customer, days ago, channel, topic, summary
CONTACTS: list[tuple[str, int, str, str, str]] = [
    ("K10001", 3, "whatsapp", "order_status", "Vroeg waar bestelling 104233 blijft."),
    ("K10001", 120, "whatsapp", "loyalty", "Vroeg naar het saldo van haar spaarpunten."),
    ("K10002", 12, "sms", "invoice", "Herinnering voor factuur F2026-00102 ontvangen, vraagt om uitstel."),
    ("K10003", 20, "telegram", "return", "Asked whether the wall lamp can still be returned."),
    ("K10004", 100, "email", "complaint", "Klacht: airfryer kapot."),
    ("K10004", 90, "email", "complaint", "Klacht afgehandeld: reparatie afgesproken."),
    ("K10004", 12, "email", "complaint", "Klacht: reparatie duurt te lang."),
    ("K10005", 4, "webchat", "order_status", "Asked when order 131313 ships."),
    ("K10006", 60, "whatsapp", "delivery", "Bestelling te laat; coulancebon van €10 gekregen."),
    ("K10008", 75, "sms", "complaint", "Klacht: beschadigde tv-muurbeugel."),
    ("K10008", 70, "sms", "complaint", "Vervangende beugel verstuurd, klacht gesloten."),
    ("K10009", 30, "whatsapp", "loyalty", "Punten ingewisseld voor gratis verzending."),
    ("K10012", 50, "sms", "complaint", "Betalingsherinnering onduidelijk."),
    ("K10013", 6, "email", "quote", "Offerte voor 10 bureaustoelen gevraagd."),
    ("K10014", 20, "whatsapp", "payment_arrangement", "Betalingsregeling in twee termijnen afgesproken."),
    ("K10015", 1, "whatsapp", "order_status", "Asked where the speaker order is."),
    ("K10018", 1, "sms", "callback", "Asked to be called back about an invoice."),
    ("K10021", 38, "whatsapp", "return", "Retour laptoprugzak aangemeld."),
    ("K10022", 2, "whatsapp", "complaint", "Klacht over te late bezorging videodeurbel."),
    ("K10029", 100, "webchat", "cancel_account", "Overwoog te stoppen; 10% behoudkorting aangeboden."),
    ("K10032", 300, "sms", "complaint", "Espressoapparaat lekt."),
]

CARRIERS = ("PostNL", "DHL", "DPD")
METHODS = ("ideal", "ideal", "ideal", "creditcard", "paypal", "bancontact")


# --------------------------------------------------------------------------------- helpers

def _at(day: date, rng: random.Random | None = None, hour: int | None = None) -> datetime:
    """A UTC time on that day, between 08:00 and 17:59 (so the Dutch date is the same day)."""
    if hour is None:
        hour = rng.randint(8, 17) if rng else 10
    minute = rng.randint(0, 59) if rng else 0
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


def _tracking(carrier: str, number: str, rng: random.Random) -> str:
    if carrier == "PostNL":
        return f"3SWEB{number}"
    if carrier == "DHL":
        return f"JVGL{number}{rng.randint(100000, 999999)}"
    return f"0534{number}{rng.randint(1000, 9999)}"


def _pick_lines(size: str, rng: random.Random) -> list[tuple[str, int]]:
    if size == "s":
        return [(rng.choice(SMALL), 1)]
    if size == "l":
        lines = [(rng.choice(LARGE), 1)]
        if rng.random() < 0.5:
            lines.append((rng.choice(SMALL), 1))
        return lines
    count = rng.choice((1, 1, 2, 2, 3))
    skus = rng.sample(MEDIUM, count)
    return [(sku, 1 if rng.random() < 0.8 else 2) for sku in skus]


def _totals(lines: list[tuple[str, int]]) -> int:
    return sum(PRODUCTS[sku][1] * qty for sku, qty in lines)


async def _counts(session: AsyncSession) -> dict[str, int]:
    tables = {
        "customers": Customer, "contact_identities": ContactIdentity, "orders": Order,
        "order_lines": OrderLine, "invoices": Invoice, "payments": Payment,
        "loyalty_accounts": LoyaltyAccount, "rewards": Reward, "tickets": Ticket,
        "decisions": Decision, "contact_history": ContactEvent, "churn_scores": ChurnScore,
        "surveys": Survey, "feedback": Feedback,
    }
    out = {}
    for name, model in tables.items():
        out[name] = (await session.execute(select(func.count()).select_from(model))).scalar_one()
    return out


async def _begin_write(session: AsyncSession) -> None:
    """Make check-then-insert one step: SQLite takes the write lock now (BEGIN IMMEDIATE, which
    also makes the whole load one real transaction); PostgreSQL locks the customers table."""
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":  # two loaders at once: the second waits, then sees customers
        await conn.exec_driver_sql("LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE")


# --------------------------------------------------------------------------------- loading

async def load_demo(engine: AsyncEngine, today: date | None = None, reset: bool = False) -> dict:
    """Load the demo records; returns {"loaded": bool, "message": str, <table>: row count, ...}.

    With customers already present and reset=False nothing is changed ("loaded": False).
    reset=True first deletes every row of every records table (audit log, outbox, ... included).
    """
    today = today or local_today()
    async with AsyncSession(engine, expire_on_commit=False) as session:
        async with session.begin():
            await _begin_write(session)
            if reset:
                for table in reversed(Base.metadata.sorted_tables):
                    await session.execute(table.delete())
            existing = (await session.execute(select(func.count()).select_from(Customer))).scalar_one()
            if existing:
                counts = await _counts(session)
                return {"loaded": False,
                        "message": f"the database already holds {existing} customers: demo data not "
                                   "loaded (use reset to replace everything with the demo)",
                        **counts}
            await _build(session, today)
    await refresh(engine, today=today)
    async with AsyncSession(engine) as session:
        counts = await _counts(session)
    return {"loaded": True, "message": f"demo data loaded for {today.isoformat()}", **counts}


async def _build(session: AsyncSession, today: date) -> None:
    rng = random.Random(SEED)
    day = lambda n: today - timedelta(days=n)  # noqa: E731

    reserved = {o.number for c in CUSTOMERS for o in c.orders if o.number}
    used: set[str] = set(reserved)

    def new_number() -> str:
        while True:
            candidate = str(rng.randint(100000, 199999))
            if candidate not in used:
                used.add(candidate)
                return candidate

    customers: dict[str, Customer] = {}
    orders_by_day: dict[tuple[str, int], Order] = {}
    invoice_plan: list[tuple[Customer, Order, O]] = []

    for spec in CUSTOMERS:
        customer = Customer(
            customer_number=spec.number, name=spec.name, email=spec.email, phone=spec.phone,
            telegram_user_id=spec.telegram, web_login_id=spec.web, postcode=spec.postcode,
            preferred_channel=spec.channel, language=spec.language, consent_proactive=spec.consent,
            segment=spec.segment, created_at=_at(day(spec.created), hour=8),
            loyalty=LoyaltyAccount(points=spec.points, tier=spec.tier),
        )
        orders = []
        for o in sorted(spec.orders, key=lambda o: -o.days):
            lines = o.lines or _pick_lines(o.size, rng)
            placed = day(o.days)
            status = o.status or ("placed" if o.days < 2 else "shipped" if o.days < 8 else "delivered")
            if o.status is None and status == "delivered" and rng.random() < 0.06:
                status = "returned"
            carrier = o.carrier or (None if status in ("placed", "cancelled") else rng.choice(CARRIERS))
            number = o.number or new_number()
            if o.promised is not None:
                promised = today + timedelta(days=o.promised)
            elif status in ("placed", "shipped"):
                promised = max(placed + timedelta(days=2), today + timedelta(days=1))
            else:
                promised = placed + timedelta(days=2)
            delivered_at = None
            if status in ("delivered", "returned"):
                delivered_day = day(o.delivered) if o.delivered is not None else placed + timedelta(
                    days=rng.choice((1, 1, 2, 2, 3)))
                delivered_at = _at(delivered_day, rng)
            order = Order(
                order_number=number, placed_at=_at(placed, rng), status=status, carrier=carrier,
                tracking_code=_tracking(carrier, number, rng) if carrier and status != "placed" else None,
                promised_date=promised, delivered_at=delivered_at, total_cents=_totals(lines),
                lines=[OrderLine(sku=sku, description=PRODUCTS[sku][0], quantity=qty,
                                 unit_price_cents=PRODUCTS[sku][1]) for sku, qty in lines],
            )
            orders.append(order)
            orders_by_day[(spec.number, o.days)] = order
            if status != "cancelled" and o.invoice != "none":
                invoice_plan.append((customer, order, o))
        customer.orders = orders
        customers[spec.number] = customer
        session.add(customer)
    await session.flush()

    # contact identities: phone (sms + whatsapp), email, telegram, web login
    for spec in CUSTOMERS:
        cid = customers[spec.number].id
        created = customers[spec.number].created_at
        pairs = [("sms", spec.phone), ("whatsapp", spec.phone), ("email", spec.email)]
        if spec.telegram:
            pairs.append(("telegram", spec.telegram))
        if spec.web:
            pairs.append(("webchat", spec.web))
        for channel, address in pairs:
            session.add(ContactIdentity(customer_id=cid, channel=channel, address=address, verified=True,
                                        created_at=created))

    # invoices and payments
    seq = 120  # F<year>-00100 .. 00119 stay free for hand-picked numbers (F2026-00102)
    for customer, order, o in sorted(invoice_plan, key=lambda t: (t[1].placed_at, t[1].order_number)):
        issued = order.placed_at.date()
        term = 30 if customer.segment == "business" else 14
        due = today + timedelta(days=o.due) if o.due is not None else issued + timedelta(days=term)
        if o.invoice_number:
            number = o.invoice_number
        else:
            number = f"F{issued.year}-{seq:05d}"
            seq += 1
        invoice = Invoice(invoice_number=number, customer_id=customer.id, order_id=order.id, issued_at=issued,
                          due_date=due, amount_cents=order.total_cents)
        method = rng.choice(METHODS)
        if o.invoice == "paid":
            invoice.payments = [Payment(paid_at=issued, amount_cents=order.total_cents, method=method)]
        elif o.invoice == "late":
            invoice.payments = [Payment(paid_at=day(o.paid_days), amount_cents=order.total_cents,
                                        method="bank_transfer")]
        elif o.invoice == "partial":
            invoice.payments = [Payment(paid_at=day(o.paid_days), amount_cents=o.paid_part,
                                        method="bank_transfer")]
        # "open" and "overdue": no payment yet (overdue = due date in the past)
        session.add(invoice)

    # rewards
    for code, name_nl, name_en, cost, tier in REWARDS:
        session.add(Reward(code=code, name_nl=name_nl, name_en=name_en, points_cost=cost, min_tier=tier))

    # tickets
    for t in TICKETS:
        customer = customers[t["customer"]]
        order = orders_by_day.get((t["customer"], t["order_days"])) if "order_days" in t else None
        created = _at(day(t["created"]), hour=9)
        promised_by = None
        if "promised_by" in t:  # a Dutch clock time (default 15:00), stored in UTC
            promised_by = datetime.combine(today + timedelta(days=t["promised_by"]),
                                           time(t.get("promised_hour", 15)), tzinfo=local_zone()
                                           ).astimezone(timezone.utc)
        ticket = Ticket(
            customer_id=customer.id, order_id=order.id if order else None, kind=t["kind"], status=t["status"],
            details=t["details"], data=t["data"], channel=t.get("channel"), created_at=created,
            promised_by=promised_by,
            first_response_at=_at(day(t["responded"]), hour=11) if "responded" in t else None,
            closed_at=_at(day(t["closed"]), hour=14) if "closed" in t else None,
        )
        session.add(ticket)
        if promised_by is not None and t["status"] == "open":
            # what the customer was told: open until the scheduler decides (bot/promises/watch.py)
            await session.flush()
            session.add(Promise(customer_id=customer.id, ticket_id=ticket.id, kind=t["kind"], status="open",
                                text=f"{t['kind']} #{ticket.id}", deadline=promised_by, channel=t["channel"],
                                language=(t["data"] or {}).get("language", "nl"), queue=DEMO_QUEUES.get(t["kind"]),
                                owed_by=f"queue:{DEMO_QUEUES.get(t['kind'], 'general')}", created_at=created))

    _promise_history(session, today)
    await _feedback_history(session, today, customers)

    # decisions already granted
    for d in DECISIONS:
        customer = customers[d["customer"]]
        order = orders_by_day.get((d["customer"], d["order_days"])) if "order_days" in d else None
        session.add(Decision(
            customer_id=customer.id, order_id=order.id if order else None, kind=d["kind"],
            amount_cents=d.get("amount"), instalments=d.get("instalments"), percent=d.get("percent"),
            role=d["role"], actor=d["actor"], reason=d["reason"], created_at=_at(day(d["days"]), hour=12),
        ))

    # contact history
    for number, days_ago, channel, topic, summary in CONTACTS:
        session.add(ContactEvent(customer_id=customers[number].id, at=_at(day(days_ago), hour=13),
                                 channel=channel, topic=topic, summary=summary))
    await session.flush()


def persona_notes() -> list[tuple[str, str, str, str]]:
    """(customer number, name, language, what to demo) for every demo customer (docs/demo-data.md)."""
    return [(c.number, c.name, c.language, c.note) for c in CUSTOMERS]


__all__ = ["CUSTOMERS", "PRODUCTS", "REWARDS", "load_demo", "persona_notes"]


def demo_database(path) -> str:
    """A migrated SQLite database at `path` with the demo web shop (tests and benchmarks).
    Synchronous: call it outside a running event loop. Returns its DATABASE_URL."""
    import asyncio
    from pathlib import Path

    from bot.shared.db import create_engine
    from bot.records.migrate import upgrade

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path}"
    upgrade(url)

    async def load() -> None:
        engine = create_engine(url)
        try:
            await load_demo(engine)
        finally:
            await engine.dispose()

    asyncio.run(load())
    return url
