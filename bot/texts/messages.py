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
    "unreadable": {
        "nl": "Je bericht bevat tekens die ik niet kan lezen. Wil je het opnieuw typen?",
        "en": "Your message contains characters I can't read. Could you type it again?",
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
    "telegram_link": {
        "nl": "Open deze link om in Telegram verder te gaan: https://t.me/{bot}?start={code}\nDe link werkt één keer, 15 minuten lang. Daar ga je verder waar je hier bent gebleven.",
        "en": "Open this link to continue on Telegram: https://t.me/{bot}?start={code}\nThe link works once, for 15 minutes. You'll carry on there where you left off here.",
    },
    "telegram_code": {
        "nl": "Stuur in Telegram dit bericht naar onze bot: /start {code}\nDe code werkt één keer, 15 minuten lang. Daar ga je verder waar je hier bent gebleven.",
        "en": "On Telegram, send our bot this message: /start {code}\nThe code works once, for 15 minutes. You'll carry on there where you left off here.",
    },
    "link_code_unknown": {
        "nl": "Die koppelcode ken ik niet, of hij is al gebruikt of verlopen (een code werkt één keer, 15 minuten lang). Vraag in het gesprek waar je was om een nieuwe, of deel je telefoonnummer met de knop.",
        "en": "I don't know that link code, or it was already used or has expired (a code works once, for 15 minutes). Ask for a new one in the chat where you were, or share your phone number with the button.",
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
    # -- the inbox (bot/pipeline/inbox.py): a message kept while a service is down or slow -------------
    "inbox_kept": {
        "nl": "Je bericht is goed aangekomen en bewaard, maar ik kan het nu even niet beantwoorden door een storing. Je krijgt hier vanzelf antwoord zodra het weer werkt, meestal binnen een paar minuten en uiterlijk binnen een uur. Je hoeft het niet opnieuw te sturen.",
        "en": "Your message has arrived and is saved, but I can't answer it right now because of a technical problem. You'll get the answer here as soon as it works again, usually within a few minutes and within an hour at the latest. No need to send it again.",
    },
    "inbox_slow": {
        "nl": "Het duurt wat langer dan normaal. Je bericht is bewaard en je krijgt hier vanzelf antwoord, meestal binnen een paar minuten. Je hoeft het niet opnieuw te sturen.",
        "en": "This is taking longer than usual. Your message is saved and you'll get the answer here, usually within a few minutes. No need to send it again.",
    },
    "inbox_failed": {
        "nl": "Het is ons door een storing niet gelukt je bericht te verwerken. Wil je het nog een keer sturen?",
        "en": "Because of a technical problem we couldn't process your message. Could you send it again?",
    },
    "inbox_not_received": {
        "nl": "Je laatste bericht is door een storing bij ons niet aangekomen. Wil je het over een moment nog een keer sturen?",
        "en": "Your last message didn't reach us because of a technical problem on our side. Could you send it again in a moment?",
    },
    "busy": {  # channels/webchat.py: a turn still unanswered after BUSY_NOTE_SECONDS
        "nl": "Het is nu even druk. Je antwoord komt eraan; je hoeft niets opnieuw te sturen.",
        "en": "It's busy right now. Your answer is on its way; no need to send anything again.",
    },
    # -- handoff to people (bot/pipeline/service.py; the numbers come from the live queue) ---------------
    "handoff_start": {
        "nl": "Ik geef je door aan een collega, die ons hele gesprek en je gegevens ziet; je hoeft niets te herhalen.",
        "en": "I'm passing you to a colleague, who sees our whole conversation and your details; no need to repeat anything.",
    },
    "handoff_angry": {
        "nl": "Dat is vervelend, en ik snap dat je er klaar mee bent. Ik zet je direct door naar een collega, die ons gesprek en je gegevens ziet.",
        "en": "That's annoying, and I understand you've had enough. I'm passing you straight to a colleague, who sees our conversation and your details.",
    },
    "handoff_urgent": {
        "nl": "Ik begrijp dat het dringend is. Ik zet je direct door naar een collega, die ons gesprek en je gegevens ziet.",
        "en": "I understand it's urgent. I'm passing you straight to a colleague, who sees our conversation and your details.",
    },
    "wait_next": {
        "nl": "Je bent als eerste aan de beurt: een collega reageert binnen ongeveer {minutes} minuten (uiterlijk {deadline}).",
        "en": "You're next in line: a colleague will respond in about {minutes} minutes (by {deadline} at the latest).",
    },
    "wait_live": {
        "nl": "Je bent nummer {position} in de rij; er zijn nu {agents} collega('s) online die dit mogen afhandelen. De verwachte wachttijd is ongeveer {minutes} minuten (uiterlijk {deadline}).",
        "en": "You're number {position} in the queue; {agents} colleague(s) who may handle this are online now. The expected wait is about {minutes} minutes (by {deadline} at the latest).",
    },
    "wait_no_agents": {
        "nl": "Er is nu geen collega online die dit mag afhandelen. Je krijgt {deadline} antwoord via {channel}; je hoeft hier niet te wachten.",
        "en": "No colleague who may handle this is online right now. You'll get an answer {deadline} via {channel}; no need to wait here.",
    },
    "wait_closed": {
        "nl": "Onze collega's zijn er nu niet. Je krijgt {deadline} antwoord via {channel}; je kunt dit gesprek gerust verlaten.",
        "en": "Our colleagues aren't in right now. You'll get an answer {deadline} via {channel}; feel free to leave this conversation.",
    },
    "callback_time_noted": {
        "nl": "Genoteerd: je wordt liever {when} gebeld. Ik heb het doorgegeven aan de collega die je terugbelt (#{ticket}); kan dat niet, dan laat die het je weten.",
        "en": "Noted: you'd rather be called {when}. I've passed it on to the colleague who calls you back (#{ticket}); if that isn't possible, they'll let you know.",
    },
    # promises (bot/promises): what the record says was told, and the new time before one breaks
    "promise_ticket": {
        "nl": "Over {kind} (#{ticket}): antwoord van een collega {deadline}, via {channel}.",
        "en": "About {kind} (#{ticket}): an answer from a colleague {deadline}, via {channel}.",
    },
    "promise_agent": {
        "nl": "{name} komt {deadline} bij je terug, via {channel}.",
        "en": "{name} will get back to you {deadline}, via {channel}.",
    },
    "promise_renewed_wait": {
        "nl": "Sorry, het duurt langer dan ik je zei: er is nog geen collega vrij. Nieuwe verwachting: {deadline}. Het antwoord komt via {channel}.",
        "en": "Sorry, this is taking longer than I told you: no colleague is free yet. New estimate: {deadline}. The answer will come via {channel}.",
    },
    "promise_renewed_ticket": {
        "nl": "Sorry, het lukt ons niet om {kind} (#{ticket}) op tijd te beantwoorden. Een collega komt {deadline} bij je terug, via {channel}.",
        "en": "Sorry, we won't manage to answer {kind} (#{ticket}) in time. A colleague will get back to you {deadline}, via {channel}.",
    },
    "promise_renewed_agent": {
        "nl": "Sorry, het duurt iets langer dan we je beloofden. Je hoort {deadline} van ons, via {channel}.",
        "en": "Sorry, it's taking a little longer than we promised you. You'll hear from us {deadline}, via {channel}.",
    },
    "promise_renewed_callback": {
        "nl": "Sorry, het terugbellen lukt niet op de afgesproken tijd. We bellen je {deadline}.",
        "en": "Sorry, we can't call you back at the time we agreed. We'll call you {deadline}.",
    },
    # callbacks (actions/callbacks.py, bot/promises/callbacks.py)
    "callback_ask_known_phone": {
        "nl": "We bellen je graag terug. Zullen we je bellen op je nummer dat eindigt op {masked}?",
        "en": "We're happy to call you back. Shall we call you on your number ending in {masked}?",
    },
    "callback_phone_yes": {"nl": "Ja, dat nummer", "en": "Yes, that number"},
    "callback_phone_no": {"nl": "Een ander nummer", "en": "Another number"},
    "callback_ask_phone": {
        "nl": "We bellen je graag terug. Op welk nummer kunnen we je bellen?",
        "en": "We're happy to call you back. Which number can we call you on?",
    },
    "callback_phone_other": {
        "nl": "Op welk nummer kunnen we je dan bellen?",
        "en": "Which number shall we call you on then?",
    },
    "callback_phone_format": {
        "nl": "Dat lijkt geen telefoonnummer. Typ het zo: 0612345678 of +31612345678.",
        "en": "That doesn't look like a phone number. Type it like this: 0612345678 or +447700900123.",
    },
    "callback_ask_slot": {
        "nl": "Wanneer komt het je uit? Kies een tijdvak (of typ bijvoorbeeld 'morgenmiddag').",
        "en": "When suits you? Choose a time slot (or type, for example, 'tomorrow afternoon').",
    },
    "callback_slot_unknown": {
        "nl": "Dat tijdvak heb ik niet vrij. Kies er een hieronder, of noem een dag of tijd.",
        "en": "I don't have that time slot free. Choose one below, or name a day or time.",
    },
    "callback_slot_taken": {
        "nl": "Dat tijdvak is net vol geraakt, sorry. Kies een ander.",
        "en": "That time slot has just filled up, sorry. Please choose another one.",
    },
    "callback_no_windows": {
        "nl": "Alle tijdvakken van de komende dagen zijn vol. Een collega belt je {deadline}.",
        "en": "All time slots for the coming days are full. A colleague will call you {deadline}.",
    },
    "callback_booked": {
        "nl": "Afgesproken: we bellen je {window} op {phone} (#{ticket}). Kort van tevoren krijg je hier nog een herinnering.",
        "en": "Booked: we'll call you {window} on {phone} (#{ticket}). Shortly before, you'll get a reminder here.",
    },
    "callback_reminder": {
        "nl": "Herinnering: we bellen je {window} op {phone}.",
        "en": "Reminder: we'll call you {window} on {phone}.",
    },
    "callback_not_reached": {
        "nl": "We hebben je net gebeld, maar konden je niet bereiken. We proberen het opnieuw {window}.",
        "en": "We just called you but couldn't reach you. We'll try again {window}.",
    },
    "callback_given_up": {
        "nl": "We hebben je {attempts} keer geprobeerd te bellen, maar konden je niet bereiken. Wil je nog teruggebeld worden? Laat het ons hier weten.",
        "en": "We tried to call you {attempts} times but couldn't reach you. Would you still like a call back? Just let us know here.",
    },
    "callback_moved": {
        "nl": "We moeten het terugbellen helaas verzetten: we bellen je nu {window} op {phone}.",
        "en": "Unfortunately we have to move your callback: we'll now call you {window} on {phone}.",
    },
    # proactive care (bot/promises/proactive.py)
    "proactive_late": {
        "nl": "Hoi {name}, je bestelling {order} had {expected} bezorgd moeten zijn, maar is er nog niet. Dat spijt ons. We zoeken het met {carrier} uit (track & trace {tracking}); komt hij niet snel, dan sturen we hem opnieuw of krijg je je geld terug. Vragen? Antwoord gewoon op dit bericht.",
        "en": "Hi {name}, your order {order} should have been delivered {expected} but hasn't arrived yet. We're sorry. We're looking into it with {carrier} (tracking {tracking}); if it doesn't arrive soon we'll send it again or refund you. Questions? Just reply to this message.",
    },
    "proactive_late_plain": {
        "nl": "Hoi {name}, je bestelling {order} had {expected} bezorgd moeten zijn, maar is er nog niet. Dat spijt ons. We zoeken uit waar hij blijft; komt hij niet snel, dan sturen we hem opnieuw of krijg je je geld terug. Vragen? Antwoord gewoon op dit bericht.",
        "en": "Hi {name}, your order {order} should have been delivered {expected} but hasn't arrived yet. We're sorry. We're finding out where it is; if it doesn't arrive soon we'll send it again or refund you. Questions? Just reply to this message.",
    },
    "proactive_invoice_due": {
        "nl": "Hoi {name}, een vriendelijke herinnering: factuur {invoice} ({amount}) vervalt {due}. Lukt het niet om in één keer te betalen? Antwoord 'betalingsregeling', dan kijken we samen wat kan.",
        "en": "Hi {name}, a friendly reminder: invoice {invoice} ({amount}) is due {due}. Can't pay it all at once? Reply 'payment plan' and we'll see together what's possible.",
    },
    "proactive_invoice_overdue": {
        "nl": "Hoi {name}, factuur {invoice} ({amount}) stond open tot {due} en is nog niet (helemaal) betaald. Misschien is het je ontschoten. Lukt het niet in één keer? Antwoord 'betalingsregeling', dan kijken we samen wat kan.",
        "en": "Hi {name}, invoice {invoice} ({amount}) was due {due} and hasn't been paid (in full) yet. Perhaps it slipped your mind. Can't pay it all at once? Reply 'payment plan' and we'll see together what's possible.",
    },
    "stop_confirmed": {
        "nl": "Begrepen: je krijgt van ons geen berichten meer die je niet zelf vraagt, op geen enkel kanaal. Je vragen blijven we gewoon beantwoorden.",
        "en": "Understood: you won't get any messages from us that you didn't ask for, on any channel. We'll still answer your questions.",
    },
    "opening_hours": {
        "nl": "Ik ben er altijd. Onze collega's zijn er {week}, niet op feestdagen. {now}",
        "en": "I'm always here. Our colleagues are available {week}, except on public holidays. {now}",
    },
    "opening_hours_queue": {
        "nl": "{queue}: {week}.",
        "en": "{queue}: {week}.",
    },
    "response_time_who": {
        "nl": "Dat zoek ik voor je op zodra ik weet wie je bent.",
        "en": "I'll look that up for you as soon as I know who you are.",
    },
    "take_your_time": {
        # the customer looks up their customer number or e-mail address ("momentje", "one sec")
        "nl": "Geen haast, neem de tijd.",
        "en": "No rush, take your time.",
    },
    "wait_not_here": {
        # added when a waiting customer asks how long still / whether to wait here, to a live wait
        "nl": "Je hoeft hier niet te blijven wachten: ga je weg, dan komt het antwoord via {channel}.",
        "en": "You don't have to wait here: if you leave, the answer comes via {channel}.",
    },
    "wait_goodbye": {
        "nl": "Tot ziens! Je vraag blijft bij ons staan; de collega antwoordt ook als je dit gesprek nu verlaat.",
        "en": "Goodbye! Your question stays with us; the colleague will answer even if you leave this conversation now.",
    },
    "wait_ack": {
        "nl": "Ik heb je bericht bij je vraag gezet; de collega leest het zodra die je gesprek oppakt.",
        "en": "I've added your message to your question; the colleague will read it when they pick up your conversation.",
    },
    "agent_joined": {
        "nl": "Je praat nu met {name} van de klantenservice.",
        "en": "You're now talking to {name} from customer service.",
    },
    "agent_transferred": {
        "nl": "{name} geeft je door aan een collega die hierover mag beslissen. Je hoeft niets te herhalen.",
        "en": "{name} is passing you to a colleague who may decide on this. No need to repeat anything.",
    },
    "agent_handed_back": {
        "nl": "{name} heeft je weer aan mij, de digitale assistent, overgedragen. Waarmee kan ik je nog helpen?",
        "en": "{name} has handed you back to me, the digital assistant. What else can I help you with?",
    },
    "agent_closed": {
        "nl": "{name} heeft dit gesprek afgesloten. Heb je nog een vraag? Stuur gerust een bericht, dan help ik je verder.",
        "en": "{name} has closed this conversation. Another question? Just send a message and I'll help you.",
    },
    # -- what the channel adapters say themselves (channels/*.py) -------------------------------
    "telegram_welcome": {
        # One text in both languages: at /start we do not know the customer's language yet.
        "nl": "Welkom bij onze klantenservice! / Welcome to our customer service!\n\n"
              "Deel je telefoonnummer met de knop hieronder, dan weten we wie je bent. Of stel "
              "gewoon je vraag.\n"
              "Share your phone number with the button below so we know who you are, or just "
              "ask your question.",
    },
    "telegram_share_phone_button": {"nl": "Deel mijn telefoonnummer / Share my phone number"},
    "telegram_not_own_contact": {
        "nl": "Je kunt alleen je eigen telefoonnummer delen. Gebruik daarvoor de knop "
              "\"Deel mijn telefoonnummer\".",
        "en": "You can only share your own phone number. Please use the \"Share my phone "
              "number\" button.",
    },
    "telegram_bad_phone": {
        "nl": "Dat telefoonnummer kon ik niet lezen. Typ je vraag, dan help ik je verder.",
        "en": "I couldn't read that phone number. Type your question and I'll help you.",
    },
    "telegram_button_expired": {
        "nl": "Die knop is verlopen. Typ je antwoord, dan help ik je verder.",
        "en": "That button has expired. Please type your answer and I'll help you.",
    },
    "telegram_buttons_only": {"nl": "👇", "en": "👇"},  # Telegram needs a text above an inline keyboard
    # -- the launcher a site embeds (channels/widget.py, channels/static/embed.js) -----------------
    "widget_open": {"nl": "Chat met {brand}", "en": "Chat with {brand}"},
    "widget_close": {"nl": "Chat sluiten", "en": "Close the chat"},
    "widget_unread_one": {"nl": "1 nieuw bericht", "en": "1 new message"},
    "widget_unread_many": {"nl": "{count} nieuwe berichten", "en": "{count} new messages"},
    "widget_frame_title": {"nl": "Chat met {brand}", "en": "Chat with {brand}"},
    "email_subject": {
        "nl": "Bericht van {brand}",
        "en": "A message from {brand}",
    },
    "email_footer": {
        "nl": "Dit bericht is automatisch verstuurd. Antwoorden op deze e-mail worden niet gelezen: "
              "je bereikt ons via de chat op de website.",
        "en": "This message was sent automatically. Replies to this email are not read: you can "
              "reach us in the chat on our website.",
    },
    # -- the post-chat survey (bot/feedback/survey.py) ------------------------------------------
    "survey_intro": {
        "nl": "Mogen we je iets vragen over dit gesprek? Je kunt elke vraag overslaan of met 'stop' ophouden.",
        "en": "May we ask you about this conversation? You can skip any question or end with 'stop'.",
    },
    "survey_ces": {
        "nl": "Hoe eens ben je het met deze uitspraak: {brand} maakte het me makkelijk om mijn vraag af te handelen. "
              "1 = helemaal oneens, 7 = helemaal eens.",
        "en": "How much do you agree: {brand} made it easy for me to handle my question. "
              "1 = strongly disagree, 7 = strongly agree.",
    },
    "survey_nps": {
        "nl": "Hoe waarschijnlijk is het dat je {brand} aanbeveelt aan vrienden of familie? "
              "0 = zeer onwaarschijnlijk, 10 = zeer waarschijnlijk.",
        "en": "How likely are you to recommend {brand} to a friend or family member? "
              "0 = not at all likely, 10 = extremely likely.",
    },
    "survey_csat": {
        "nl": "Hoe tevreden ben je over dit gesprek? 1 = zeer ontevreden, 5 = zeer tevreden.",
        "en": "How satisfied are you with this conversation? 1 = very dissatisfied, 5 = very satisfied.",
    },
    "survey_comment_low": {
        "nl": "Wat hadden we beter kunnen doen? Schrijf het in je eigen woorden (of 'overslaan').",
        "en": "What could we have done better? Tell us in your own words (or 'skip').",
    },
    "survey_comment_mid": {
        "nl": "Wat kunnen we verbeteren? Schrijf het in je eigen woorden (of 'overslaan').",
        "en": "What could we improve? Tell us in your own words (or 'skip').",
    },
    "survey_comment_high": {
        "nl": "Fijn om te horen. Wat vond je het prettigst? (of 'overslaan')",
        "en": "Good to hear. What did you like most? (or 'skip')",
    },
    "survey_anonymous": {
        "nl": "Mogen we je antwoorden aan dit gesprek koppelen, zodat een collega erop kan reageren? "
              "Of antwoord je liever anoniem?",
        "en": "May we link your answers to this conversation, so a colleague can follow up? "
              "Or would you rather answer anonymously?",
    },
    "survey_named": {"nl": "Koppelen mag", "en": "Link them"},
    "survey_anonymous_button": {"nl": "Anoniem", "en": "Anonymous"},
    "survey_skip_button": {"nl": "Overslaan", "en": "Skip"},
    "survey_scale_sms": {
        "nl": "Antwoord met een cijfer van {low} tot {high}.",
        "en": "Reply with a number from {low} to {high}.",
    },
    "survey_range": {
        "nl": "Kies een cijfer van {low} tot {high}, of typ 'overslaan'.",
        "en": "Please choose a number from {low} to {high}, or type 'skip'.",
    },
    "survey_reminder": {
        "nl": "We horen graag nog hoe het gesprek met {brand} ging. Eén vraag, meer niet:",
        "en": "We would still like to hear how your conversation with {brand} went. One question, that's all:",
    },
    "survey_thanks": {
        "nl": "Bedankt voor je antwoorden! Daar doen we iets mee.",
        "en": "Thank you for your answers! We will put them to use.",
    },
    "survey_thanks_anonymous": {
        "nl": "Bedankt! Je antwoorden zijn anoniem bewaard, zonder je naam of dit gesprek.",
        "en": "Thank you! Your answers are kept anonymously, without your name or this conversation.",
    },
    "survey_thanks_follow_up": {
        "nl": "Bedankt voor je eerlijke antwoord. Dit had beter gemoeten: een collega neemt {when} contact met je op.",
        "en": "Thank you for your honest answer. This should have gone better: a colleague will contact you {when}.",
    },
    "survey_stopped": {
        "nl": "Prima, we stellen je geen vragen meer. Fijne dag!",
        "en": "Fine, no more questions. Have a nice day!",
    },
    "feedback_followup_done": {
        "nl": "Over je feedback van {day}: {note}",
        "en": "About your feedback of {day}: {note}",
    },
    # -- written by the action server ---------------------------------------------------------
    "one_time_code": {  # {code} is filled in by Records.issue_code
        "nl": "Je code voor {brand} is {{code}}. Deze is {minutes} minuten geldig. Deel hem met niemand.",
        "en": "Your {brand} code is {{code}}. It is valid for {minutes} minutes. Do not share it.",
    },
}


def text(key: str, language: str, **values: object) -> str:
    """The one lookup of what a customer reads from the code (the dialogue's own responses are
    Rasa's, in domain.yml): `key` in `language`, Dutch when it has no such variant, with `values`
    and the shop's name (`{brand}`, config/policy.yml) filled in."""
    variants = TEXTS[key]
    if "brand" not in values:
        from bot.policy.rules import policy  # config/policy.yml, read once

        values = {**values, "brand": policy().brand}
    return variants.get(language, variants["nl"]).format(**values)
