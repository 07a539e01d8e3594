"""Every text of the desk backend, in Dutch and English: API errors (in the agent's ui_language),
the login page, the labels the desk shows for codes (LABELS: roles, statuses; served to the
browser by GET /desk/api/labels, so desk.js has no copy), and what the customer is told about a
decision (in the customer's language). Money: bot.texts.fmt.money, the one formatter.
"""

from __future__ import annotations

from typing import Any

from bot.policy.rules import policy
from bot.texts.fmt import money, role_name

LANGUAGES = ("nl", "en")

# error code -> (nl, en); `{...}` values are filled in by `error_text`
ERRORS: dict[str, tuple[str, str]] = {
    "not_logged_in": ("Je bent niet (meer) ingelogd.", "You are not logged in (any more)."),
    "csrf": ("De beveiligingscode (CSRF) ontbreekt of klopt niet. Laad de pagina opnieuw.",
             "The security token (CSRF) is missing or wrong. Reload the page."),
    "bad_json": ("Het verzoek is geen geldige JSON.", "The request is not valid JSON."),
    "not_object": ("Het verzoek moet een JSON-object zijn.", "The request must be a JSON object."),
    "too_large": ("Het verzoek is te groot (hooguit {limit} bytes).", "The request is too large (at most {limit} bytes)."),
    "bad_field": ("Veld '{field}' is ongeldig: {why}.", "Field '{field}' is invalid: {why}."),
    "unknown_field": ("Onbekend veld '{field}'.", "Unknown field '{field}'."),
    "empty_text": ("Het bericht is leeg.", "The message is empty."),
    "text_too_long": ("Het bericht is te lang (hooguit {limit} bytes).", "The message is too long (at most {limit} bytes)."),
    "unknown_conversation": ("Dit gesprek bestaat niet (meer).", "This conversation does not exist (any more)."),
    "not_waiting": ("Dit gesprek wacht niet (meer) op een medewerker.", "This conversation is not waiting for an agent (any more)."),
    "unknown_callback": ("Dit terugbelverzoek bestaat niet.", "This callback does not exist."),
    "callback_closed": ("Dit terugbelverzoek is al afgehandeld.", "This callback has already been handled."),
    "window_not_free": ("Dat tijdvak is niet (meer) vrij.", "That time slot is not (or no longer) free."),
    "callback_busy": ("Dit terugbelverzoek wordt net bijgewerkt; probeer het zo opnieuw.",
                      "This callback is being updated right now; try again in a moment."),
    "no_free_window": ("Er is geen vrij tijdvak meer in de komende dagen.", "There is no free time slot in the coming days."),
    "customer_unreachable": ("De klant kon niet worden bereikt; er is niets veranderd.",
                             "The customer could not be reached; nothing was changed."),
    "reports_forbidden": ("Alleen supervisors zien de rapportages.", "Only supervisors see the reports."),
    "deadline_passed": ("Die tijd is al voorbij.", "That time has already passed."),
    "not_yours": ("Dit gesprek is niet (meer) van jou.", "This conversation is not (or no longer) yours."),
    "not_eligible": ("Je mag dit gesprek niet aannemen (rol, vaardigheid of taal past niet).",
                     "You may not take this conversation (role, skill or language does not fit)."),
    "bad_target": ("Naar die rol of wachtrij kan dit gesprek niet.", "This conversation cannot go to that role or queue."),
    "unreachable": ("De klant is op dit kanaal niet (meer) te bereiken.",
                    "The customer cannot be reached on this channel (any more)."),
    "delivery_failed": ("Het bericht kon niet worden afgeleverd; probeer het opnieuw.",
                        "The message could not be delivered; try again."),
    "unavailable": ("Overdracht aan medewerkers is nu niet beschikbaar.", "Handing over to agents is not available now."),
    "unknown_decision": ("Onbekende beslissing '{decision}' (mogelijk: {known}).",
                         "Unknown decision '{decision}' (known: {known})."),
    "unknown_role": ("Onbekende rol '{role}' (mogelijk: {known}).", "Unknown role '{role}' (known: {known})."),
    "unknown_order": ("Bestelling {order} hoort niet bij deze klant.", "Order {order} does not belong to this customer."),
    "over_order_total": ("Het bedrag is hoger dan wat er van de bestelling nog terug kan ({total}).",
                         "The amount is more than what is left to refund on the order ({total})."),
    "nothing_open": ("Deze klant heeft geen openstaand bedrag; geef een bedrag op.",
                     "This customer has nothing outstanding; give an amount."),
    "no_customer": ("Dit gesprek is (nog) niet aan een klant gekoppeld.", "This conversation is not linked to a customer (yet)."),
    "busy": ("Er wordt al een beslissing voor dit gesprek verwerkt; probeer het zo nog eens.",
             "A decision for this conversation is already being processed; try again in a moment."),
    "beyond_mandate": ("Dit valt buiten je mandaat: {explanation}.", "This is beyond your mandate: {explanation}."),
    "not_found": ("Niet gevonden.", "Not found."),
    "erase_forbidden": ("Alleen een teamleider mag klantgegevens wissen.", "Only a supervisor may erase customer data."),
    "erase_confirm": ("Typ het klantnummer ter bevestiging; het klopt niet.",
                      "Type the customer number to confirm; it does not match."),
    "internal": ("Er ging iets mis aan onze kant.", "Something went wrong on our side."),
}

