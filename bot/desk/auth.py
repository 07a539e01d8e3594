"""Who works in the desk: agents (records database), passwords (argon2id), sessions and login
throttling (Redis).

Passwords are hashed and verified in a worker thread (argon2 is deliberately slow). Nothing here
logs a password, a hash or a session token; sessions are stored under sha256(token), so the
Redis contents cannot be replayed as cookies.

Redis keys, under the gateway's key prefix:
  <p>:desk:session:<sha256(token)>   hash: agent_id, csrf, stamp, created (TTL 8 h)
  <p>:desk:login:pair:<sha256(user, client)>  hash n, last: attempts of one username from one
                                     client since its last success (TTL 1 h from the last)
  <p>:desk:login:client:<sha256(client)>  failed attempts from one client, any username
                                     (TTL 15 min from the first)
  <p>:desk:login:user:<sha256(user)>  attempts on one username from anywhere since its last
                                     success (TTL 15 min from the last)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.policy.mandate import MandateTable
from bot.records.models import Agent
from bot.records.repository import Records

if TYPE_CHECKING:
    from bot.people import AgentInfo

MIN_PASSWORD = 10
MAX_PASSWORD = 1024          # longer is refused before hashing (hashing is the expensive part)
SESSION_TTL = 8 * 3600
# Login throttling (LoginThrottle): slows guessing without letting a stranger lock an agent out.
LOGIN_PAIR_FREE = 5             # attempts of one username from one client before it must wait
LOGIN_PAIR_WAIT = 60            # seconds the pair waits after that, doubling per further failure ...
LOGIN_PAIR_MAX_WAIT = 15 * 60   # ... up to this
LOGIN_PAIR_TTL = 3600           # a pair's count is forgotten an hour after its last attempt
LOGIN_CLIENT_MAX = 30           # failed attempts from one client, any usernames, per window
LOGIN_CLIENT_WINDOW = 15 * 60
LOGIN_USER_FREE = 4             # attempts on one username from anywhere before each is slowed ...
LOGIN_USER_DELAY = 0.5          # ... by this, doubling per further attempt ...
LOGIN_USER_MAX_DELAY = 5.0      # ... up to this; never refused: the agent can always log in
LOGIN_USER_TTL = 15 * 60
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
NAME_LIST = re.compile(r"^[a-z0-9_]{1,32}$")
UI_LANGUAGES = ("nl", "en")
NOT_A_PERSON = "bot"

_hasher = PasswordHasher()  # argon2id, the library's current recommended parameters


class AgentError(ValueError):
    """A wrong agent definition: unknown role, duplicate username, short password, ..."""


# ----------------------------------------------------------------------------- passwords

def _verify_sync(stored: str, password: str) -> tuple[bool, str | None]:
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    return True, _hasher.hash(password) if _hasher.check_needs_rehash(stored) else None


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(24))


async def hash_password(password: str) -> str:
    check_password(password)
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, new hash when the stored one should be replaced). Without a stored hash a dummy
    is verified, so an unknown username takes as long as a wrong password."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        password = ""
    if stored is None:
        dummy = await asyncio.to_thread(_dummy_hash)
        await asyncio.to_thread(_verify_sync, dummy, password)
        return False, None
    return await asyncio.to_thread(_verify_sync, stored, password)


def check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AgentError(f"the password must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AgentError(f"the password must be at most {MAX_PASSWORD} characters")


def password_stamp(password_hash: str) -> str:
    """Changes whenever the password does: sessions made with an older password stop working."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- roles

def person_roles(table: MandateTable | None = None) -> tuple[str, ...]:
    """The roles a person can have: those of the mandate table except `bot`, lowest first."""
    table = table or MandateTable.load()
    return tuple(r for r in table.roles if r != NOT_A_PERSON)


def _names(values: Iterable[str], what: str) -> list[str]:
    out = []
    for value in values:
        value = value.strip().lower()
        if not value:
            continue
        if not NAME_LIST.match(value):
            raise AgentError(f"{what} {value!r}: use letters, digits and _ only")
        if value not in out:
            out.append(value)
    return out


def agent_info(agent: Agent) -> "AgentInfo":
    from bot.people import AgentInfo

    return AgentInfo(username=agent.username, name=agent.name, role=agent.role,
                     skills=tuple(agent.skills or ()), languages=tuple(agent.languages or ()))


