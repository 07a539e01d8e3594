"""Callbacks that happen: "bel me terug" books a real window within the hours of the queue that
calls back, with a capacity per window (config/promises.yml `callbacks`). The booking is a ticket
(kind `callback`, the number and the window in its data) and a promise (deadline: the end of the
window) that the scheduler watches: a reminder shortly before the window opens, a new time told
before it breaks. In the desk an agent marks a callback done, not reached (tried again, the
customer told) or moved (the customer told).

Pure helpers (`free_windows`, `window_text`, `pick`) take `now` and the booked windows; the
action server (actions/handlers.py) and the desk (bot/desk/routes.py) do the I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Iterable

import yaml

from bot.policy.hours import DAY_NAMES, ServiceLevels, _day_words
from bot.promises.state import CONFIG, CONFIG_ENV


@dataclass(frozen=True)
class CallbackConfig:
    queue: str = "general"
    window: timedelta = timedelta(minutes=60)
    capacity: int = 2
    offer: int = 3
    earliest: timedelta = timedelta(minutes=30)
    days_ahead: int = 5
    reminder: timedelta = timedelta(minutes=15)
    retry: timedelta = timedelta(minutes=120)
    max_attempts: int = 3

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "CallbackConfig":
        c = raw.get("callbacks") or {}
        config = cls(
            queue=str(c.get("queue", "general")), window=timedelta(minutes=int(c.get("window_minutes", 60))),
            capacity=int(c.get("capacity", 2)), offer=int(c.get("offer", 3)),
            earliest=timedelta(minutes=int(c.get("earliest_minutes", 30))), days_ahead=int(c.get("days_ahead", 5)),
            reminder=timedelta(minutes=int(c.get("reminder_minutes", 15))),
            retry=timedelta(minutes=int(c.get("retry_minutes", 120))), max_attempts=int(c.get("max_attempts", 3)),
        )
        if config.capacity < 1 or config.offer < 1 or config.window <= timedelta(0) or config.max_attempts < 1:
            raise ValueError("callbacks: capacity, offer, window_minutes and max_attempts must be positive")
        return config

    @classmethod
    def load(cls, path: str | None = None) -> "CallbackConfig":
        import os
        from pathlib import Path

        path = Path(path or os.environ.get(CONFIG_ENV) or CONFIG)
        return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


@lru_cache(maxsize=1)
def config() -> CallbackConfig:
    return CallbackConfig.load()


def free_windows(levels: ServiceLevels, booked: Iterable[datetime], now: datetime, config: CallbackConfig,
                 count: int | None = None, after: datetime | None = None) -> list[tuple[datetime, datetime]]:
    """The first `count` (default: config.offer) windows that lie wholly within business hours,
    start at least `earliest` from now (or at/after `after`), on the hour grid of the window
    length from opening time, and have room (fewer than `capacity` callbacks booked at that start)."""
    taken: dict[datetime, int] = {}
    for start in booked:
        taken[start] = taken.get(start, 0) + 1
    earliest = max(now + config.earliest, after or now)
    found: list[tuple[datetime, datetime]] = []
    day = now.astimezone(levels.tz).date()
    for _ in range(config.days_ahead * 3 + 7):
        span = levels.opening(day)
        if span is not None:
            start = span[0]
            while start + config.window <= span[1]:
                if start >= earliest and taken.get(start, 0) < config.capacity:
                    found.append((start, start + config.window))
                    if len(found) >= (count or config.offer):
                        return found
                start += config.window
        day += timedelta(days=1)
    return found


def window_text(start: datetime, end: datetime, lang: str, now: datetime, tz) -> str:
    """'morgen tussen 10:00 en 11:00' / 'tomorrow between 10:00 and 11:00'."""
    between, and_ = ("tussen", "en") if lang == "nl" else ("between", "and")
    return (f"{_day_words(start, lang, now, tz)} {between} {start.astimezone(tz):%H:%M} {and_} "
            f"{end.astimezone(tz):%H:%M}")


def button_title(start: datetime, end: datetime, lang: str, now: datetime, tz) -> str:
    """'morgen 10:00–11:00'."""
    return f"{_day_words(start, lang, now, tz)} {start.astimezone(tz):%H:%M}–{end.astimezone(tz):%H:%M}"


_ISO = re.compile(r"\b(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?(?:[+-]\d{2}:\d{2}|Z))")
_ORDINALS = {"1": 0, "eerste": 0, "first": 0, "2": 1, "tweede": 1, "second": 1, "3": 2, "derde": 2, "third": 2,
             "4": 3, "vierde": 3, "fourth": 3}
_HOUR = re.compile(r"\b(?:om|at|van|from|rond|around|vanaf|tussen|between)\s+(\d{1,2})(?:[:.]\d{2})?\b"
                   r"|\b(\d{1,2})[:.]\d{2}\b|\b(\d{1,2})\s*(?:uur|u|h|am|pm)\b", re.I)
_TODAY = re.compile(r"\b(?:vandaag|today)\b", re.I)
_TOMORROW = re.compile(r"\b(?:morgen|tomorrow)(?!\s*(?:ochtend|middag|avond))|\bmorgen(?=ochtend|middag|avond)", re.I)
_PARTS = {"morning": re.compile(r"ochtend|morning|'s morgens|voor de middag|before noon", re.I),
          "afternoon": re.compile(r"middag|afternoon|na de lunch|after lunch", re.I)}


def pick(text: str, offered: list[tuple[datetime, datetime]], tz, now: datetime) -> tuple[datetime, datetime] | None:
    """Which offered window the customer chose: the button (its ISO start), "de tweede", "2",
    "morgenmiddag", "om 14:00", "tomorrow at 10"; None when the reply names none of them."""
    text = (text or "").strip()
    if not offered:
        return None
    iso = _ISO.search(text)
    if iso:
        try:
            chosen = datetime.fromisoformat(iso.group(1).replace("Z", "+00:00"))
        except ValueError:
            chosen = None
        return next(((s, e) for s, e in offered if s == chosen), None)
    words = re.findall(r"[\w']+", text.lower())
    if len(words) <= 3 and not _HOUR.search(text):
        for word in words:
            if word in _ORDINALS and _ORDINALS[word] < len(offered):
                return offered[_ORDINALS[word]]
    candidates, named = list(offered), False
    today = now.astimezone(tz).date()
    if _TOMORROW.search(text):
        candidates, named = [w for w in candidates if w[0].astimezone(tz).date() == today + timedelta(days=1)], True
    elif _TODAY.search(text):
        candidates, named = [w for w in candidates if w[0].astimezone(tz).date() == today], True
    for lang in ("nl", "en"):
        for index, name in enumerate(DAY_NAMES[lang]):
            if re.search(rf"\b{name}\b", text, re.I):
                candidates, named = [w for w in candidates if w[0].astimezone(tz).weekday() == index], True
    hour = _HOUR.search(text)
    if hour:
        h = int(next(g for g in hour.groups() if g))
        if h <= 6 or ("pm" in hour.group(0).lower() and h < 12):
            h += 12  # "om 2", "2pm": in the afternoon
        candidates, named = [w for w in candidates
                             if w[0].astimezone(tz).hour <= h < max(w[1].astimezone(tz).hour, w[0].astimezone(tz).hour + 1)], True
    for part, pattern in _PARTS.items():
        if pattern.search(text):
            candidates, named = [w for w in candidates if (w[0].astimezone(tz).hour < 12) == (part == "morning")], True
    return candidates[0] if named and candidates else None


def masked(phone: str) -> str:
    """A number's last four digits, as the customer recognises it without showing it whole: '45 01'."""
    digits = re.sub(r"\D", "", phone or "")
    return f"{digits[-4:-2]} {digits[-2:]}" if len(digits) >= 4 else "?"