# reasons a field is invalid, (nl, en)
WHY: dict[str, tuple[str, str]] = {
    "required": ("verplicht", "required"),
    "text": ("moet tekst zijn", "must be text"),
    "unreadable": ("bevat tekens zonder UTF-8-vorm (zoals een losse surrogaat)",
                   "contains characters with no UTF-8 form (such as a lone surrogate)"),
    "too_long": ("te lang", "too long"),
    "positive_number": ("moet een positief getal zijn", "must be a positive number"),
    "cents": ("hooguit twee decimalen", "at most two decimals"),
    "whole_number": ("moet een positief geheel getal zijn", "must be a positive whole number"),
    "instalments": ("moet een geheel getal van {min} tot en met {max} zijn",  # config/policy.yml
                    "must be a whole number from {min} to {max}"),
    "percent": ("moet een geheel getal van 1 tot en met 100 zijn", "must be a whole number from 1 to 100"),
    "object": ("moet een object zijn", "must be an object"),
    "boolean": ("moet true of false zijn", "must be true or false"),
    "name": ("alleen letters, cijfers, _ en -", "letters, digits, _ and - only"),
    "too_large": ("te groot", "too large"),
    "choice": ("kies 1h, today of tomorrow", "choose 1h, today or tomorrow"),
    "time": ("moet een tijdstip met tijdzone zijn (ISO 8601)", "must be a moment with its offset (ISO 8601)"),
    "range": ("moet in de toekomst liggen, binnen 30 dagen", "must lie in the future, within 30 days"),
    "date": ("moet een datum zijn (JJJJ-MM-DD)", "must be a date (YYYY-MM-DD)"),
    "period": ("de eerste dag moet voor de laatste liggen, hooguit 366 dagen ervoor",
               "the first day must lie before the last, at most 366 days before it"),
    "code": ("alleen letters, cijfers en _ - . @ (served_by: bot of agent)",
             "letters, digits and _ - . @ only (served_by: bot or agent)"),
    "table": ("kies weeks, channel, queue, agent, served_by, topic, ces, comments, promises of churn",
              "choose weeks, channel, queue, agent, served_by, topic, ces, comments, promises or churn"),
}

LOGIN: dict[str, str] = {  # the login page is bilingual: it does not know the agent yet
    "title": "Klantcontact-desk · Agent desk",
    "heading": "Inloggen · Log in",
    "username": "Gebruikersnaam · Username",
    "password": "Wachtwoord · Password",
    "submit": "Inloggen · Log in",
    "failed": "Onbekende gebruikersnaam of verkeerd wachtwoord. · Unknown username or wrong password.",
    "throttled": "Te veel mislukte pogingen vanaf dit adres; probeer het over een paar minuten opnieuw. · "
                 "Too many failed attempts from this address; try again in a few minutes.",
    "csrf": "Het formulier is verlopen; probeer het opnieuw. · The form expired; please try again.",
    "logged_out": "Je bent uitgelogd. · You are logged out.",
}