def public(agent: Agent) -> dict[str, Any]:
    """The agent as the desk shows it (never the hash)."""
    return {"username": agent.username, "name": agent.name, "role": agent.role,
            "skills": list(agent.skills or []), "languages": list(agent.languages or []),
            "ui_language": agent.ui_language if agent.ui_language in UI_LANGUAGES else "nl",
            "active": bool(agent.active)}


# ----------------------------------------------------------------------------- agents (database)

class Agents:
    """The agents table, through the records' sessions."""

    def __init__(self, records: Records) -> None:
        self.records = records

    async def by_username(self, username: str) -> Agent | None:
        async with self.records.session() as s:
            row = await s.execute(select(Agent).where(Agent.username == username.strip().lower()))
            return row.scalars().first()

    async def by_id(self, agent_id: int) -> Agent | None:
        async with self.records.session() as s:
            return await s.get(Agent, agent_id)

    async def all(self) -> list[Agent]:
        async with self.records.session() as s:
            return list((await s.execute(select(Agent).order_by(Agent.username))).scalars())

    async def create(self, *, username: str, name: str, role: str, skills: Iterable[str],
                     languages: Iterable[str], password: str, ui_language: str = "nl",
                     table: MandateTable | None = None) -> Agent:
        from bot.shared.language import SUPPORTED

        username = username.strip().lower()
        if not USERNAME.match(username):
            raise AgentError("the username must be 2-64 characters: lowercase letters, digits, '.', '_' or '-', "
                             "starting with a letter or digit")
        name = " ".join(name.split())
        if not name or len(name) > 200:
            raise AgentError("the name must be 1-200 characters")
        roles = person_roles(table)
        if role not in roles:
            raise AgentError(f"unknown role {role!r} (roles: {', '.join(roles)})")
        skills = _names(skills, "skill")
        if not skills:
            raise AgentError("give at least one skill, e.g. general")
        languages = _names(languages, "language")
        unknown = [lang for lang in languages if lang not in SUPPORTED]
        if unknown or not languages:
            raise AgentError(f"languages must be some of {', '.join(SUPPORTED)}, got {', '.join(languages) or 'none'}")
        if ui_language not in UI_LANGUAGES:
            raise AgentError(f"ui language must be one of {', '.join(UI_LANGUAGES)}, got {ui_language!r}")
        if await self.by_username(username) is not None:
            raise AgentError(f"an agent named {username!r} already exists")
        password_hash = await hash_password(password)
        agent = Agent(username=username, name=name, role=role, skills=skills, languages=languages,
                      ui_language=ui_language, password_hash=password_hash, active=True)
        try:
            async with self.records.session() as s, s.begin():
                s.add(agent)
        except IntegrityError:
            raise AgentError(f"an agent named {username!r} already exists") from None
        return agent

    async def set_password(self, username: str, password: str) -> bool:
        password_hash = await hash_password(password)
        async with self.records.session() as s, s.begin():
            result = await s.execute(update(Agent).where(Agent.username == username.strip().lower())
                                     .values(password_hash=password_hash))
            return result.rowcount == 1

    async def replace_hash(self, agent_id: int, old_hash: str, new_hash: str) -> None:
        """Rehash after a parameter change; only when nobody changed the password meanwhile."""
        async with self.records.session() as s, s.begin():
            await s.execute(update(Agent).where(Agent.id == agent_id, Agent.password_hash == old_hash)
                            .values(password_hash=new_hash))

    async def set_active(self, username: str, active: bool) -> bool:
        async with self.records.session() as s, s.begin():
            result = await s.execute(update(Agent).where(Agent.username == username.strip().lower())
                                     .values(active=active))
            return result.rowcount == 1


# ----------------------------------------------------------------------------- sessions (Redis)

def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    token_hash: str
    agent_id: int
    csrf: str
    stamp: str

    def csrf_ok(self, given: Any) -> bool:
        return isinstance(given, str) and hmac.compare_digest(given.encode(), self.csrf.encode())


class Sessions:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, token_hash: str) -> str:
        return f"{self.prefix}:desk:session:{token_hash}"

    async def create(self, agent: Agent) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(_digest(token), agent.id, secrets.token_urlsafe(32), password_stamp(agent.password_hash))
        key = self._key(session.token_hash)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"agent_id": str(agent.id), "csrf": session.csrf, "stamp": session.stamp,
                                    "created": f"{time.time():.0f}"})
            pipe.expire(key, SESSION_TTL)
            await pipe.execute()
        return token, session

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 128:
            return None
        token_hash = _digest(token)
        data = await self.redis.hgetall(self._key(token_hash))
        if not data or not data.get("agent_id", "").isdigit() or not data.get("csrf"):
            return None
        return Session(token_hash, int(data["agent_id"]), data["csrf"], data.get("stamp", ""))

    async def delete(self, session: Session) -> None:
        await self.redis.delete(self._key(session.token_hash))


