"""The tracker store Rasa loads (bot/rasa_plugins/tracker_store.py): Rasa's own merge, in linear work.

A returning customer's conversation holds several sessions; Rasa loads only the latest, so every
save merges it into the stored tracker. These tests run Rasa's stock RedisTrackerStore and ours
side by side on real Redis and the project's domain: the stored conversations must be identical,
and ours must build each event's dict a bounded number of times instead of once per pair.
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
import redis as redis_sync
from rasa.core.tracker_store import RedisTrackerStore as StockStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted, ActiveLoop, BotUttered, Event, SessionStarted, SlotSet, UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot.rasa_plugins.tracker_store import RedisTrackerStore

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture
def stores(redis_url, domain):
    address = urlparse(redis_url)
    prefix = "tts" + secrets.token_hex(4)
    settings = dict(domain=domain, host=address.hostname, port=address.port, db=int(address.path.strip("/") or 0))
    stock = StockStore(key_prefix=f"{prefix}stock", **settings)
    ours = RedisTrackerStore(key_prefix=f"{prefix}ours", **settings)
    yield stock, ours
    client = redis_sync.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


def turn(t: float, text: str, intent: str, answer: str, slots: dict | None = None) -> list[Event]:
    events: list[Event] = [ActionExecuted("action_listen", timestamp=t),
                           UserUttered(text, {"name": intent, "confidence": 0.99}, timestamp=t + 0.1)]
    events += [SlotSet(k, v, timestamp=t + 0.2) for k, v in (slots or {}).items()]
    events += [ActionExecuted(answer, timestamp=t + 0.3), BotUttered(f"{answer} text", timestamp=t + 0.4)]
    return events


def session(start: float, turns: int, slots: dict | None = None) -> list[Event]:
    events: list[Event] = [ActionExecuted("action_session_start", timestamp=start),
                           SessionStarted(timestamp=start + 0.01)]
    events += [SlotSet(k, v, timestamp=start + 0.02) for k, v in (slots or {}).items()]
    for i in range(turns):
        events += turn(start + 1 + i, f"bericht {i}", "greet" if i % 2 else "thanks", "utter_greet",
                       {"customer_id": "7"} if i == 0 else None)
    return events


def dicts(tracker: DialogueStateTracker) -> list[dict]:
    return [e.as_dict() for e in tracker.events]


@contextmanager
def counting_as_dict(monkeypatch):
    """Counts `Event.as_dict` (every event type's as_dict builds on it)."""
    calls = {"n": 0}
    real = Event.as_dict

    def counted(self):
        calls["n"] += 1
        return real(self)

    monkeypatch.setattr(Event, "as_dict", counted)
    try:
        yield calls
    finally:
        monkeypatch.setattr(Event, "as_dict", real)


async def returning_customer(store, sender: str, domain: Domain, new_events: list[Event]) -> DialogueStateTracker:
    """Three stored sessions; Rasa loads the latest, the turn adds `new_events`, Rasa saves."""
    history = session(1_000, 6) + session(10_000, 6, {"customer_id": "7"}) + session(20_000, 4, {"customer_id": "7"})
    await store.save(DialogueStateTracker.from_events(sender, history, domain.slots))
    latest = await store.retrieve(sender)
    assert latest is not None
    for event in new_events:
        latest.update(event)
    await store.save(latest)
    full = await store.retrieve_full_tracker(sender)
    assert full is not None
    return full


async def test_a_returning_customers_turn_is_stored_exactly_as_rasa_stores_it(stores, domain):
    stock, ours = stores
    new = turn(30_000, "waar is mijn pakket", "order_status", "utter_ask_order_number", {"order_number": "104233"})
    # an event equal to one stored before (same dict) is not stored twice, by both
    new.append(SlotSet("customer_id", "7", timestamp=20_000.02))
    new.append(ActiveLoop(None, timestamp=30_001))
    expected = await returning_customer(stock, "sanne", domain, new)
    got = await returning_customer(ours, "sanne", domain, new)
    assert dicts(got) == dicts(expected)
    texts = [e.text for e in got.events if isinstance(e, UserUttered)]
    assert texts.count("waar is mijn pakket") == 1 and texts.count("bericht 0") == 3  # all three sessions kept
    assert got.get_slot("order_number") == "104233"


async def test_the_merge_builds_each_events_dict_a_bounded_number_of_times(stores, domain, monkeypatch):
    stock, ours = stores
    history = session(1_000, 40) + session(10_000, 40) + session(20_000, 40)
    n = len(history)

    async def dict_builds(store, sender: str) -> int:
        await store.save(DialogueStateTracker.from_events(sender, history, domain.slots))
        latest = await store.retrieve(sender)
        for event in turn(30_000, "nog een vraag", "greet", "utter_greet"):
            latest.update(event)
        prior = await store.retrieve_full_tracker(sender)  # what save() reads back from Redis
        with counting_as_dict(monkeypatch) as calls:
            merged = store._merge_trackers(prior, latest)
        assert len(merged.events) == n + 4  # the new turn, once
        return calls["n"]

    stock_builds = await dict_builds(stock, "stock")
    our_builds = await dict_builds(ours, "ours")
    m = n // 3 + 4  # the latest session plus the new turn
    assert stock_builds > n * m  # Rasa's own: one dict per pair of events
    assert our_builds <= 3 * (n + m), (our_builds, n, m)
    print(f"as_dict calls for one merge of {n} stored and {m} loaded events: Rasa {stock_builds}, ours {our_builds}")


def test_rasa_is_configured_to_load_this_store():
    endpoints = (ROOT / "endpoints.yml").read_text()
    assert "type: bot.rasa_plugins.tracker_store.RedisTrackerStore" in endpoints


def test_the_running_rasa_uses_it(stack):
    """Rasa falls back to an in-memory store (with only a warning) when it cannot import a custom
    one; the running Rasa must have loaded ours."""
    log = (stack.log_dir / "rasa.log").read_text(errors="replace")
    assert "tracker store: bot.rasa_plugins.tracker_store.RedisTrackerStore (linear merge)" in log
    assert "InMemoryTrackerStore" not in log
