"""Rasa's Redis tracker store, with a merge that stays linear in the conversation's length.

Loaded by Rasa itself (endpoints.yml, `tracker_store: type: bot.rasa_plugins.tracker_store.RedisTrackerStore`).

Why: one conversation per customer means a tracker that holds many sessions. Rasa 3.6 loads only
the latest session, so on every save the stored tracker (all sessions) is no longer a prefix of
the one in memory, and `RedisTrackerStore._merge_trackers` decides which events are new by
comparing each event's `as_dict()` with every stored event's `as_dict()`: n x m dict builds per
turn. Measured (docs/tracker-store.md) that turns a returning customer's answer from a few tens
of milliseconds into seconds; it is the likely cause of the 30 s stall seen after a few channel
joins in an earlier benchmark (not reproduced since: the answer now grows linearly instead).

The merge below keeps Rasa's semantics exactly (an event of the latest session is added when no
event already in the merged tracker has the same `as_dict()`), but looks candidates up by
(event type, timestamp) first: equal dicts have equal type and timestamp, so only those few are
compared. Each event's `as_dict()` is built once.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.core import tracker_store as rasa_tracker_store
from rasa.shared.core.trackers import DialogueStateTracker

log = logging.getLogger(__name__)


def _bucket(event_dict: dict[str, Any]) -> tuple[Any, Any]:
    return event_dict.get("event"), event_dict.get("timestamp")


def merge_trackers(prior_tracker: DialogueStateTracker, tracker: DialogueStateTracker) -> DialogueStateTracker:
    """Rasa 3.6's `RedisTrackerStore._merge_trackers`, in O(n + m) `as_dict()` calls."""
    if not prior_tracker.events:
        return tracker
    last_event_timestamp = prior_tracker.events[-1].timestamp
    past_tracker = tracker.travel_back_in_time(target_time=last_event_timestamp)
    if past_tracker.events == prior_tracker.events:
        return tracker

    merged = tracker.init_copy()
    merged.update_with_events(list(prior_tracker.events), override_timestamp=False, domain=None)
    seen: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for event in merged.events:
        as_dict = event.as_dict()
        seen.setdefault(_bucket(as_dict), []).append(as_dict)
    for new_event in tracker.events:
        as_dict = new_event.as_dict()
        candidates = seen.setdefault(_bucket(as_dict), [])
        if as_dict not in candidates:
            candidates.append(as_dict)
            merged.update(new_event)
    return merged


class RedisTrackerStore(rasa_tracker_store.RedisTrackerStore):
    """Rasa's RedisTrackerStore; only the merge on save differs (see the module's text)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        log.info("tracker store: %s.%s (linear merge)", __name__, type(self).__name__)

    @staticmethod
    def _merge_trackers(prior_tracker: DialogueStateTracker, tracker: DialogueStateTracker) -> DialogueStateTracker:
        return merge_trackers(prior_tracker, tracker)
