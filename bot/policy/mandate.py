"""Mandates: who may decide what without asking anyone.

The bot and every agent role are checked against one table, config/mandates.yml (its comments
describe the format). A request beyond a role's mandate goes to the lowest role that may grant
it. Pure: no I/O except reading that file, no database.

    table = MandateTable.load()
    verdict = table.evaluate("bot", MandateRequest("refund", amount=Decimal("40"), order_age_days=3))
    verdict.allowed, verdict.lowest_role, verdict.explain("nl"), verdict.as_dict()
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from bot.policy.clock import SYSTEM, Clock
from bot.texts.fmt import euros

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "mandates.yml"
ENV_VAR = "MANDATES_FILE"


class MandateError(ValueError):
    """The mandate configuration is wrong, or a role/decision is not in it."""


# ----------------------------------------------------------------------------- requests

@dataclass(frozen=True)
class MandateRequest:
    """What is asked for. Amount and percent are normalised to Decimal (floats via str)."""

    decision: str
    amount: Decimal | None = None          # euros
    instalments: int | None = None
    percent: Decimal | None = None
    order_age_days: int | None = None
    customer_segment: str | None = None
    previous: tuple[date, ...] = ()        # dates the customer earlier received this decision
    today: date | None = None              # None: the table's clock's today at evaluation

    def __post_init__(self) -> None:
        if not isinstance(self.decision, str) or not self.decision:
            raise ValueError(f"decision must be a non-empty name, got {self.decision!r}")
        for name in ("amount", "percent"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                number = None if isinstance(value, bool) else Decimal(str(value))
            except InvalidOperation:
                number = None
            if number is None or not number.is_finite() or number < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
            object.__setattr__(self, name, number)
        for name in ("instalments", "order_age_days"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
        object.__setattr__(self, "previous", tuple(self.previous))
        if not all(isinstance(d, date) for d in self.previous):
            raise ValueError(f"previous must hold dates, got {self.previous!r}")


# ----------------------------------------------------------------------------- verdicts

_DECISIONS = {  # (nl, en) names in reason texts; other decisions: the name without underscores
    "refund": ("een terugbetaling", "a refund"),
    "goodwill_voucher": ("een coulancebon", "a goodwill voucher"),
    "payment_arrangement": ("een betalingsregeling", "a payment arrangement"),
    "retention_discount": ("een behoudkorting", "a retention discount"),
}
_TEXTS = {  # code -> (nl, en)
    "allowed": ("{role} mag dit zelf toekennen", "{role} may grant this"),
    "not_in_mandate": ("{role} mag {decision} niet zelf toekennen", "{role} may not grant {decision}"),
    "amount_over_limit": ("bedrag {amount} is meer dan de grens van {limit} voor {role}",
                          "amount {amount} is over {role}'s limit of {limit}"),
    "order_too_old": ("bestelling is {order_age_days} dagen oud, meer dan de grens van {limit} dagen voor {role}",
                      "order is {order_age_days} days old, over {role}'s limit of {limit} days"),
    "instalments_over_limit": ("{instalments} termijnen is meer dan de grens van {limit} termijnen voor {role}",
                               "{instalments} instalments is over {role}'s limit of {limit} instalments"),
    "percent_over_limit": ("korting van {percent} is meer dan de grens van {limit} voor {role}",
                           "discount of {percent} is over {role}'s limit of {limit}"),
    "count_exceeded": ("klant kreeg dit al {earlier} binnen {period_days} dagen; {role} mag dit hooguit "
                       "{times} per {period_days} dagen",
                       "customer already received this {earlier} within {period_days} days; {role} may "
                       "grant it at most {times} per {period_days} days"),
    "segment_not_allowed": ("klantsegment '{segment}' valt buiten het mandaat van {role}",
                            "customer segment '{segment}' is outside {role}'s mandate"),
    "missing_amount": ("bedrag ontbreekt, nodig voor de grens van {role}",
                       "amount is missing, needed for {role}'s limit"),
    "missing_order_age": ("leeftijd van de bestelling ontbreekt, nodig voor de grens van {role}",
                          "order age is missing, needed for {role}'s limit"),
    "missing_instalments": ("aantal termijnen ontbreekt, nodig voor de grens van {role}",
                            "number of instalments is missing, needed for {role}'s limit"),
    "missing_percent": ("kortingspercentage ontbreekt, nodig voor de grens van {role}",
                        "discount percentage is missing, needed for {role}'s limit"),
    "missing_segment": ("klantsegment ontbreekt, nodig voor het mandaat van {role}",
                        "customer segment is missing, needed for {role}'s mandate"),
}


def _nl(language: str) -> bool:
    if language not in ("nl", "en"):
        raise ValueError(f"language must be 'nl' or 'en', got {language!r}")
    return language == "nl"


def _money(value: Any, nl: bool) -> str:
    return euros(value, "nl" if nl else "en")


def _percent(value: Any, nl: bool) -> str:
    text = f"{Decimal(value).normalize():f}"
    return (text.replace(".", ",") if nl else text) + "%"


def _times(n: int, nl: bool) -> str:
    return f"{n} keer" if nl else {1: "once", 2: "twice"}.get(n, f"{n} times")


@dataclass(frozen=True)
class Reason:
    """Why a role may not grant a request: a code plus the numbers behind it."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, language: str = "nl") -> str:
        nl, p = _nl(language), dict(self.params)
        p["role"] = ("de " if nl else "the ") + str(p.get("role", "?")).replace("_", " ")
        if "decision" in p:
            p["decision"] = _DECISIONS.get(p["decision"], (p["decision"].replace("_", " "),) * 2)[0 if nl else 1]
        if "amount" in p:
            p["amount"] = _money(p["amount"], nl)
        if "percent" in p:
            p["percent"] = _percent(p["percent"], nl)
        if self.code in ("amount_over_limit", "percent_over_limit"):
            p["limit"] = (_money if self.code == "amount_over_limit" else _percent)(p["limit"], nl)
        if self.code == "count_exceeded":
            p["earlier"], p["times"] = _times(p["count"] - 1, nl), _times(p["limit"], nl)
        template = _TEXTS.get(self.code)
        return template[0 if nl else 1].format(**p) if template else self.code


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    role: str                          # the role asked about
    decision: str
    lowest_role: str | None            # lowest role that may grant it; None: no role can
    reasons: tuple[Reason, ...] = ()   # why `role` may not; empty when allowed
    request: MandateRequest | None = None  # as evaluated (today filled in)

    def explain(self, language: str = "nl") -> str:
        if self.allowed:
            return Reason("allowed", {"role": self.role}).text(language)
        return "; ".join(reason.text(language) for reason in self.reasons)

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable, for the audit log (Decimals as strings, dates ISO)."""
        return {
            "decision": self.decision, "role": self.role, "allowed": self.allowed,
            "lowest_role": self.lowest_role,
            "reasons": [{"code": r.code, "params": _jsonable(r.params), "text": r.text("en")}
                        for r in self.reasons],
            "request": _jsonable(asdict(self.request)) if self.request else None,
        }


# ----------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Limits:
    """What one role may grant for one decision; None = no limit of that kind, Limits() = any."""

    max_amount: Decimal | None = None
    max_order_age_days: int | None = None
    max_count: int | None = None
    period_days: int | None = None
    max_instalments: int | None = None
    max_percent: Decimal | None = None
    segments: tuple[str, ...] | None = None


LIMIT_KEYS = tuple(f.name for f in fields(Limits))


def _number(value: Any, where: str, maximum: int | None = None) -> Decimal:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok or (maximum is not None and value > maximum):
        what = f"a number between 0 and {maximum}" if maximum is not None else "a non-negative number"
        raise MandateError(f"{where} must be {what}, got {value!r}")
    return Decimal(str(value))


def _whole(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MandateError(f"{where} must be a non-negative whole number, got {value!r}")
    return value


def _limits(value: Any, where: str) -> Limits | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if not isinstance(value, dict):
        raise MandateError(f"{where} must be a mapping of limits, {{}} (any) or none, got {value!r}")
    for key in value:
        if key not in LIMIT_KEYS:
            raise MandateError(f"{where}.{key} is not a known limit (known: {', '.join(LIMIT_KEYS)})")
    if ("max_count" in value) != ("period_days" in value):
        given, missing = ("max_count", "period_days") if "max_count" in value else ("period_days", "max_count")
        raise MandateError(f"{where} has {given} without {missing}; give both "
                           "(at most max_count times within period_days days)")
    parsed: dict[str, Any] = {}
    for key, raw in value.items():
        path = f"{where}.{key}"
        if key == "segments":
            if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s for s in raw):
                raise MandateError(f"{path} must be a non-empty list of segment names, got {raw!r}")
            parsed[key] = tuple(raw)
        elif key in ("max_amount", "max_percent"):
            parsed[key] = _number(raw, path, 100 if key == "max_percent" else None)
        else:
            parsed[key] = _whole(raw, path)
    return Limits(**parsed)


# request field, code when missing, code when over the limit; checked in this order
_CHECKS = (("amount", "max_amount", "missing_amount", "amount_over_limit"),
           ("order_age_days", "max_order_age_days", "missing_order_age", "order_too_old"),
           ("instalments", "max_instalments", "missing_instalments", "instalments_over_limit"),
           ("percent", "max_percent", "missing_percent", "percent_over_limit"))


class MandateTable:
    """Roles (lowest first) and, per decision, the Limits of each role that may grant it.
    `clock` (default: the system clock) gives "today" to a request that does not say it, as a
    date in the configured zone (bot/policy/clock.py)."""

    def __init__(self, roles: tuple[str, ...], decisions: dict[str, dict[str, Limits]], clock: Clock | None = None):
        self._roles, self._decisions = roles, decisions  # use from_dict/load: they validate
        self.clock = clock or SYSTEM

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, clock: Clock | None = None) -> MandateTable:
        """Read the YAML file: `path`, else $MANDATES_FILE, else config/mandates.yml."""
        path = Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise MandateError(f"cannot read mandate file {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise MandateError(f"mandate file {path} is not valid YAML: {exc}") from exc
        try:
            return cls.from_dict(data, clock)
        except MandateError as exc:
            raise MandateError(f"{exc} (in {path})") from None

    @classmethod
    def from_dict(cls, data: Any, clock: Clock | None = None) -> MandateTable:
        if not isinstance(data, dict):
            raise MandateError(f"the mandate table must be a mapping with roles and decisions, got {data!r}")
        for key in data:
            if key not in ("roles", "decisions"):
                raise MandateError(f"{key} is not a known section (known: roles, decisions)")
        roles = data.get("roles")
        if not roles:
            raise MandateError("roles must list at least one role, lowest first")
        if not isinstance(roles, list):
            raise MandateError(f"roles must be a list of role names, lowest first, got {roles!r}")
        for i, role in enumerate(roles):
            if not isinstance(role, str) or not role.strip():
                raise MandateError(f"roles[{i}] must be a role name, got {role!r}")
            if role in roles[:i]:
                raise MandateError(f"roles[{i}]: role {role!r} is listed twice")
        decisions = data.get("decisions")
        if not isinstance(decisions, dict) or not decisions:
            raise MandateError(f"decisions must be a non-empty mapping decision -> role -> limits, got {decisions!r}")
        table: dict[str, dict[str, Limits]] = {}
        for name, per_role in decisions.items():
            if not isinstance(name, str) or not name.strip():
                raise MandateError(f"decisions: decision names must be non-empty text, got {name!r}")
            if not isinstance(per_role, dict):
                raise MandateError(f"decisions.{name} must be a mapping role -> limits, got {per_role!r}")
            table[name] = {}
            for role, raw in per_role.items():
                if role not in roles:
                    raise MandateError(f"decisions.{name}.{role}: unknown role {role!r} (roles: {', '.join(roles)})")
                limits = _limits(raw, f"decisions.{name}.{role}")
                if limits is not None:
                    table[name][role] = limits
        return cls(tuple(roles), table, clock)

    @property
    def roles(self) -> tuple[str, ...]:
        return self._roles

    @property
    def decisions(self) -> dict[str, dict[str, Limits]]:
        """decision -> role -> Limits, only roles that may grant it (a copy)."""
        return {name: dict(per_role) for name, per_role in self._decisions.items()}

    def evaluate(self, role: str, request: MandateRequest) -> Verdict:
        request = self._resolve(request, role)
        reasons = self._reasons(role, request)
        return Verdict(allowed=not reasons, role=role, decision=request.decision,
                       lowest_role=self._lowest(request), reasons=reasons, request=request)

    def lowest_role(self, request: MandateRequest) -> str | None:
        return self._lowest(self._resolve(request))

    def may(self, role: str, request: MandateRequest) -> bool:
        return not self._reasons(role, self._resolve(request, role))

    def _resolve(self, request: MandateRequest, role: str | None = None) -> MandateRequest:
        if role is not None and role not in self._roles:
            raise MandateError(f"unknown role {role!r} (roles: {', '.join(self._roles)})")
        if request.decision not in self._decisions:
            raise MandateError(f"unknown decision {request.decision!r} (decisions: {', '.join(self._decisions)})")
        return request if request.today else replace(request, today=self.clock.today())

    def _lowest(self, request: MandateRequest) -> str | None:
        return next((role for role in self._roles if not self._reasons(role, request)), None)

    def _reasons(self, role: str, request: MandateRequest) -> tuple[Reason, ...]:
        limits = self._decisions[request.decision].get(role)
        if limits is None:
            return (Reason("not_in_mandate", {"role": role, "decision": request.decision}),)
        out = []
        if limits.segments is not None:
            if request.customer_segment is None:
                out.append(Reason("missing_segment", {"role": role}))
            elif request.customer_segment not in limits.segments:
                out.append(Reason("segment_not_allowed", {"role": role, "segment": request.customer_segment,
                                                          "allowed": list(limits.segments)}))
        for attr, limit_key, missing, over in _CHECKS:
            limit, value = getattr(limits, limit_key), getattr(request, attr)
            if limit is None:
                continue
            if value is None:
                out.append(Reason(missing, {"role": role}))
            elif value > limit:
                out.append(Reason(over, {"role": role, attr: value, "limit": limit}))
        if limits.max_count is not None:
            # window: today - period_days .. today, both inclusive (later dates count too)
            since = request.today - timedelta(days=limits.period_days)
            count = 1 + sum(1 for d in request.previous if d >= since)
            if count > limits.max_count:
                out.append(Reason("count_exceeded", {"role": role, "count": count, "limit": limits.max_count,
                                                     "period_days": limits.period_days}))
        return tuple(out)
