"""Business constants that are policy: config/policy.yml (POLICY_FILE overrides the path).

    rules = PolicyRules.load()       # validated; PolicyError names the place in the file
    rules.return_days, rules.late_delivery_voucher, rules.instalments.min ...
    policy()                         # the process's rules, loaded on first use

Pure: no I/O except reading that file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.shared.settings import PROJECT_ROOT

ENV_VAR = "POLICY_FILE"
DEFAULT_PATH = PROJECT_ROOT / "config" / "policy.yml"


class PolicyError(ValueError):
    """config/policy.yml is wrong."""


@dataclass(frozen=True)
class Range:
    min: int
    max: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and self.min <= value <= self.max


@dataclass(frozen=True)
class PolicyRules:
    brand: str = "De Webwinkel"
    return_days: int = 30
    late_delivery_voucher: Decimal = Decimal("5")   # euros
    retention_voucher: Decimal = Decimal("10")      # euros
    instalments: Range = Range(2, 36)
    code_valid_minutes: int = 10
    acknowledge_seconds: int = 300

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "PolicyRules":
        from bot.policy.hours import read_yaml

        path = Path(path or os.environ.get(ENV_VAR) or DEFAULT_PATH)
        data = read_yaml(path, PolicyError)
        try:
            return cls.from_dict(data)
        except PolicyError as exc:
            raise PolicyError(f"{exc} (in {path})") from None

    @classmethod
    def from_dict(cls, data: Any) -> "PolicyRules":
        top = _section(data, "top level", {"brand", "returns", "vouchers", "instalments", "one_time_code_minutes",
                                            "waiting"})
        returns = _section(top.get("returns"), "returns", {"window_days"})
        vouchers = _section(top.get("vouchers"), "vouchers", {"late_delivery", "retention"})
        instalments = _section(top.get("instalments"), "instalments", {"min", "max"})
        waiting = _section(top.get("waiting"), "waiting", {"acknowledge_seconds"})
        brand = top.get("brand", cls.brand)
        if not isinstance(brand, str) or not brand.strip() or len(brand) > 80:
            raise PolicyError(f"brand: must be the shop's name (text, at most 80 characters), got {brand!r}")
        low = _whole(instalments.get("min", cls.instalments.min), "instalments.min", 2)
        high = _whole(instalments.get("max", cls.instalments.max), "instalments.max", 2)
        if high < low:
            raise PolicyError(f"instalments: max ({high}) is less than min ({low})")
        return cls(
            brand=brand.strip(),
            return_days=_whole(returns.get("window_days", cls.return_days), "returns.window_days", 0),
            late_delivery_voucher=_euros(vouchers.get("late_delivery", 5), "vouchers.late_delivery"),
            retention_voucher=_euros(vouchers.get("retention", 10), "vouchers.retention"),
            instalments=Range(low, high),
            code_valid_minutes=_whole(top.get("one_time_code_minutes", cls.code_valid_minutes),
                                      "one_time_code_minutes", 1),
            acknowledge_seconds=_whole(waiting.get("acknowledge_seconds", cls.acknowledge_seconds),
                                       "waiting.acknowledge_seconds", 0),
        )


def _section(value: Any, place: str, keys: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(f"{place}: must be a mapping, got {value!r}")
    unknown = set(value) - keys
    if unknown:
        raise PolicyError(f"{place}: unknown key {sorted(map(str, unknown))[0]!r} (known: {', '.join(sorted(keys))})")
    return value


def _whole(value: Any, place: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise PolicyError(f"{place}: must be a whole number of at least {low}, got {value!r}")
    return value


def _euros(value: Any, place: str) -> Decimal:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    amount = Decimal(str(value)) if ok else None
    if amount is None or amount != amount.quantize(Decimal("0.01")):
        raise PolicyError(f"{place}: must be a positive amount in euros with at most two decimals, got {value!r}")
    return amount


@lru_cache(maxsize=1)
def policy() -> PolicyRules:
    """The rules of this process, loaded on first use."""
    return PolicyRules.load()
