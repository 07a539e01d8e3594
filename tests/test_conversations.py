"""The dialogue test suite (issue 11): whole conversations, Dutch and English, played through the
running gateway with the trained model, each checked at every turn.

The conversations are YAML files in tests/conversations/ (format: tests/conversations/README.md);
playing and checking them is tests/support/conversation_run.py, the checks
tests/support/conversations.py. One test per conversation, with the conversation's id.

A conversation the bot does not pass yet is listed in tests/conversations/known_failures.yml with
the reason, and runs as xfail (not strict: a model retrained on another run may tip a borderline
conversation, and CI must not fail on a conversation getting better; `--update-known-failures`
takes the passing ones out of the list, and the report counts every one). `scripts/conversations_report.py` runs this module with CONVERSATIONS_REPORT set:
then every conversation simply runs (no xfail) and docs/conversations.md is written at the end.

The fast tests below (no stack) keep the suite itself honest: its size and languages, the known
failures naming real conversations, and the global checks catching what they are meant to catch.
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import conversation_run as run
from tests.support import conversations as spec

CONVERSATIONS = spec.load()
KNOWN = spec.known_failures()
REPORT = os.environ.get("CONVERSATIONS_REPORT")                  # a path: write the report there
UPDATE_KNOWN = os.environ.get("CONVERSATIONS_UPDATE_KNOWN") == "1"  # and rewrite known_failures.yml
TRANSCRIPTS = os.environ.get("CONVERSATIONS_TRANSCRIPTS")          # a path: every conversation as JSON
# "monday": the gateway's clock at a business Monday 10:00 (tests/support/clock.py), to see the
# conversations in business hours when the suite runs at night (the verdicts must not depend on it)
GATEWAY_AT = os.environ.get("CONVERSATIONS_GATEWAY_AT")


def _params():
    for conv in CONVERSATIONS:
        marks = []
        if conv.id in KNOWN and not REPORT:
            marks.append(pytest.mark.xfail(strict=False, reason=KNOWN[conv.id]))
        yield pytest.param(conv, id=conv.id, marks=marks)


@pytest.fixture(scope="module")
def results():
    """The results of this module's conversations; the report when CONVERSATIONS_REPORT is set."""
    started = time.monotonic()
    collected: list[run.Result] = []
    yield collected
    if not REPORT or not collected:
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=spec.ROOT).stdout.strip()
    model = os.environ.get("CONVERSATIONS_MODEL", "")
    order = {c.id: i for i, c in enumerate(CONVERSATIONS)}
    collected.sort(key=lambda r: order[r.conversation.id])
    run.write(Path(REPORT), run.report(collected, wall_seconds=time.monotonic() - started, commit=commit,
                                       model=model, known=KNOWN))
    if TRANSCRIPTS:
        run.write(Path(TRANSCRIPTS), run.transcripts_json(collected))
    if UPDATE_KNOWN and len(collected) == len(CONVERSATIONS):
        run.write(spec.KNOWN_FAILURES, run.known_failures_yaml(collected, KNOWN))


@pytest.fixture(scope="module")
def pristine_records(stack, tmp_path_factory):
    """A freshly loaded demo shop to start every conversation from; the stack's records as they
    were before this module are put back after it (other modules' tests see what they saw)."""
    from tests.support.stack import demo_shop_db

    folder = tmp_path_factory.mktemp("conversations")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # demo_shop_db runs its own event loop
        pristine = run.sqlite_path(pool.submit(demo_shop_db, folder).result())
    live = run.sqlite_path(stack.database_url)
    before = str(folder / "before.db")
    run.copy_database(live, before)
    os.environ.setdefault("CONVERSATIONS_MODEL", Path(str(stack.model)).name)
    yield pristine
    run.copy_database(before, live)


@pytest.fixture
async def redis(stack):
    from redis.asyncio import Redis

    client = Redis.from_url(stack.redis_url, decode_responses=True)
    yield client
    await client.close(close_connection_pool=True)


@pytest.mark.parametrize("conv", list(_params()))
async def test_conversation(results, conv, stack, chat, fake_twilio, pristine_records, redis, gateway_clock):
    if GATEWAY_AT == "monday":
        from tests.support.clock import business_monday

        await gateway_clock.at(business_monday())
    run.copy_database(pristine_records, run.sqlite_path(stack.database_url))
    result = await run.play(conv, stack, redis, open_chat=chat, fake_twilio=fake_twilio)
    results.append(result)
    assert result.passed, "\n".join(
        [f"{conv.id}: {result.summary()}"]
        + [f"  turn {f.turn} {f.check}: {f.message}\n    customer: {f.said}\n    bot: {f.reply[:400]}"
           for f in result.failures])


