"""One-time codes by e-mail, end to end: a customer whose records hold an e-mail address and no
phone number claims their identity in the web chat, the code arrives at the loopback SMTP server
(the stack's SMTP_* settings point there), and typing it back verifies them."""

from __future__ import annotations

import re
import secrets

from bot.records.importer import import_text
from bot.shared.db import create_engine
from tests.support.chat import CODE_PROMPT, texts
from tests.support.stack import stack_sql

FOOTER = {
    "nl": "Dit bericht is automatisch verstuurd. Antwoorden op deze e-mail worden niet gelezen: "
          "je bereikt ons via de chat op de website.",
    "en": "This message was sent automatically. Replies to this email are not read: you can "
          "reach us in the chat on our website.",
}
SUBJECT = {"nl": "Bericht van De Webwinkel", "en": "A message from De Webwinkel"}
CODE = {"nl": "Je code voor De Webwinkel is {code}. Deze is 10 minuten geldig. Deel hem met niemand.",
        "en": "Your De Webwinkel code is {code}. It is valid for 10 minutes. Do not share it."}


async def email_only_customer(stack, name: str, lang: str) -> tuple[str, str]:
    """A new customer with an e-mail address and nothing else to reach them on."""
    number = f"K{secrets.randbelow(10**5):05d}"
    while stack_sql(stack, "select 1 from customers where customer_number = ?", number):
        number = f"K{secrets.randbelow(10**5):05d}"
    address = f"{name.split()[0].lower()}.{secrets.token_hex(3)}@example.nl"
    engine = create_engine(stack.database_url)
    try:
        report = await import_text(engine, f"customer_number,name,email,language\n{number},{name},{address},{lang}\n",
                                   "csv", "customers")
    finally:
        await engine.dispose()
    assert (report.created, report.errors) == (1, []), report
    assert stack_sql(stack, "select phone, preferred_channel from customers where customer_number = ?",
                     number) == [(None, "email")]
    return number, address


def code_in(mail: dict) -> str:
    return re.search(r"\b(\d{4})\b", mail["body"]).group(1)


async def test_a_customer_with_only_an_email_gets_the_code_by_email_and_typing_it_verifies(chat, stack, fake_smtp):
    number, address = await email_only_customer(stack, "Merel Maas", "nl")
    c = await chat()
    await c.say("waar is mijn bestelling")
    assert CODE_PROMPT["nl"] in texts(await c.say(f"mijn klantnummer is {number}"))
    [mail] = await fake_smtp.wait_for(address)
    code = code_in(mail)
    assert (mail["subject"], mail["from"], mail["to"]) == (SUBJECT["nl"], "De Webwinkel <klantenservice@webwinkel.example>",
                                                           address)
    assert mail["body"] == f"{CODE['nl'].format(code=code)}\n\n-- \n{FOOTER['nl']}\n"
    # the records' outbox marks it sent, on e-mail
    rows = stack_sql(stack, "select o.channel, o.address, o.sent_at is not null from outbox o join customers c "
                            "on c.id = o.customer_id where c.customer_number = ?", number)
    assert rows == [("email", address, 1)]
    answer = texts(await c.say(code))
    assert "Dank je, Merel, ik heb je gevonden." in answer, answer


async def test_an_english_customer_gets_an_english_mail_and_a_wrong_code_does_not_verify(chat, stack, fake_smtp):
    number, address = await email_only_customer(stack, "Oliver Stone", "en")
    c = await chat()
    await c.say("where is my order?")
    assert CODE_PROMPT["en"] in texts(await c.say(address))  # the e-mail address is the claim
    [mail] = await fake_smtp.wait_for(address)
    code = code_in(mail)
    assert mail["subject"] == SUBJECT["en"]
    assert mail["body"] == f"{CODE['en'].format(code=code)}\n\n-- \n{FOOTER['en']}\n"
    wrong = "0000" if code != "0000" else "1111"
    assert "Oliver" not in texts(await c.say(wrong))
    assert "Thanks, Oliver, I've found you." in texts(await c.say(code))
    assert len([m for m in fake_smtp.messages if address in m["rcpt_tos"]]) == 1  # one code, one mail
