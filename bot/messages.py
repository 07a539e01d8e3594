"""What the gateway itself says to customers, in Dutch and English."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "empty": {
        "nl": "Je bericht is leeg. Typ je vraag, dan help ik je verder.",
        "en": "Your message is empty. Type your question and I'll help you.",
    },
    "too_long": {
        "nl": "Je bericht is te lang (meer dan {limit} tekens). Kun je het korter zeggen of in delen sturen?",
        "en": "Your message is too long (over {limit} characters). Could you shorten it or send it in parts?",
    },
    "not_text": {
        "nl": "Ik kan alleen tekst lezen. Wil je je vraag typen?",
        "en": "I can only read text. Could you type your question?",
    },
    "emoji_only": {
        "nl": "Leuk! Kun je in woorden vertellen waarmee ik je kan helpen?",
        "en": "Nice! Could you tell me in words what I can help you with?",
    },
    "bad_request": {
        "nl": "Dat bericht kon ik niet verwerken. Probeer het opnieuw.",
        "en": "I couldn't process that message. Please try again.",
    },
    "unknown_event": {
        "nl": "Onbekend berichttype: {event}.",
        "en": "Unknown message type: {event}.",
    },
    "text_only": {
        "nl": "Ik kan alleen tekst lezen, geen foto's of spraakberichten. Ik heb het wel bewaard; wil je je vraag typen?",
        "en": "I can only read text, not photos or voice messages. I've kept it, though; could you type your question?",
    },
    "contact_unknown": {
        "nl": "Dank je! Ik vind dat nummer niet bij onze klanten. Je kunt je ook melden met je klantnummer of e-mailadres.",
        "en": "Thanks! I can't find that number among our customers. You can also identify with your customer number or email address.",
    },
    "channel_unavailable": {
        "nl": "Verder via {channel} lukt nu niet: dat kanaal is niet ingesteld of we hebben er geen adres van je voor. We gaan hier gewoon verder.",
        "en": "Continuing on {channel} isn't possible right now: that channel isn't set up or we have no address for you there. Let's carry on here.",
    },
    "continue_here": {
        "nl": "Hoi {name}! Hier kun je verder waar je was gebleven; je hoeft niets te herhalen.",
        "en": "Hi {name}! You can carry on here where you left off; no need to repeat anything.",
    },
    "bot_unavailable": {
        "nl": "Sorry, ik kan op dit moment niet antwoorden. Je bericht is bewaard; probeer het over een minuut nog eens.",
        "en": "Sorry, I can't answer right now. Your message is saved; please try again in a minute.",
    },
}


def text(key: str, language: str, **values: object) -> str:
    variants = TEXTS[key]
    return variants.get(language, variants["nl"]).format(**values)