# -- the suite itself (fast: no stack) -------------------------------------------------------------

def test_the_suite_has_at_least_60_conversations_half_dutch_half_english():
    by_language = {lang: [c for c in CONVERSATIONS if c.language == lang] for lang in spec.LANGUAGES}
    assert len(CONVERSATIONS) >= 60
    assert len(by_language["nl"]) >= 30 and len(by_language["en"]) >= 30
    assert abs(len(by_language["nl"]) - len(by_language["en"])) <= 2
    assert all(4 <= len(c.turns) <= 10 for c in CONVERSATIONS), [c.id for c in CONVERSATIONS
                                                                  if not 4 <= len(c.turns) <= 10]
    assert {p for c in CONVERSATIONS for p in c.patterns} == set(spec.PATTERNS)


def test_known_failures_name_conversations_of_the_suite():
    assert set(KNOWN) <= {c.id for c in CONVERSATIONS}


def test_the_dead_end_check_catches_the_fallbacks_and_lets_answers_through():
    assert spec.dead_end("Sorry, dat begreep ik niet. Kun je het anders zeggen, of wil je een medewerker spreken?")
    assert spec.dead_end("I can't find anyone with those details. Try your customer number (K and 5 digits), "
                         "your email address, or your order number with your postcode.")
    assert spec.dead_end("Thanks, I've noted that. What is your question about?") is None
    assert spec.dead_end("Bestelling 104233 is onderweg met PostNL (track & trace 3SWEB104233). "
                         "Verwachte bezorging: 3 december.") is None


def test_the_language_check_knows_the_bots_texts_in_both_languages():
    assert spec.message_languages("Hoi! Ik ben de digitale assistent van De Webwinkel. Waarmee kan ik je helpen?") == {"nl"}
    assert spec.message_languages("You have 540 points (silver tier). Not enough for a reward yet, but every "
                                  "order counts.") == {"en"}
    assert spec.message_languages("Graag gedaan! Kan ik nog iets anders voor je doen?") == {"nl"}
    # not a template: the project's detector decides
    assert spec.message_languages("Your parcel was handed to the courier this morning and arrives today.") == {"en"}


def test_the_empty_value_check_catches_missing_values():
    assert spec.empty_value("Een collega zoekt het uit met - en laat je morgen weten wat we doen.")
    assert spec.empty_value("Je krijgt €0,00 terug.")
    assert spec.empty_value("Bestelling 104100 is bezorgd op ?.")
    assert spec.empty_value("Je klacht is vastgelegd (klacht #None).")
    assert spec.empty_value("Het retourlabel komt per e-mail naar  .")
    assert spec.empty_value("Hello {customer_name}!")
    assert spec.empty_value("Bestelling 104233 is onderweg met PostNL (track & trace 3SWEB104233).") is None
    assert spec.empty_value("Je facturen:\n• F2026-00102 (118902): €249,00, achterstallig") is None


def test_asked_twice_is_what_the_customer_already_gave():
    assert set(spec.asked("Dan moet ik eerst weten wie je bent. Wat is je klantnummer (zoals K10001) of het "
                          "e-mailadres van je account? Je bestelnummer met je postcode kan ook.", "nl")) == {"customer_id"}
    assert set(spec.asked("In hoeveel termijnen (maanden) wil je betalen?", "nl")) == {"instalments"}
    assert set(spec.asked("For this request I want to be sure it's you. I've sent a 4-digit code via SMS "
                          "(•••• 02). What is the code?", "en")) == {"code"}
    assert spec.asked("Bestelling 104233: onderweg. Wil je meer weten, zoals de track & trace-code?", "nl") == {}
    assert {"instalments", "amount"} <= spec.given("kan ik de 249 euro in 3 termijnen betalen?")
    assert "customer_id" in spec.given("hoi, K10001 hier, waar blijft mijn pakket")
    assert "code" in spec.given("4821") and "code" not in spec.given("bestelling 104233")


def test_a_concrete_time_is_a_clock_time_a_day_or_a_term():
    for text in ("Een collega reageert morgen voor 17:00.", "You'll get an answer on Monday.",
                 "We betalen binnen 5 werkdagen terug.", "Verwachte bezorging: 3 december.",
                 "A colleague calls you back tomorrow at 10:00."):
        assert spec.has_time(text), text
    assert not spec.has_time("Een collega neemt contact met je op.")
