"""Money, dates and statuses written the way a Dutch or English customer reads them.

`money` is the one money formatter of the project (the bot's texts, the desk's record and
decisions, the mandate's and churn's reasons): "€1.234,50" in Dutch, "€1,234.50" in English.
The labels below are what a CUSTOMER reads; what an agent reads in the desk is
bot/desk/texts.py LABELS.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from bot.policy.hours import MONTHS


def money(cents: int | Decimal, language: str) -> str:
    """An amount in cents (a Decimal may hold fractions: rounded half up) as text; a language
    other than "en" is written the Dutch way."""
    value = (Decimal(cents) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    text = f"{abs(value):,.2f}"
    if language != "en":
        text = text.translate(str.maketrans(",.", ".,"))
    return ("-" if value < 0 else "") + "€" + text


def euros(amount: Decimal | int | str, language: str) -> str:
    """An amount in euros (Decimal("12.5")) as text, like `money`."""
    return money(Decimal(str(amount)) * 100, language)


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



YES_NO = {"yes": {"nl": "ja", "en": "yes"}, "no": {"nl": "nee", "en": "no"}}

LANGUAGE_NAMES = {"nl": {"nl": "Nederlands", "en": "Nederlands"}, "en": {"nl": "English", "en": "English"}}

PREFERENCE_NAMES = {  # what a customer can change about how we reach them
    "email": {"nl": "je e-mailadres", "en": "your email address"},
    "phone": {"nl": "je telefoonnummer", "en": "your phone number"},
    "preferred_channel": {"nl": "je voorkeurskanaal", "en": "your preferred channel"},
    "language": {"nl": "je taal", "en": "your language"},
    "consent_proactive": {"nl": "berichten van ons", "en": "messages from us"},
}

ROLE_NAMES = {  # how the bot and a colleague's message name a role to the customer
    "agent": {"nl": "medewerker", "en": "colleague"},
    "senior_agent": {"nl": "senior medewerker", "en": "senior colleague"},
    "supervisor": {"nl": "teamleider", "en": "supervisor"},
}


def role_name(role: str, language: str) -> str:
    """A role as the customer reads it; a role without a name: its code without underscores."""
    return label(ROLE_NAMES, role, language) if role in ROLE_NAMES else role.replace("_", " ")


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
