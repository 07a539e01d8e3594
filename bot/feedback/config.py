"""The survey's settings: config/feedback.yml (or FEEDBACK_FILE)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).resolve().parents[2] / "config" / "feedback.yml"
CONFIG_ENV = "FEEDBACK_FILE"
ANONYMOUS = ("off", "choice", "always")
TRIGGERS = ("agent_close", "agent_handback", "bot_thanks", "bot_quiet")


@dataclass(frozen=True)
class FeedbackConfig:
    enabled: bool = True
    agent_close: bool = True
    agent_handback: bool = True
    bot_thanks: bool = True
    bot_quiet: bool = True
    quiet_minutes: int = 30
    nps: bool = True
    nps_every_days: int = 90
    csat: bool = False
    comment: bool = True
    anonymous: str = "choice"
    every_days: int = 30
    skip_with_open_complaint: bool = True
    reminder_minutes: int = 240
    expire_minutes: int = 1440
    ces_max: int = 3
    nps_max: int = 6
    csat_max: int = 2
    follow_up: bool = True
    reply_within_business_hours: int = 16

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "FeedbackConfig":
        triggers = raw.get("triggers") or {}
        questions = raw.get("questions") or {}
        detractor = raw.get("detractor") or {}
        anonymous = str(raw.get("anonymous", "choice")).lower()
        if anonymous in ("false", "no"):
            anonymous = "off"
        if anonymous not in ANONYMOUS:
            raise ValueError(f"config/feedback.yml anonymous: {anonymous!r} is not one of {', '.join(ANONYMOUS)}")
        unknown = set(triggers) - set(TRIGGERS)
        if unknown:
            raise ValueError(f"config/feedback.yml triggers: unknown {', '.join(sorted(unknown))}")
        config = cls(
            enabled=bool(raw.get("enabled", True)),
            **{name: bool(triggers.get(name, True)) for name in TRIGGERS},
            quiet_minutes=int(raw.get("quiet_minutes", 30)),
            nps=bool(questions.get("nps", True)), nps_every_days=int(questions.get("nps_every_days", 90)),
            csat=bool(questions.get("csat", False)), comment=bool(questions.get("comment", True)),
            anonymous=anonymous,
            every_days=int(raw.get("every_days", 30)),
            skip_with_open_complaint=bool(raw.get("skip_with_open_complaint", True)),
            reminder_minutes=int(raw.get("reminder_minutes", 240)),
            expire_minutes=int(raw.get("expire_minutes", 1440)),
            ces_max=int(detractor.get("ces_max", 3)), nps_max=int(detractor.get("nps_max", 6)),
            csat_max=int(detractor.get("csat_max", 2)), follow_up=bool(detractor.get("follow_up", True)),
            reply_within_business_hours=int(detractor.get("reply_within_business_hours", 16)),
        )
        if config.quiet_minutes < 1 or config.expire_minutes < 1 or config.every_days < 0:
            raise ValueError("config/feedback.yml: quiet_minutes and expire_minutes at least 1, every_days at least 0")
        return config

    @classmethod
    def load(cls, path: str | Path | None = None) -> "FeedbackConfig":
        path = Path(path or os.environ.get(CONFIG_ENV) or CONFIG)
        return cls.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})

    def detractor(self, ces: int | None, nps: int | None, csat: int | None) -> bool:
        return ((ces is not None and ces <= self.ces_max) or (nps is not None and nps <= self.nps_max)
                or (csat is not None and csat <= self.csat_max))
