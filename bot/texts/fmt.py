"""Money, dates and statuses written the way a Dutch or English customer reads them."""

from __future__ import annotations

from datetime import date, datetime

from bot.policy.hours import MONTHS
from channels import registry


def money(cents: int, language: str) -> str:
    euros, rest = divmod(abs(int(cents)), 100)
    sign = "-" if cents < 0 else ""
    if language == "en":
        return f"{sign}€{euros:,}.{rest:02d}"
    return f"{sign}€{euros:,}".replace(",", ".") + f",{rest:02d}"


def day(value: date | datetime | None, language: str) -> str:
    if value is None:
        return "?"
    if isinstance(value, datetime):
        value = value.date()
    month = MONTHS["en" if language == "en" else "nl"][value.month - 1]
    return f"{value.day} {month}"


ORDER_STATUS = {
    "placed": {"nl": "besteld, nog niet verzonden", "en": "ordered, not shipped yet"},
    "shipped": {"nl": "onderweg", "en": "on its way"},
    "delivered": {"nl": "bezorgd", "en": "delivered"},
    "cancelled": {"nl": "geannuleerd", "en": "cancelled"},
    "returned": {"nl": "geretourneerd", "en": "returned"},
}

INVOICE_STATUS = {
    "paid": {"nl": "betaald", "en": "paid"},
    "open": {"nl": "open", "en": "open"},
    "partially_paid": {"nl": "deels betaald", "en": "partly paid"},
    "overdue": {"nl": "achterstallig", "en": "overdue"},
}

CHANNEL_NAMES = registry.display_names()  # each channel's own (channels/<name>.py), for `label`


def label(table: dict, key: str, language: str) -> str:
    entry = table.get(key)
    return entry["en" if language == "en" else "nl"] if entry else key


TICKET_KINDS = {
    "complaint": {"nl": "je klacht", "en": "your complaint"},
    "delivery_problem": {"nl": "je bezorgprobleem", "en": "your delivery problem"},
    "return": {"nl": "je retour", "en": "your return"},
    "cancellation": {"nl": "je opzegging", "en": "your cancellation"},
    "waiting_request": {"nl": "je verzoek", "en": "your request"},
    "callback": {"nl": "je terugbelverzoek", "en": "your callback request"},
}