# -- the desk's callback list ----------------------------------------------------------------------
DUE, LATER, OVERDUE = "due", "later", "overdue"


class CallbackError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class CallbackDesk:
    """What agents do with callbacks: the list (due now, later, overdue), done, not reached
    (tried again in the first free window after `retry`, the customer told; after
    `max_attempts` closed, the customer told) and moved (the customer told). Messages to the
    customer go the promised way (bot/promises/watch.py `PromiseWatch.tell`)."""

    def __init__(self, watch: Any, settings: CallbackConfig | None = None) -> None:
        self.watch = watch
        self.records = watch.records
        self.clock = watch.clock
        self.config = settings or config()

    @property
    def levels(self) -> ServiceLevels:
        return self.watch._callback_levels()

    async def _promise_of(self, ticket_id: int):
        promises = [p for p in await self.records.promises_of_ticket(ticket_id) if p.status in ("open", "renewing")]
        return promises[-1] if promises else None

    async def listing(self, lang: str) -> dict[str, list[dict[str, Any]]]:
        now, tz = self.clock.now(), self.levels.tz
        found: dict[str, list[dict[str, Any]]] = {DUE: [], LATER: [], OVERDUE: []}
        for ticket in await self.records.callbacks():
            data = ticket.data or {}
            try:
                start = datetime.fromisoformat(data["window_start"]) if data.get("window_start") else None
            except ValueError:
                start = None
            end = ticket.promised_by
            if end is None:
                continue
            state = OVERDUE if now > end else DUE if start is None or now >= start - self.config.reminder else LATER
            customer = await self.records.customer(ticket.customer_id)
            found[state].append({
                "ticket": ticket.id, "customer_id": ticket.customer_id,
                "customer": customer.name if customer else "", "customer_number": customer.customer_number if customer else "",
                "phone": data.get("phone") or (customer.phone if customer else ""), "language": data.get("language", "nl"),
                "window_start": start.isoformat() if start else None, "window_end": end.isoformat(),
                "window": window_text(start, end, lang, now, tz) if start else None,
                "attempts": int(data.get("attempts") or 0), "preferred_time": data.get("preferred_time"),
                "details": ticket.details, "state": state,
            })
        return found

    async def _open(self, ticket_id: int):
        ticket = await self.records.ticket(ticket_id)
        if ticket is None or ticket.kind != "callback":
            raise CallbackError("unknown_callback")
        if ticket.status != "open":
            raise CallbackError("callback_closed")
        return ticket

    async def done(self, ticket_id: int, agent: str) -> dict[str, Any]:
        ticket = await self._open(ticket_id)
        await self.records.close_ticket(ticket.id, now=self.clock.now())
        await self.records.contact(ticket.customer_id, "phone", "callback", f"ticket {ticket.id} called by {agent}")
        return {"ticket": ticket.id, "status": "closed"}

    async def windows(self, count: int = 8) -> list[tuple[datetime, datetime]]:
        now = self.clock.now()
        return free_windows(self.levels, await self.records.callback_windows(now), now, self.config, count=count)

    async def not_reached(self, ticket_id: int, agent: str) -> dict[str, Any]:
        from bot.texts import messages

        ticket = await self._open(ticket_id)
        now, data = self.clock.now(), dict(ticket.data or {})
        attempts = int(data.get("attempts") or 0) + 1
        promise = await self._promise_of(ticket.id)
        lang = data.get("language") or (promise.language if promise else None) or "nl"
        await self.records.answer_ticket_promises(ticket.id, now)  # we called in the window: that was kept
        await self.records.contact(ticket.customer_id, "phone", "callback", f"ticket {ticket.id} not reached ({agent})")
        if attempts >= self.config.max_attempts:
            await self.records.reschedule_ticket(ticket.id, ticket.promised_by, attempts=attempts)
            await self.records.close_ticket(ticket.id, status="not_reached", now=now)
            if promise is not None:
                await self.watch.tell(promise, messages.text("callback_given_up", lang, attempts=attempts))
            return {"ticket": ticket.id, "status": "not_reached", "attempts": attempts}
        free = free_windows(self.levels, await self.records.callback_windows(now), now, self.config, count=1,
                            after=now + self.config.retry)
        if not free:
            raise CallbackError("no_free_window")
        start, end = free[0]
        text = messages.text("callback_not_reached", lang, window=window_text(start, end, lang, now, self.levels.tz))
        await self.records.reschedule_ticket(ticket.id, end, attempts=attempts, window_start=start.isoformat(),
                                             window_end=end.isoformat())
        if promise is not None:
            await self.records.add_promise(promise.conversation, promise.customer_id, "callback", text, end,
                                           channel=promise.channel, language=lang, queue=promise.queue,
                                           owed_by=promise.owed_by, ticket_id=ticket.id, now=now, window_start=start)
            told = await self.watch.tell(promise, text)
        else:
            told = False
        return {"ticket": ticket.id, "status": "open", "attempts": attempts, "window_start": start.isoformat(),
                "window_end": end.isoformat(), "told": told}

    async def moved(self, ticket_id: int, agent: str, start: datetime) -> dict[str, Any]:
        from bot.texts import messages

        ticket = await self._open(ticket_id)
        now = self.clock.now()
        free = {s: e for s, e in free_windows(self.levels, await self.records.callback_windows(now), now, self.config,
                                             count=200)}
        if start not in free:
            raise CallbackError("window_not_free")
        end = free[start]
        promise = await self._promise_of(ticket.id)
        data = ticket.data or {}
        lang = data.get("language") or (promise.language if promise else None) or "nl"
        text = messages.text("callback_moved", lang, window=window_text(start, end, lang, now, self.levels.tz),
                             phone=data.get("phone") or "")
        if promise is None or not await self.records.claim_renewal(promise.id):
            raise CallbackError("callback_busy")
        if not await self.watch.tell(promise, text):
            await self.records.release_renewal(promise.id)
            raise CallbackError("customer_unreachable")
        await self.records.renew_promise(promise.id, now, end, text, f"moved by {agent}", start)
        return {"ticket": ticket.id, "status": "open", "window_start": start.isoformat(), "window_end": end.isoformat()}
