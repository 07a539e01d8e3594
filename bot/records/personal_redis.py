"""The Redis side of export and erase: conversation state, bindings and the Rasa tracker.

Keys under the gateway's prefix `<p>` (KEY_PREFIX; Rasa's tracker and lock store use the same
prefix, endpoints.yml `key_prefix: ${RASA_KEY_PREFIX}`):

  <p>:identity:<channel>:<address>   -> conversation   the binding; its name holds the address
  <p>:customer:<id>                  -> conversation   the customer's one conversation
  <p>:conv:<key>                     hash              state, language, last_channel, last_address, customer_id
  <p>:tracker:<key>                  JSON              Rasa's tracker (RedisTrackerStore: key_prefix + "tracker:" + sender id)
  <p>:lock:<key>                     Rasa's lock store
  <p>:buttons:<key>:<channel>, <p>:transcript:<key>, <p>:handoff:<key>, <p>:desk:deciding:<key>
  <p>:handoff:waiting (zset), <p>:handoff:agent:<user> (set)  conversation keys as members
  <p>:link-code:<code>               -> customer id
  <p>:wa_inbound:<phone>             when the customer last wrote on WhatsApp (24-hour window)
  <p>:tgcb:<short>                   a Telegram button's payload
  <p>:seen:<channel>:<message id>    "1" for 2 days: the channel's message id only, no identifier
                                     (checked like every other key; deleted only if one holds one)
  <p>:webverified:<session id>       -> customer id     a web chat session proved to be the customer
  <p>:idlimit:<kind>:<ref>           attempt counters; ref = bot.policy.identity.client_ref of a conversation
                                     key, a client address or the customer id (a one-way hash, but
                                     of the customer's own data: deleted for theirs)
  <p>:inbox:fallback                 hash "<channel>:<message id>" -> the stored message (JSON with
                                     its sender `address` and text) while the database was away
  <p>:inbox:done:<inbox row id>      "1" for 2 days: the message was answered (no identifier;
                                     deleted with the customer's inbox rows, see `forget_done`)
  <p>:webchat:seq:<key>, <p>:webchat:log:<key>   what the conversation's web chats were sent (7 days,
                                     for a browser that was away: channels/webchat.py `SentLog`)
  <p>:webchat:left:<session id>      "<conversation> <seq>": where the session's last socket left

The customer's conversations are found from the records (transcript, promises, feedback), from
`customer:<id>`, from conversation hashes and handoff items with their customer_id, from Rasa
trackers whose `customer_id` slot is theirs, from `webverified:<session>` keys holding their id
(the session id is one of their addresses), and then, repeatedly, from the addresses those
conversations were reached on and from anonymous conversations (no customer) that hold one of the
customer's identifiers (customer number, email, phone, order number, ...). Every key whose name
contains one of those conversations is deleted, as are bindings pointing at them, keys whose
name or value holds an identifier (unless they belong to another customer's conversation: those
are never touched, and counted as residual), and members of shared sets and queues.

Works against a running gateway: the first pass deletes the bindings, so the customer's next
message starts a new conversation; a second pass after the SQL part removes what a turn in
flight wrote back meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from redis.exceptions import RedisError

from bot.policy.identity import client_ref
from bot.records.identifiers import Identifiers, Matcher

REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
CONTAINERS = ("set", "zset", "list", "hash", "stream")


@dataclass
class Plan:
    conversations: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    delete: dict[str, str] = field(default_factory=dict)            # key -> type
    members: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, type, member or field or id)
    snapshot: dict[str, tuple[str, Any]] = field(default_factory=dict)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _tracker_customer(raw: str) -> str:
    """The last value of the `customer_id` slot in a serialised Rasa tracker ("" when none)."""
    try:
        events = json.loads(raw).get("events") or []
    except (ValueError, AttributeError):
        return ""
    value = ""
    for event in events:
        if isinstance(event, dict) and event.get("event") == "slot" and event.get("name") == "customer_id":
            value = "" if event.get("value") is None else str(event.get("value"))
    return value


class RedisState:
    def __init__(self, redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def snapshot(self) -> dict[str, tuple[str, Any]]:
        """Every key under the prefix with its type and value."""
        out: dict[str, tuple[str, Any]] = {}
        async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000):
            kind = await self.redis.type(key)
            if kind == "string":
                value: Any = await self.redis.get(key)
            elif kind == "hash":
                value = await self.redis.hgetall(key)
            elif kind == "list":
                value = await self.redis.lrange(key, 0, -1)
            elif kind == "set":
                value = sorted(await self.redis.smembers(key))
            elif kind == "zset":
                value = await self.redis.zrange(key, 0, -1)
            elif kind == "stream":
                value = [[entry_id, fields] for entry_id, fields in await self.redis.xrange(key)]
            elif kind == "none":
                continue
            else:
                value = None
            if value is not None:
                out[key] = (kind, value)
        return out

    async def collect(self, ids: Identifiers) -> Plan:
        """What belongs to the customer (nothing is changed)."""
        snap = await self.snapshot()
        cid = str(ids.customer_id)
        head = self.prefix + ":"
        rest = {key: key[len(head):] for key in snap}
        owners: dict[str, str] = {}  # conversation -> its customer id ("" anonymous)
        for key, (kind, value) in snap.items():
            if rest[key].startswith("conv:") and kind == "hash":
                owners[rest[key][5:]] = value.get("customer_id") or ""
        for key, (kind, value) in snap.items():
            if rest[key].startswith("tracker:") and kind == "string":
                conv = rest[key][8:]
                if not owners.get(conv):
                    owners[conv] = _tracker_customer(value)
        plan = Plan(snapshot=snap)
        convs = plan.conversations
        convs |= {c for c in ids.conversations}
        plan.addresses |= ids.addresses
        for key, (kind, value) in snap.items():  # web chat sessions that proved to be the customer
            if rest[key].startswith("webverified:") and kind == "string" and value == cid:
                plan.delete[key] = kind
                plan.addresses.add(rest[key][len("webverified:"):])
        convs |= {c for c, owner in owners.items() if owner == cid}
        customer_key = self._k("customer", cid)
        if customer_key in snap and snap[customer_key][0] == "string":
            convs.add(snap[customer_key][1])
        for key, (kind, value) in snap.items():
            if rest[key].startswith("handoff:") and kind == "string":
                try:
                    item = json.loads(value)
                except ValueError:
                    continue
                if isinstance(item, dict) and str(item.get("customer_id")) == cid and item.get("conversation"):
                    convs.add(str(item["conversation"]))

        def owned_by(key: str) -> set[str]:
            kind, value = snap[key]
            found = {part for part in rest[key].split(":") if part in owners or part in convs}
            if rest[key].startswith(("identity:", "customer:")) and kind == "string":
                found.add(value)
            return found

        def foreign(found: set[str]) -> bool:  # another customer's conversation
            return any(owners.get(c, "") not in ("", cid) and c not in ids.conversations for c in found)

        for _ in range(6):  # grow until nothing new: addresses -> bindings -> conversations
            before = (len(convs), len(plan.addresses))
            for conv in list(convs):
                hashed = snap.get(self._k("conv", conv))
                if hashed and hashed[0] == "hash" and hashed[1].get("last_address"):
                    plan.addresses.add(hashed[1]["last_address"])
            for key, (kind, value) in snap.items():
                if rest[key].startswith("identity:") and kind == "string" and value in convs:
                    plan.addresses.add(rest[key].split(":", 2)[2])
            strong = Matcher(ids.values | plan.addresses | convs)
            for key, (kind, value) in snap.items():
                found = owned_by(key)
                if not found or found <= convs or foreign(found):
                    continue
                if strong.search(rest[key]) or strong.search(_text(value)):
                    convs |= found  # an anonymous conversation that holds the customer's identifiers
            if (len(convs), len(plan.addresses)) == before:
                break

        strong = Matcher(ids.values | plan.addresses | convs)
        # rate-limit counters keyed by a one-way reference of their conversations, addresses or id
        refs = {client_ref(v) for v in ids.values | plan.addresses | convs | {cid}}
        for key, (kind, value) in snap.items():
            found = owned_by(key)
            name = rest[key]
            if key in plan.delete:
                continue
            if name.startswith("idlimit:"):
                if name.rsplit(":", 1)[-1] in refs:
                    plan.delete[key] = kind
                continue
            if name == "inbox:fallback" and kind == "hash":
                for name_, field_value in value.items():
                    if self._fallback_theirs(field_value, plan.addresses, strong):
                        plan.members.append((key, kind, name_))
                continue
            if found & convs and not foreign(found - convs):
                plan.delete[key] = kind
            elif name == f"customer:{cid}" or (name.startswith("link-code:") and value == cid):
                plan.delete[key] = kind
            elif foreign(found):
                continue  # another customer's conversation: never touched (residual counts it)
            elif strong.search(name):
                plan.delete[key] = kind
            elif kind == "string":
                if strong.search(value):
                    plan.delete[key] = kind
            elif kind in ("set", "zset", "list"):
                for member in value:
                    if member in convs or strong.search(member):
                        plan.members.append((key, kind, member))
            elif kind == "hash":
                for name_, field_value in value.items():
                    if name_ in convs or field_value in convs or strong.search(name_) or strong.search(field_value):
                        plan.members.append((key, kind, name_))
            elif kind == "stream":
                for entry_id, fields in value:
                    if strong.search(_text(fields)):
                        plan.members.append((key, kind, entry_id))
        return plan

    @staticmethod
    def _fallback_theirs(raw: str, addresses: set[str], strong: Matcher) -> bool:
        """A message kept in Redis while the database was away: sent from one of their addresses,
        or naming them (bot/pipeline/inbox.py stores the row as JSON)."""
        try:
            row = json.loads(raw)
        except ValueError:
            row = None
        if isinstance(row, dict) and str(row.get("address")) in addresses:
            return True
        return strong.search(raw)

    async def forget_done(self, messages: Iterable[Any]) -> int:
        """The done markers of deleted inbox rows (SQLite may give a deleted row's id to a new
        message, which a stale marker would then take for answered)."""
        keys = [self._k("inbox", "done", str(m)) for m in messages]
        n = 0
        for i in range(0, len(keys), 500):
            n += await self.redis.delete(*keys[i:i + 500])
        return n

    async def delete(self, plan: Plan) -> dict[str, int]:
        """Carry out the plan: bindings first. Returns counts per key family."""
        counts: dict[str, int] = {}
        head = self.prefix + ":"

        def family(key: str) -> str:
            return key[len(head):].split(":", 1)[0]

        first = [k for k in plan.delete if family(k) in ("identity", "customer")]
        rest = [k for k in plan.delete if k not in first]
        for batch in (first, rest):
            for i in range(0, len(batch), 500):
                chunk = batch[i:i + 500]
                deleted = await self.redis.delete(*chunk) if chunk else 0
                if deleted:
                    for key in chunk:
                        counts[family(key)] = counts.get(family(key), 0) + 1
        removed = 0
        for key, kind, member in plan.members:
            if kind == "set":
                removed += await self.redis.srem(key, member)
            elif kind == "zset":
                removed += await self.redis.zrem(key, member)
            elif kind == "list":
                removed += await self.redis.lrem(key, 0, member)
            elif kind == "hash":
                removed += await self.redis.hdel(key, member)
            elif kind == "stream":
                removed += await self.redis.xdel(key, member)
        counts["members_removed"] = removed
        counts["conversations"] = len(plan.conversations)
        return counts

    async def dump(self, plan: Plan) -> dict[str, Any]:
        """The plan's keys and values, for an export (trackers parsed)."""
        head = self.prefix + ":"
        keys: dict[str, Any] = {}
        trackers: dict[str, Any] = {}
        for key in sorted(plan.delete):
            kind, value = plan.snapshot[key]
            name = key[len(head):]
            if name.startswith("tracker:") and kind == "string":
                try:
                    trackers[name[8:]] = json.loads(value)
                    continue
                except ValueError:
                    pass
            keys[key] = {"type": kind, "value": value}
        members = []
        for key, kind, member in plan.members:
            entry = {"key": key, "type": kind, "member": member}
            if kind == "hash":  # a field's value is theirs too (a message kept in inbox:fallback)
                raw = plan.snapshot[key][1].get(member)
                try:
                    entry["value"] = json.loads(raw)
                except (TypeError, ValueError):
                    entry["value"] = raw
            members.append(entry)
        return {"keys": keys, "members": members, "trackers": trackers}

    async def residual(self, matcher: Matcher) -> list[str]:
        """Keys whose name or value still holds one of the identifiers."""
        return [key for key, (_, value) in (await self.snapshot()).items()
                if matcher.search(key) or matcher.search(_text(value))]

    async def announce(self, conversations: Iterable[str]) -> None:
        """Tell every desk (bot/people/queue.py's event channel) to refresh: the items are gone."""
        channel = self._k("desk", "events")
        await self.redis.publish(channel, json.dumps({"type": "queue"}))
        for conv in sorted(conversations):
            await self.redis.publish(channel, json.dumps({"type": "state", "conversation": conv, "state": "closed"}))