# What an AGENT reads in the desk for a code: prefix -> code -> (nl, en). (What a customer reads
# is in bot/texts/fmt.py.) A code without a label is shown as the code without underscores.
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {  # the roles of config/mandates.yml
        "bot": ("bot", "bot"),
        "agent": ("medewerker", "agent"),
        "senior_agent": ("senior medewerker", "senior agent"),
        "supervisor": ("teamleider", "supervisor"),
    },
    "o": {  # order status
        "placed": ("geplaatst", "placed"),
        "shipped": ("verzonden", "shipped"),
        "delivered": ("bezorgd", "delivered"),
        "cancelled": ("geannuleerd", "cancelled"),
        "returned": ("geretourneerd", "returned"),
    },
    "i": {  # invoice status (bot.records.repository.InvoiceView.status)
        "paid": ("betaald", "paid"),
        "open": ("open", "open"),
        "overdue": ("te laat", "overdue"),
        "partially_paid": ("deels betaald", "partly paid"),
    },
    "s": {  # conversation state (bot/people/queue.py)
        "bot": ("bij de bot", "with the bot"),
        "waiting": ("wacht", "waiting"),
        "with_agent": ("bij medewerker", "with an agent"),
        "closed": ("gesloten", "closed"),
    },
    "d": {  # decision (bot/policy/decisions.py KINDS)
        "refund": ("Terugbetaling", "Refund"),
        "goodwill_voucher": ("Coulancebon", "Goodwill voucher"),
        "payment_arrangement": ("Betalingsregeling", "Payment arrangement"),
        "retention_discount": ("Behoudkorting", "Retention discount"),
    },
    "r": {  # why a conversation went to a person (config/handoff.yml triggers)
        "asked": ("vroeg om een medewerker", "asked for a person"),
        "mandate": ("buiten mandaat", "beyond mandate"),
        "misunderstood": ("bot begreep het niet", "bot did not understand"),
        "complaint": ("klacht", "complaint"),
        "cancellation": ("opzegging", "cancellation"),
        "angry": ("boze klant", "upset customer"),
        "urgent": ("dringend", "urgent"),
        "transfer": ("doorverbonden", "transferred"),
    },
    "sender": {  # who wrote a transcript entry
        "customer": ("Klant", "Customer"),
        "bot": ("Bot", "Bot"),
        "agent": ("Medewerker", "Agent"),
        "system": ("Systeem", "System"),
    },
    "lang": {
        "nl": ("Nederlands", "Dutch"),
        "en": ("Engels", "English"),
    },
    "served": {  # who served the conversation a survey was about (the reports)
        "bot": ("Bot", "Bot"),
        "agent": ("Medewerker", "Person"),
    },
    "topic": {  # what a conversation was about (the bot's `topic` slot; the reports)
        "order_status": ("Bestelstatus", "Order status"),
        "delivery_problem": ("Bezorgprobleem", "Delivery problem"),
        "return": ("Retour", "Return"),
        "request_refund": ("Terugbetaling", "Refund"),
        "invoice_question": ("Factuurvraag", "Invoice question"),
        "payment_arrangement": ("Betalingsregeling", "Payment arrangement"),
        "loyalty": ("Spaarprogramma", "Loyalty"),
        "complaint": ("Klacht", "Complaint"),
        "cancel_order": ("Bestelling annuleren", "Cancel an order"),
        "cancel_contract": ("Opzeggen", "Cancellation"),
        "callback": ("Terugbellen", "Callback"),
        "preferences": ("Voorkeuren", "Preferences"),
        "faq": ("Veelgestelde vraag", "FAQ"),
    },
}


def lang_of(value: Any) -> str:
    return value if value in LANGUAGES else "nl"


def error_text(code: str, language: str, **values: Any) -> str:
    nl = lang_of(language) == "nl"
    template = ERRORS.get(code)
    if template is None:
        return code
    if "why" in values and values["why"] in WHY:
        span = policy().instalments
        values["why"] = WHY[values["why"]][0 if nl else 1].format(min=span.min, max=span.max)
    try:
        return template[0 if nl else 1].format(**values)
    except (KeyError, IndexError):
        return template[0 if nl else 1]


def label(prefix: str, code: str, language: str) -> str:
    """What an agent reads for `code` (LABELS), in `language`."""
    names = LABELS.get(prefix, {}).get(code)
    return names[0 if lang_of(language) == "nl" else 1] if names else str(code).replace("_", " ")


def labels() -> dict[str, dict[str, dict[str, str]]]:
    """LABELS per language, as GET /desk/api/labels serves them: {lang: {prefix: {code: text}}}."""
    return {lang: {prefix: {code: names[i] for code, names in table.items()} for prefix, table in LABELS.items()}
            for i, lang in enumerate(LANGUAGES)}


def outcome(decision: str, *, agent_name: str, role: str, amount_cents: int | None = None,
            order_number: str | None = None, instalments: int | None = None,
            percent: int | None = None) -> dict[str, str]:
    """What the customer is told when a person granted a decision, in both languages."""
    first = (agent_name.split() or ["?"])[0]
    out = {}
    for lang in LANGUAGES:
        nl = lang == "nl"
        by = (f"door {first} ({role_name(role, lang)})" if nl else f"by {first} ({role_name(role, lang)})")
        amount = money(amount_cents, lang) if amount_cents is not None else ""
        if decision == "refund":
            order = (f" voor bestelling {order_number}" if nl else f" for order {order_number}") if order_number else ""
            out[lang] = (f"Goed nieuws: je terugbetaling van {amount}{order} is goedgekeurd {by}." if nl else
                         f"Good news: your refund of {amount}{order} has been approved {by}.")
        elif decision == "goodwill_voucher":
            out[lang] = (f"Goed nieuws: je krijgt een tegoedbon van {amount}, toegekend {by}." if nl else
                         f"Good news: you get a voucher worth {amount}, granted {by}.")
        elif decision == "payment_arrangement":
            n = instalments or 1
            per = money(-(-(amount_cents or 0) // n), lang)
            out[lang] = (f"Goed nieuws: je mag {amount} in {n} termijnen van {per} betalen; goedgekeurd {by}."
                         if nl else
                         f"Good news: you may pay {amount} in {n} instalments of {per}; approved {by}.")
        elif decision == "retention_discount":
            out[lang] = (f"Goed nieuws: je krijgt {percent}% korting, toegekend {by}." if nl else
                         f"Good news: you get a {percent}% discount, granted {by}.")
        else:
            out[lang] = (f"Goed nieuws: je verzoek is goedgekeurd {by}." if nl else
                         f"Good news: your request has been approved {by}.")
    return out