@dataclass(frozen=True)
class Attempt:
    """The throttle's verdict on one login attempt."""

    allowed: bool
    retry_after: int = 0        # seconds, when refused
    delay: float = 0.0          # seconds to wait before checking the password, when allowed
    reason: str = ""            # "client" or "pair" when refused (for the log; ids only)


# One round trip, atomic: parallel guesses count as much as sequential ones.
# KEYS: pair, client, user. ARGV: now, pair_free, pair_wait, pair_max_wait, pair_ttl,
# client_max, client_window, user_ttl. Returns {state, retry_after, user_attempts_before}
# with state 0 = go on, 1 = client refused, 2 = pair refused.
_ATTEMPT = """
local now = tonumber(ARGV[1])
local client = tonumber(redis.call('GET', KEYS[2]) or '0')
if client >= tonumber(ARGV[6]) then
  return {1, math.max(redis.call('TTL', KEYS[2]), 1), 0}
end
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local free = tonumber(ARGV[2])
if n >= free then
  local wait = math.min(tonumber(ARGV[3]) * 2 ^ (n - free), tonumber(ARGV[4]))
  local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
  if now < last + wait then
    return {2, math.ceil(last + wait - now), 0}
  end
end
redis.call('HSET', KEYS[1], 'n', n + 1, 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
end
local before = redis.call('INCR', KEYS[3]) - 1
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[8]))
return {0, 0, before}
"""


def user_delay(attempts_before: int) -> float:
    """The wait before checking a password, from the attempts on that username (any client)
    since its last success: none for the first few, then growing, never above the bound."""
    if attempts_before < LOGIN_USER_FREE:
        return 0.0
    return min(LOGIN_USER_DELAY * 2 ** (attempts_before - LOGIN_USER_FREE), LOGIN_USER_MAX_DELAY)


class LoginThrottle:
    """Slows password guessing three ways, none of which lets a stranger lock an agent out:

    - per (username, client): LOGIN_PAIR_FREE attempts, then that pair waits LOGIN_PAIR_WAIT
      seconds, doubling with each further failure up to LOGIN_PAIR_MAX_WAIT (429 meanwhile);
    - per client, over all usernames: at most LOGIN_CLIENT_MAX failures per LOGIN_CLIENT_WINDOW
      (429 after that), so one address cannot try many usernames;
    - per username, over all clients: only a growing delay before the password is checked
      (at most LOGIN_USER_MAX_DELAY seconds), never a refusal, so the agent, from her own
      client, still logs in however many failures strangers caused.

    An attempt counts before the password is checked (parallel guesses count too); a correct
    password clears its pair and the username's count and takes its own attempt off the
    client's. `client` is the address from bot.shared.forwarded (the peer, or what a trusted proxy
    says); it is stored only as a hash, like the username.
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._script = redis.register_script(_ATTEMPT)

    def _keys(self, username: str, client: str) -> list[str]:
        user = username.strip().lower()
        base = f"{self.prefix}:desk:login"
        return [f"{base}:pair:{_digest(user + chr(0) + client)}", f"{base}:client:{_digest(client)}",
                f"{base}:user:{_digest(user)}"]

    async def attempt(self, username: str, client: str) -> Attempt:
        state, retry_after, before = await self._script(
            keys=self._keys(username, client),
            args=[f"{time.time():.3f}", LOGIN_PAIR_FREE, LOGIN_PAIR_WAIT, LOGIN_PAIR_MAX_WAIT, LOGIN_PAIR_TTL,
                  LOGIN_CLIENT_MAX, LOGIN_CLIENT_WINDOW, LOGIN_USER_TTL])
        state, retry_after, before = int(state), int(retry_after), int(before)
        if state:
            return Attempt(False, retry_after=retry_after, reason="client" if state == 1 else "pair")
        return Attempt(True, delay=user_delay(before))

    async def succeeded(self, username: str, client: str) -> None:
        """A correct password: this pair's and this username's earlier attempts no longer count."""
        pair, client_key, user = self._keys(username, client)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(pair, user)
            pipe.decr(client_key)
            _, left = await pipe.execute()
        if int(left) <= 0:
            await self.redis.delete(client_key)
